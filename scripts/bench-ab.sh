#!/usr/bin/env bash
# bench-ab.sh: compare the server of two builds under the same load.
#
# Builds the working tree (B) and an older git ref (A, default HEAD~1,
# taken with `git archive` into the temporary folder), makes throwaway
# keys, then runs `tsnode bench --server-bin A`, then B, then A, B, ...
# --repeat times (alternating, so that drift of the machine hits both
# alike). The load generator is the working tree's build in every run;
# only the server differs. It prints, per flow and build, the medians of
# the achieved rate, the server's CPU µs per stamp, p50 and p99, and the
# B/A ratios.
#
#   scripts/bench-ab.sh --rate 8000 --duration 20s --flows session
#   scripts/bench-ab.sh --ref main --repeat 5 --inflight 256 --duration 10s
#
# Options: --ref REF (default HEAD~1), --repeat N (default 3); every
# other argument goes to `tsnode bench` (not --keys, --passphrase-file,
# --server, --server-bin, --server-pid, --json, --quiet: set here).
# Needs jq. KEEP=1 keeps the temporary folder (the JSON of every run).
# Exit status: 0, 1 when a build or a run failed (a run with failed
# stamps counts, its figures are still shown), 2 bad usage.
set -euo pipefail

ref=HEAD~1 repeat=3
args=()
while (($#)); do
	case $1 in
	--ref) ref=${2:-} && shift ;;
	--ref=*) ref=${1#*=} ;;
	--repeat) repeat=${2:-} && shift ;;
	--repeat=*) repeat=${1#*=} ;;
	*) args+=("$1") ;;
	esac
	shift
done
if ! [[ $repeat =~ ^[1-9][0-9]*$ ]] || ((repeat > 100)); then
	echo "bench-ab.sh: --repeat $repeat: want 1 to 100" >&2
	exit 2
fi
if [[ -z $ref ]]; then
	echo "bench-ab.sh: --ref: give a git ref" >&2
	exit 2
fi

source "$(dirname "$0")/lib.sh"
bench_refuse bench-ab.sh "--keys --passphrase-file --server --server-bin --server-pid --json --quiet" ${args[@]+"${args[@]}"}
bench_ids ${args[@]+"${args[@]}"}
need_jq
rev=$(git -C "$root" rev-parse --verify --quiet "$ref^{commit}") || {
	echo "bench-ab.sh: --ref $ref: not a commit of $root" >&2
	exit 2
}
failure_message="bench-ab.sh failed"

build_tsnode # B: the working tree, and the load generator
echo "== build A: $ref (${rev:0:12})" >&2
mkdir "$work/ref"
git -C "$root" archive "$rev" | tar -x -C "$work/ref"
(cd "$work/ref" && go build -o "$work/tsnode-a" ./cmd/tsnode)
IFS=, read -ra idlist <<<"$ids"
make_keys server "${idlist[@]}"

declare -A bin=([A]="$work/tsnode-a" [B]="$work/tsnode")
rc=0
for ((i = 1; i <= repeat; i++)); do
	for side in A B; do
		echo "== run $i of $repeat, $side: tsnode bench ${args[*]:-}" >&2
		out="$work/$side-$i.json"
		"$work/tsnode" bench --keys "$keys" --passphrase-file "$pass" --quiet \
			--server-bin "${bin[$side]}" --json "$out" ${args[@]+"${args[@]}"} >"$work/$side-$i.txt" 2>&1 &
		pids+=($!)
		run_rc=0
		wait "${pids[-1]}" || run_rc=$?
		unset 'pids[-1]'
		if [[ ! -s $out ]]; then
			cat "$work/$side-$i.txt" >&2
			echo "bench-ab.sh: run $i of $side gave no results (exit $run_rc)" >&2
			exit 1
		fi
		if ((run_rc != 0)); then
			echo "bench-ab.sh: run $i of $side: tsnode bench exited $run_rc (failed stamps?): $(grep -m1 'first error' "$work/$side-$i.txt" || true)" >&2
			rc=1
		fi
	done
done

# One line per run and flow: side flow achieved cpu_us p50 p99 dropped errors.
for f in "$work"/[AB]-*.json; do
	side=$(basename "$f" | cut -c1)
	# Figures rounded to 3 decimals, so that a median is printed as short
	# as the others.
	jq -r --arg s "$side" 'def r: if type == "number" then (. * 1000 | round / 1000) else . end;
		.flows[] | [$s, .flow, (.stamps_per_second | r), (.server_cpu_us_per_stamp // "n/a" | r),
		(.latency.p50_ms | r), (.latency.p99_ms | r), (.open_loop.dropped // 0), .errors] | map(tostring) | join(" ")' "$f"
done >"$work/runs"

col() { # side flow column -> median
	awk -v s="$1" -v f="$2" -v c="$3" '$1 == s && $2 == f { print $c }' "$work/runs" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == 0) print "n/a"; else printf "%.3f\n", b / a }'; }

echo
echo "A = $ref (${rev:0:12}), B = working tree$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)') at $(git -C "$root" rev-parse --short HEAD)"
echo "tsnode bench ${args[*]:-}; medians of $repeat runs each, alternating A, B"
printf '%-8s %-6s %12s %14s %10s %10s %9s %7s\n' flow build "achieved/s" "CPU µs/stamp" "p50 ms" "p99 ms" dropped errors
for flow in $(awk '{ print $2 }' "$work/runs" | sort -u); do
	declare -A m=()
	for side in A B; do
		for c in 3 4 5 6 7 8; do m[$side$c]=$(col "$side" "$flow" "$c"); done
		printf '%-8s %-6s %12s %14s %10s %10s %9s %7s\n' "$flow" "$side" "${m[${side}3]}" "${m[${side}4]}" "${m[${side}5]}" "${m[${side}6]}" "${m[${side}7]}" "${m[${side}8]}"
	done
	printf '%-8s %-6s %12s %14s %10s %10s\n' "$flow" "B/A" "$(ratio "${m[A3]}" "${m[B3]}")" "$(ratio "${m[A4]}" "${m[B4]}")" "$(ratio "${m[A5]}" "${m[B5]}")" "$(ratio "${m[A6]}" "${m[B6]}")"
	unset m
done
exit $rc

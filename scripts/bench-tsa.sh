#!/usr/bin/env bash
# bench-tsa.sh: tsnode's RFC 3161 authority against sigstore's
# timestamp-authority v2.1.3, under the same load generator.
#
# Builds tsnode, and sigstore's timestamp-server v2.1.3 from the Go module
# proxy with `go install ...@v2.1.3`, run in the temporary folder (a
# throwaway module: the release's own go.mod and go.sum, nothing of this
# repository's), makes throwaway keys, then runs `tsnode bench` in
# a closed loop at each --inflight, alternating the targets (and their
# order, run by run) --repeat times:
#
#   tsnode HTTP    --flows rfc3161: a tsnode server the bench spawns per run
#                  (--http on a free port of 127.0.0.1, a fresh log)
#   tsnode libp2p  --flows rfc3161-p2p: the same over /tsnode/rfc3161/1.0.0
#   sigstore       --tsa-url: sigstore's timestamp-server, started once here
#                  (--timestamp-signer memory: an in-memory ECDSA P-256 key
#                  under an in-memory chain), CPU from --server-pid
#
# The two do not do the same work. tsnode appends every token's leaf to
# its Merkle log and waits for it to be durable (fsynced) before it signs
# the token (AddDurable, PROTOCOL.md §14.2). sigstore's server keeps no
# log at all: it signs and forgets; it writes one log line per request
# to stderr (to a file here), as it always does.
#
# Every token is parsed and checked by the load generator: signature,
# chain, signing-certificate attribute, imprint, nonce. tsnode's with
# tsnode's trust rule (its root is the server's identity key) on the first
# token of a signing certificate, then against that chain; sigstore's
# with the standard X.509 check against the chain it serves (--reverify 0:
# both chains verified once, the same work per token for both).
#
# It all runs in a private network namespace (unshare -n: loopback only),
# because sigstore's server also serves Prometheus metrics on :2112 of
# every interface, hard-wired; the namespace keeps that port private and
# lets two runs of this script not clash. Needs root or user namespaces.
#
#   scripts/bench-tsa.sh                                  # 256 and 1 in flight, 10 s, 3 repeats
#   scripts/bench-tsa.sh --duration 20s --repeat 5 --inflight 256,64,1
#
# Options: --duration D (10s), --repeat N (3), --inflight LIST (256,1).
# It prints, per load and target, the medians of tokens/s, p50, p99, the
# server's CPU µs per token and the load generator's, the tsnode/sigstore
# ratios, and whether the goals of issue 15 are met (at 256 in flight
# tsnode HTTP ≥ 2× sigstore's tokens/s; at 1 in flight p50 ≤ 5 ms). Needs
# jq, unshare and ip; the module proxy, unless the module is cached.
# KEEP=1 keeps the temporary folder (every run's JSON, sigstore's log).
# Exit status: 0, 1 when a build or a run failed (a run with failed tokens
# counts, its figures are still shown), 2 bad usage.
set -euo pipefail

sigstore_pkg=github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server
sigstore_version=v2.1.3
duration=10s repeat=3 loads=256,1
in_netns=""
while (($#)); do
	case $1 in
	--duration) duration=${2:-} && shift ;;
	--repeat) repeat=${2:-} && shift ;;
	--inflight) loads=${2:-} && shift ;;
	--duration=* | --repeat=* | --inflight=*) v=${1#*=} k=${1%%=*} && set -- "$k" "$v" "${@:2}" && continue ;;
	--in-netns) in_netns=1 ;; # set by this script itself
	*)
		echo "bench-tsa.sh: unknown argument $1 (want --duration, --repeat, --inflight)" >&2
		exit 2
		;;
	esac
	shift
done
if ! [[ $repeat =~ ^[1-9][0-9]?$ ]]; then
	echo "bench-tsa.sh: --repeat $repeat: want 1 to 99" >&2
	exit 2
fi
if ! [[ $duration =~ ^[1-9][0-9]*(ms|s|m)$ ]]; then
	echo "bench-tsa.sh: --duration $duration: want a Go duration such as 10s (tsnode bench caps it at 1h)" >&2
	exit 2
fi
if ! [[ $loads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
	echo "bench-tsa.sh: --inflight $loads: want a comma-separated list of positive numbers" >&2
	exit 2
fi

source "$(dirname "$0")/lib.sh"
need_jq
failure_message="bench-tsa.sh failed"

# measure is the second half, inside the namespace, on what the first
# half built into $TSA_BENCH_BUILT: it starts sigstore's server, runs the
# benches and prints the summary.
measure() {
	local built=${TSA_BENCH_BUILT:?} keys=${TSA_BENCH_KEYS:?} pass=${TSA_BENCH_PASS:?} i n target rc=0
	tsnode="$built/tsnode"
	ip link set lo up
	echo "== start sigstore's timestamp-server (in-memory signer) on 127.0.0.1" >&2
	: >"$work/sigstore.yaml" # not $HOME/.timestamp-server.yaml
	"$built/bin/timestamp-server" serve --config "$work/sigstore.yaml" --host 127.0.0.1 --port 0 \
		--timestamp-signer memory --disable-ntp-monitoring --log-type prod >>"$work/sigstore.log" 2>&1 &
	pids+=($!)
	spid=$!
	url=""
	for ((i = 0; i < 300 && ${#url} == 0; i++)); do
		kill -0 "$spid" 2>/dev/null || break
		url=$(grep -o -m1 'Serving timestamp server at http://127\.0\.0\.1:[0-9]*' "$work/sigstore.log" | sed 's/.* at //' || true)
		[[ -n $url ]] || sleep 0.1
	done
	if [[ -z $url ]]; then
		tail -n 5 "$work/sigstore.log" >&2
		echo "bench-tsa.sh: sigstore's server did not say where it listens within 30 s" >&2
		return 1
	fi
	echo "== sigstore's timestamp-server: $url (pid $spid)" >&2
	IFS=, read -ra inflights <<<"$loads"
	for ((i = 1; i <= repeat; i++)); do
		order=(tsnode-http sigstore tsnode-p2p)
		((i % 2)) || order=(tsnode-p2p sigstore tsnode-http)
		for n in "${inflights[@]}"; do
			for target in "${order[@]}"; do
				run_one "$target" "$n" "$i" || rc=1
			done
		done
	done
	summary
	return $rc
}

# run_one TARGET N I: run I of TARGET at N in flight, into $work/TARGET-N-I.json.
run_one() {
	local target=$1 n=$2 i=$3 out="$work/$1-$2-$3.json" run_rc=0 args=()
	case $target in
	tsnode-http) args=(--keys "$keys" --passphrase-file "$pass" --ids 1000 --flows rfc3161 --reverify 0) ;;
	tsnode-p2p) args=(--keys "$keys" --passphrase-file "$pass" --ids 1000 --flows rfc3161-p2p --reverify 0) ;;
	sigstore)
		kill -0 "$spid" 2>/dev/null || { tail -n 5 "$work/sigstore.log" >&2; echo "bench-tsa.sh: sigstore's server exited" >&2; return 1; }
		: >"$work/sigstore.log" # appended to: its log of the last run only
		args=(--tsa-url "$url/api/v1/timestamp" --server-pid "$spid")
		;;
	esac
	echo "== run $i of $repeat, $n in flight: $target" >&2
	"$tsnode" bench "${args[@]}" --inflight "$n" --duration "$duration" --quiet --json "$out" >"${out%.json}.txt" 2>&1 &
	pids+=($!)
	wait "${pids[-1]}" || run_rc=$?
	unset 'pids[-1]'
	if [[ ! -s $out ]]; then
		cat "${out%.json}.txt" >&2
		echo "bench-tsa.sh: run $i of $target at $n in flight gave no results (exit $run_rc)" >&2
		return 1
	fi
	if ((run_rc != 0)); then
		echo "bench-tsa.sh: run $i of $target at $n in flight: tsnode bench exited $run_rc: $(grep -m1 'first error' "${out%.json}.txt" || true)" >&2
		return 1
	fi
}

# summary prints the medians per load and target, the ratios and the goals.
summary() {
	local f name n t
	for f in "$work"/*-*-*.json; do
		name=$(basename "$f" .json)
		n=${name%-*} && n=${n##*-}
		t=${name%-*-*}
		jq -r --arg t "$t" --arg n "$n" '.flows[0] | [$t, $n, .tokens_per_second, .latency.p50_ms, .latency.p99_ms,
			(.server_cpu_us_per_token // "n/a"), (if .tokens > 0 then 1e6 * .bench_cpu_seconds / .tokens else "n/a" end), .errors]
			| map(tostring) | join(" ")' "$f"
	done >"$work/runs"
	med() { awk -v t="$1" -v n="$2" -v c="$3" '$1 == t && $2 == n { print $c }' "$work/runs" | median; }
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
	fmt() { awk -v x="$1" -v p="$2" 'BEGIN { if (x == "n/a") print x; else printf "%." p "f\n", x }'; }
	echo
	echo "tsnode $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)') vs sigstore timestamp-server $sigstore_version (memory signer); $(go env GOVERSION)"
	echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), load average $(cut -d' ' -f1-3 /proc/loadavg); medians of $repeat runs of $duration each, alternating"
	printf '%-9s %-15s %10s %9s %9s %14s %15s %7s\n' "in flight" target tokens/s "p50 ms" "p99 ms" "CPU µs/token" "bench µs/token" errors
	declare -A m=()
	local -A label=([tsnode-http]="tsnode HTTP" [tsnode-p2p]="tsnode libp2p" [sigstore]="sigstore")
	for n in "${inflights[@]}"; do
		for t in tsnode-http tsnode-p2p sigstore; do
			for c in 3 4 5 6 7 8; do m[$t$n.$c]=$(med "$t" "$n" "$c"); done
			printf '%-9s %-15s %10s %9s %9s %14s %15s %7s\n' "$n" "${label[$t]}" "$(fmt "${m[$t$n.3]}" 0)" "$(fmt "${m[$t$n.4]}" 2)" \
				"$(fmt "${m[$t$n.5]}" 2)" "$(fmt "${m[$t$n.6]}" 0)" "$(fmt "${m[$t$n.7]}" 0)" "${m[$t$n.8]}"
		done
		for t in tsnode-http tsnode-p2p; do
			printf '%-9s %-15s %10s %9s %9s %14s\n' "$n" "${t#tsnode-}/sigstore" "$(ratio "${m[$t$n.3]}" "${m[sigstore$n.3]}")" \
				"$(ratio "${m[$t$n.4]}" "${m[sigstore$n.4]}")" "$(ratio "${m[$t$n.5]}" "${m[sigstore$n.5]}")" "$(ratio "${m[$t$n.6]}" "${m[sigstore$n.6]}")"
		done
	done
	if [[ -n ${m[tsnode-http256.3]:-} ]]; then
		r=$(ratio "${m[tsnode-http256.3]}" "${m[sigstore256.3]}")
		echo "goal, 256 in flight: tsnode HTTP tokens/s ≥ 2× sigstore's: $(awk -v r="$r" 'BEGIN { print (r != "n/a" && r >= 2) ? "met" : "MISSED" }') (${r}×)"
	fi
	if [[ -n ${m[tsnode-http1.4]:-} ]]; then
		echo "goal, 1 in flight: tsnode HTTP p50 ≤ 5 ms: $(awk -v p="${m[tsnode-http1.4]}" 'BEGIN { print (p != "n/a" && p <= 5) ? "met" : "MISSED" }') ($(fmt "${m[tsnode-http1.4]}" 2) ms; libp2p $(fmt "${m[tsnode-p2p1.4]}" 2) ms)"
	fi
}

if [[ -n $in_netns ]]; then
	measure
	exit $?
fi

for cmd in unshare ip; do
	command -v "$cmd" >/dev/null || { echo "bench-tsa.sh: needs $cmd (util-linux, iproute2)" >&2; exit 1; }
done
if unshare --net true 2>/dev/null; then
	netns=(unshare --net)
elif unshare --net --map-root-user true 2>/dev/null; then
	netns=(unshare --net --map-root-user)
else
	echo "bench-tsa.sh: cannot make a private network namespace (unshare -n: needs root or user namespaces)" >&2
	exit 1
fi

build_tsnode
echo "== build sigstore's timestamp-server $sigstore_version (go install, in $work; a minute the first time)" >&2
mkdir -p "$work/bin" "$work/gobuild"
if ! (cd "$work/gobuild" && GOBIN="$work/bin" GOFLAGS=-buildvcs=false go install "$sigstore_pkg@$sigstore_version") >"$work/sigstore-build.log" 2>&1; then
	tail -n 15 "$work/sigstore-build.log" >&2
	echo "bench-tsa.sh: cannot build $sigstore_pkg@$sigstore_version: is the Go module proxy ($(go env GOPROXY)) reachable? (or is the module in $(go env GOMODCACHE)?)" >&2
	exit 1
fi
tsnode="$work/tsnode"
make_keys server 1000

echo "== into a private network namespace (${netns[*]})" >&2
TSA_BENCH_BUILT=$work TSA_BENCH_KEYS=$keys TSA_BENCH_PASS=$pass \
	"${netns[@]}" -- bash "$0" --in-netns --duration "$duration" --repeat "$repeat" --inflight "$loads" &
pids+=($!)
rc=0
wait "${pids[-1]}" || rc=$?
unset 'pids[-1]'
exit $rc

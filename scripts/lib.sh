# lib.sh: shared by the scripts that build tsnode and make throwaway keys.
# Source it after `set -euo pipefail`; it sets $root and $work, and on
# exit stops every process whose pid is in $pids (TERM, then KILL after
# 10 s), removes $work unless KEEP=1, and on failure prints
# $failure_message if the script set one. A script that must undo more
# (namespaces, say) sets $on_cleanup to a command run after the processes
# stopped.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tsnode-$(basename "$0" .sh).XXXXXX")"
pids=()
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		# Give each process 10 s to stop cleanly, then kill it.
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[[ -z ${on_cleanup:-} ]] || $on_cleanup || true
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
	if [[ $rc -ne 0 && -n ${failure_message:-} ]]; then
		echo "$failure_message (exit $rc)" >&2
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# build_tsnode builds the binary into $work/tsnode.
build_tsnode() {
	echo "== build tsnode" >&2
	(cd "$root" && go build -o "$work/tsnode" ./cmd/tsnode)
}

# make_keys ID... makes an RSA-4096 identity per id under $work/keys,
# all under one random passphrase in the 0600 file $work/passphrase:
# never on a command line or in a log. Sets $keys and $pass.
make_keys() {
	pass="$work/passphrase"
	keys="$work/keys"
	(umask 077 && head -c 24 /dev/urandom | base64 >"$pass")
	echo "== make throwaway RSA-4096 keys: $* (a few seconds each)" >&2
	# The keygens go in $pids so that cleanup stops them on failure.
	local jobs_max first=${#pids[@]}
	jobs_max=$(nproc 2>/dev/null || echo 2)
	for id in "$@"; do
		"$work/tsnode" keygen --id "$id" --keys "$keys" --passphrase-file "$pass" >/dev/null &
		pids+=($!)
		if ((${#pids[@]} - first >= jobs_max)); then
			wait "${pids[first]}"
			pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
		fi
	done
	while ((${#pids[@]} > first)); do
		wait "${pids[first]}"
		pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
	done
}

# bench_ids ARGS... sets $ids to the requester ids that `tsnode bench
# ARGS...` needs keys for: --ids LIST, else 1000.. for --requesters N.
bench_ids() {
	local requesters=1 a i args=("$@")
	ids=""
	for ((i = 0; i < ${#args[@]}; i++)); do
		a=${args[i]}
		case $a in
		--requesters | -requesters) requesters=${args[i + 1]:-1} ;;
		--requesters=* | -requesters=*) requesters=${a#*=} ;;
		--ids | -ids) ids=${args[i + 1]:-} ;;
		--ids=* | -ids=*) ids=${a#*=} ;;
		esac
	done
	if [[ -z $ids ]]; then
		if ! [[ $requesters =~ ^[0-9]+$ ]] || ((requesters < 1 || requesters > 64)); then
			echo "$(basename "$0"): --requesters $requesters: want 1 to 64" >&2
			exit 2
		fi
		ids=$(seq -s, 1000 $((1000 + requesters - 1)))
	fi
}

# bench_refuse NAME FLAG... ARGS: exits 2 when ARGS hold one of the
# FLAGs (given as --flag), which the script sets itself. Call it as
# bench_refuse NAME "--a --b" "$@".
bench_refuse() {
	local name=$1 flags=$2 a f
	shift 2
	for a in "$@"; do
		for f in $flags; do
			case $a in
			"$f" | "$f"=* | "${f#-}" | "${f#-}"=*)
				echo "$name: $a is set by $name itself" >&2
				exit 2
				;;
			esac
		done
	done
}

# median: the median of the numbers on stdin, one a line ("n/a" when
# there are none; lines that are not numbers are skipped).
median() {
	grep -E '^-?[0-9.]+(e[-+]?[0-9]+)?$' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# need_jq: the scripts that read tsnode bench's --json need jq.
need_jq() {
	command -v jq >/dev/null || {
		echo "$(basename "$0"): needs jq to read tsnode bench's JSON" >&2
		exit 1
	}
}

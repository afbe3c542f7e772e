# lib.sh: shared by the scripts that build tsnode and make throwaway keys.
# Source it after `set -euo pipefail`; it sets $root and $work, and on
# exit stops every process whose pid is in $pids (TERM, then KILL after
# 10 s), removes $work unless KEEP=1, and on failure prints
# $failure_message if the script set one.

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

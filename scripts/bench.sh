#!/usr/bin/env bash
# bench.sh: measure tsnode's stamping throughput and latency.
#
# Builds tsnode, makes throwaway identities (the server, and one requester
# id per --requesters: 1000, 1001, ...) in a temporary folder, then runs
# `tsnode bench`, which starts a server as its own process for each flow,
# runs the prototype-style one-shot flow and the default session flow,
# checks every receipt, and prints a table and the throughput ratio.
# Every argument goes to `tsnode bench` (see `tsnode bench -h`):
#
#   scripts/bench.sh --duration 30s --inflight 256 --requesters 4 --json bench.json
#   scripts/bench.sh --duration 10s --inflight 1 --flows session
#
# The keys are made here, so --keys, --passphrase-file and --server are
# refused: to measure a running server, run `tsnode bench --server MADDR`
# with that server's identity directory.
#
# Exit status: that of tsnode bench (0: every stamp checked, 1: some
# failed or the run failed, 2: bad usage).
set -euo pipefail

# Which requester ids need keys: --ids LIST, else --requesters N.
requesters=1
ids=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]}
	case $a in
	--requesters | -requesters) requesters=${args[i + 1]:-1} ;;
	--requesters=* | -requesters=*) requesters=${a#*=} ;;
	--ids | -ids) ids=${args[i + 1]:-} ;;
	--ids=* | -ids=*) ids=${a#*=} ;;
	--keys | --keys=* | -keys | -keys=* | --passphrase-file* | -passphrase-file* | --server | --server=* | -server | -server=*)
		echo "bench.sh: $a is not for bench.sh (it makes its own keys and server); use tsnode bench directly" >&2
		exit 2
		;;
	esac
done
if [[ -z $ids ]]; then
	if ! [[ $requesters =~ ^[0-9]+$ ]] || ((requesters < 1 || requesters > 64)); then
		echo "bench.sh: --requesters $requesters: want 1 to 64" >&2
		exit 2
	fi
	ids=$(seq -s, 1000 $((1000 + requesters - 1)))
fi

source "$(dirname "$0")/lib.sh"
build_tsnode
IFS=, read -ra idlist <<<"$ids"
make_keys server "${idlist[@]}"

echo "== tsnode bench $*" >&2
# tsnode bench stops the servers it starts, on failure and on Ctrl-C too.
# It runs in the background so that a TERM to this script reaches it.
"$work/tsnode" bench --keys "$keys" --passphrase-file "$pass" "$@" &
pids+=($!)
rc=0
wait "${pids[0]}" || rc=$?
pids=()
exit $rc

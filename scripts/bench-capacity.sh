#!/usr/bin/env bash
# bench-capacity.sh: how many stamps per second can the server take?
#
# Builds tsnode, makes throwaway keys, then runs `tsnode bench` in the
# open loop (--rate) at offered rates in steps, each against a fresh
# server for --step-duration: --start, --start + --step, ... up to --max.
# It prints, per step, the achieved rate, p50 and p99 (from each
# request's scheduled time), the server's CPU µs per stamp and the
# dropped requests, then the capacity: the highest offered rate with p99
# at most --p99-ms, no request dropped and no stamp failed. It stops
# after two steps in a row fail that test.
#
#   scripts/bench-capacity.sh                          # session flow, 4k, 8k, ... 40k/s
#   scripts/bench-capacity.sh --start 2000 --step 2000 --max 20000 --step-duration 10s
#   scripts/bench-capacity.sh --flow oneshot --max 4000 --start 500 --step 500 --requesters 4
#   scripts/bench-capacity.sh --server-bin /tmp/tsnode-old     # another build's server
#
# Options: --flow oneshot|session (default session), --start R (4000),
# --step R (4000), --max R (40000), --step-duration D (5s), --p99-ms MS
# (100), --server-bin PATH (default: the build made here); every other
# argument goes to `tsnode bench` (e.g. --requesters, --sessions,
# --schedule, --seed, --max-outstanding; not --rate, --duration,
# --inflight, --flows, --json, --keys, --server). Needs jq. The load
# generator runs on the same machine as the server: on few cores it
# takes part of the CPU the server would have.
# Exit status: 0 (a capacity found), 1 (none of the steps passed, or a
# run failed), 2 bad usage.
set -euo pipefail

flow=session start=4000 step=4000 max=40000 step_duration=5s p99_ms=100 server_bin=""
args=()
while (($#)); do
	case $1 in
	--flow) flow=${2:-} && shift ;;
	--start) start=${2:-} && shift ;;
	--step) step=${2:-} && shift ;;
	--max) max=${2:-} && shift ;;
	--step-duration) step_duration=${2:-} && shift ;;
	--p99-ms) p99_ms=${2:-} && shift ;;
	--server-bin) server_bin=${2:-} && shift ;;
	--flow=* | --start=* | --step=* | --max=* | --step-duration=* | --p99-ms=* | --server-bin=*)
		v=${1#*=} k=${1%%=*} && set -- "$k" "$v" "${@:2}" && continue ;;
	*) args+=("$1") ;;
	esac
	shift
done
for v in start step max p99_ms; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench-capacity.sh: --${v//_/-} ${!v}: want a positive integer" >&2
		exit 2
	fi
done
if ((max < start)); then
	echo "bench-capacity.sh: --max $max is below --start $start" >&2
	exit 2
fi
if [[ $flow != session && $flow != oneshot ]]; then
	echo "bench-capacity.sh: --flow $flow: want session or oneshot" >&2
	exit 2
fi
if [[ -n $server_bin && ! -x $server_bin ]]; then
	echo "bench-capacity.sh: --server-bin $server_bin: not an executable file" >&2
	exit 2
fi

source "$(dirname "$0")/lib.sh"
bench_refuse bench-capacity.sh "--rate --duration --inflight --flows --json --keys --passphrase-file --server --server-pid --quiet" ${args[@]+"${args[@]}"}
bench_ids ${args[@]+"${args[@]}"}
need_jq
failure_message="bench-capacity.sh failed"
build_tsnode
[[ -n $server_bin ]] || server_bin="$work/tsnode"
server_bin=$(cd "$(dirname "$server_bin")" && pwd)/$(basename "$server_bin")
IFS=, read -ra idlist <<<"$ids"
make_keys server "${idlist[@]}"

echo "== capacity of the $flow flow of $server_bin: steps of $step_duration from $start to $max/s by $step; pass: p99 ≤ $p99_ms ms, nothing dropped, no error" >&2
table="$work/steps"
printf '%10s %12s %10s %10s %14s %9s %7s  %s\n' "offered/s" "achieved/s" "p50 ms" "p99 ms" "CPU µs/stamp" dropped errors result >"$table"
capacity="" fails=0 rc=0
for ((rate = start; rate <= max; rate += step)); do
	out="$work/step-$rate.json"
	echo "== offered $rate/s" >&2
	"$work/tsnode" bench --keys "$keys" --passphrase-file "$pass" --quiet --flows "$flow" \
		--server-bin "$server_bin" --rate "$rate" --duration "$step_duration" --json "$out" \
		${args[@]+"${args[@]}"} >"$work/step-$rate.txt" 2>&1 &
	pids+=($!)
	run_rc=0
	wait "${pids[-1]}" || run_rc=$?
	unset 'pids[-1]'
	if [[ ! -s $out ]]; then
		cat "$work/step-$rate.txt" >&2
		echo "bench-capacity.sh: the run at $rate/s gave no results (exit $run_rc)" >&2
		exit 1
	fi
	read -r achieved p50 p99 cpu dropped errors < <(jq -r '.flows[0] | [.stamps_per_second, .latency.p50_ms,
		.latency.p99_ms, (.server_cpu_us_per_stamp | if . == null then "n/a" else (. * 10 | round) / 10 end), .open_loop.dropped, .errors] | map(tostring) | join(" ")' "$out")
	result=$(awk -v p99="$p99" -v lim="$p99_ms" -v d="$dropped" -v e="$errors" 'BEGIN {
		if (p99 > lim) print "FAIL (p99)"; else if (d > 0) print "FAIL (dropped)"; else if (e > 0) print "FAIL (errors)"; else print "pass" }')
	printf '%10d %12.0f %10.2f %10.2f %14s %9d %7d  %s\n' "$rate" "$achieved" "$p50" "$p99" "$cpu" "$dropped" "$errors" "$result" >>"$table"
	tail -n1 "$table" >&2
	if [[ $result == pass ]]; then
		capacity=$rate fails=0
	elif ((++fails >= 2)); then
		break
	fi
done

echo
echo "tsnode bench --flows $flow --rate R --duration $step_duration ${args[*]:-} (server: $server_bin)"
cat "$table"
if [[ -n $capacity ]]; then
	echo "capacity: $capacity stamps/s offered (the highest step with p99 ≤ $p99_ms ms, nothing dropped, no error)"
else
	echo "capacity: below $start stamps/s (no step passed)"
	rc=1
fi
failure_message=""
exit $rc

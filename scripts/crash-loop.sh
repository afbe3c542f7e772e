#!/usr/bin/env bash
# crash-loop.sh: kill -9 the server under load, again and again, and check
# that the log kept its promise.
#
# Builds tsnode, makes throwaway keys (server, verifier 2000, requesters
# 1000-1002), starts a verifier and a server on loopback (TCP and QUIC)
# with a fresh --data folder, and runs three requester loops against it:
# session over TCP, session over QUIC, one-shot over TCP, each stamping and
# relaying batches of small files. It kills the server with SIGKILL at a
# random moment (0.5 to 3 s after it is ready), restarts it on the same
# --data, --kills times, then lets the clients finish and checks:
#
#   - every receipt any client saved verifies (`tsnode verify`);
#   - no serial appears in two receipts, and every serial is below the
#     final log size;
#   - stamp times never go back in serial order, and none is ahead of the
#     clock;
#   - no two receipts carry different roots for one tree size, and every
#     tree head seen is consistent with the final one (`tsnode log --from`,
#     each proof checked again offline with `tsnode verify --consistency`).
#
# Client errors around a kill (sessions ending, timeouts, refused dials)
# are expected and counted; they are not violations.
#
#   scripts/crash-loop.sh                    # 20 kills, 3 to 7 minutes
#   scripts/crash-loop.sh --kills 5 --work /tmp/cl   # keep everything in /tmp/cl
#
# Options: --kills N (default 20), --work DIR (an absent or empty folder;
# kept afterwards; default a temporary folder, removed unless KEEP=1),
# --damage-log (a self-test of the checks: log.db is deleted before the
# last restart, as a clumsy operator might; the run must then fail,
# either because the server refuses to start or because the checks see
# reused serials and inconsistent heads).
# Exit status: 0 when every check passed, 1 on any violation or failure,
# 2 bad usage.
set -euo pipefail

kills=20 workdir="" damage=""
while (($#)); do
	case $1 in
	--kills) kills=${2:-} && shift ;;
	--work) workdir=${2:-} && shift ;;
	--damage-log) damage=1 ;;
	--kills=* | --work=*) v=${1#*=} k=${1%%=*} && set -- "$k" "$v" "${@:2}" && continue ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
	*) echo "crash-loop.sh: unknown argument $1 (want --kills N, --work DIR, --damage-log)" >&2 && exit 2 ;;
	esac
	shift
done
if ! [[ $kills =~ ^[1-9][0-9]*$ ]] || ((kills > 1000)); then
	echo "crash-loop.sh: --kills $kills: want 1 to 1000" >&2
	exit 2
fi
if [[ -n $workdir ]]; then
	mkdir -p "$workdir" && workdir=$(cd "$workdir" && pwd)
	if [[ -n $(ls -A "$workdir") ]]; then
		echo "crash-loop.sh: --work $workdir is not empty" >&2
		exit 2
	fi
fi

failure_message="crash-loop FAILED"
source "$(dirname "$0")/lib.sh"
if [[ -n $workdir ]]; then
	rmdir "$work"
	work=$workdir KEEP=1
fi
need_jq
start_time=$SECONDS

build_tsnode
tsnode="$work/tsnode"
make_keys server 2000 1000 1001 1002
data="$work/data"
violations="$work/violations"
: >"$violations"
violation() { echo "VIOLATION: $*" | tee -a "$violations" >&2; }

# forget PID: drop a process we reaped from $pids, so that cleanup never
# signals a pid the system may have given to someone else.
forget() {
	local p keep=()
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=(${keep[@]+"${keep[@]}"})
}

# wait_addr LOG ROLE TRANSPORT PID: the role's loopback address for that
# transport, once printed; fails if PID exits first or after 30 s.
wait_addr() {
	local log=$1 role=$2 transport=$3 pid=$4 line
	for _ in $(seq 300); do
		line=$(grep -m1 "^$role listening on /ip4/127\.0\.0\.1.*/$transport/" "$log" 2>/dev/null || true)
		[[ -n $line ]] && { echo "${line#"$role listening on "}"; return 0; }
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

"$tsnode" --role verifier --keys "$keys" --passphrase-file "$pass" --log-level warn \
	--listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 >"$work/verifier.log" 2>&1 &
verifier_pid=$!
pids+=("$verifier_pid")
verifier_tcp=$(wait_addr "$work/verifier.log" verifier tcp "$verifier_pid") || {
	tail "$work/verifier.log" >&2
	exit 1
}
verifier_quic=$(wait_addr "$work/verifier.log" verifier quic-v1 "$verifier_pid")

# start_server N: starts the server on $data and on $port (TCP and QUIC),
# logging to server.N.log, and publishes its addresses in $work/addr.tcp
# and addr.quic-v1 (atomically) for the clients. Fails if the server does
# not come up. The port stays the same across restarts, as an operator's
# would: QUIC clients then learn at once (stateless reset) that the
# server they knew is gone.
server_pid="" port=""
start_server() {
	local log="$work/server.$1.log" t a
	"$tsnode" --role server --keys "$keys" --passphrase-file "$pass" --data "$data" \
		--listen "/ip4/127.0.0.1/tcp/$port" --listen "/ip4/127.0.0.1/udp/$port/quic-v1" >"$log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	for t in tcp quic-v1; do
		if ! a=$(wait_addr "$log" server "$t" "$server_pid"); then
			kill -KILL "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
			forget "$server_pid"
			return 1
		fi
		echo "$a" >"$work/addr.$t.tmp" && mv "$work/addr.$t.tmp" "$work/addr.$t"
	done
	sed -n 's/.* holds \([0-9]*\) stamps.*/\1/p' "$log" | sed -n 1p >"$work/size.$1"
}

# client K ID TRANSPORT [--oneshot]: a bounded loop of requester runs,
# each on 100 fresh small files; it stops when $work/stop appears. Each
# run's exit status goes to $work/cK/status.
files_per_run=100
client() {
	local k=$1 id=$2 transport=$3 dir="$work/c$1" child="" i j rc addr files
	shift 3
	trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 143' TERM
	mkdir -p "$dir"
	for ((i = 0; i < 2000; i++)); do
		# The server's address, once it is (back) up: at most 60 s.
		for ((j = 0; j < 600; j++)); do
			[[ -e $work/stop ]] && return 0
			addr=$(cat "$work/addr.$transport" 2>/dev/null || true)
			[[ -n $addr ]] && break
			sleep 0.1
		done
		[[ -n $addr ]] || return 0
		mkdir -p "$dir/docs-$i"
		files=()
		for ((j = 0; j < files_per_run; j++)); do
			echo "client $k run $i file $j $RANDOM$RANDOM" >"$dir/docs-$i/d$j.txt"
			files+=(--file "$dir/docs-$i/d$j.txt")
		done
		local verifier=$verifier_tcp
		[[ $transport == tcp ]] || verifier=$verifier_quic
		"$tsnode" --role requester --id "$id" --keys "$keys" --passphrase-file "$pass" --log-level error \
			--server "$addr" --verifier "$verifier" --out "$dir/out-$i" --timeout 5s \
			"$@" "${files[@]}" >"$dir/run-$i.log" 2>&1 &
		child=$!
		rc=0
		wait "$child" || rc=$?
		child=""
		echo "$i $rc" >>"$dir/status"
		((rc == 0)) || sleep 0.2
	done
}

echo "== start the server on $data and three clients (session/TCP, session/QUIC, one-shot/TCP)" >&2
# A random free port: a few tries in case one is taken.
for try in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	start_server 0 && break
	grep -q 'address already in use' "$work/server.0.log" && ((try < 5)) && continue
	tail "$work/server.0.log" >&2
	exit 1
done
# One-shot stamps cost the server one RSA signature each: fewer at once.
client 0 1000 tcp --parallel 16 &
pids+=($!)
client 1 1001 quic-v1 --parallel 16 &
pids+=($!)
client 2 1002 tcp --oneshot --parallel 4 &
pids+=($!)
client_pids=("${pids[@]: -3}")

echo "== kill -9 the server $kills times under load, restarting it on the same --data" >&2
done_kills=0
for ((n = 1; n <= kills; n++)); do
	# A random moment 0.5 to 3 s after it came up: clients reconnect
	# within about 0.5 s of a restart.
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.5 + 2.5 * r / 32768 }')"
	rm -f "$work/addr.tcp" "$work/addr.quic-v1"
	kill -KILL "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	forget "$server_pid"
	done_kills=$n
	if [[ -n $damage ]] && ((n == kills)); then
		echo "  --damage-log: deleting $data/log.db before the last restart" >&2
		rm -f "$data/log.db"
	fi
	if ! start_server "$n"; then
		violation "the server did not restart on $data after kill $n: $(tail -n 3 "$work/server.$n.log" | tr '\n' ' ')"
		break
	fi
	printf '  kill %2d: restarted, log holds %s stamps\n' "$n" "$(cat "$work/size.$n")" >&2
done

echo "== stop the clients (each finishes its current run, at most ~10 s)" >&2
touch "$work/stop"
for p in "${client_pids[@]}"; do
	wait "$p" 2>/dev/null || true
	forget "$p"
done
load_seconds=$((SECONDS - start_time))

server_tcp=$(cat "$work/addr.tcp" 2>/dev/null || true)
[[ -n $server_tcp ]] || {
	cat "$violations" >&2
	exit 1
}

echo "== check the receipts" >&2
# One line per receipt: serial, time, format, size, root, receipt path.
list="$work/receipts.tsv"
find "$work"/c*/out-* -name '*.receipt' -print0 2>/dev/null |
	xargs -0 -r jq -r '[.serial, .time, .format, (.tree_head.size // "-"), (.tree_head.root_hash // "-"), input_filename] | @tsv' |
	sort -n -k1,1 >"$list"
receipts=$(wc -l <"$list")

# Every receipt verifies against its own document (out-I/dJ.txt.receipt
# belongs to docs-I/dJ.txt).
# receipt_doc RECEIPT: its document (cK/out-I/dJ.txt.receipt belongs to
# cK/docs-I/dJ.txt).
receipt_doc() {
	local d=${1%/*}
	echo "${d%/out-*}/docs-${d##*/out-}/$(basename "$1" .receipt)"
}
verify_one() {
	"$tsnode" verify --keys "$keys" --receipt "$1" "$(receipt_doc "$1")" >/dev/null 2>&1 || echo "$1"
}
export -f receipt_doc verify_one
export tsnode keys
bad=$(cut -f6 "$list" | xargs -r -P "$(nproc)" -I{} bash -c 'verify_one "$1"' _ {})
for rc in $bad; do
	violation "receipt $rc does not verify: $("$tsnode" verify --keys "$keys" --receipt "$rc" "$(receipt_doc "$rc")" 2>&1 | sed -n 1p)"
done
verified=$((receipts - $(printf '%s' "$bad" | grep -c . || true)))

dups=$(cut -f1 "$list" | uniq -d | wc -l)
if ((dups > 0)); then
	for s in $(cut -f1 "$list" | uniq -d | sed -n 1,5p); do
		violation "serial $s is in more than one receipt: $(awk -F'\t' -v s="$s" '$1 == s { print $6 " (" $2 ")" }' "$list" | tr '\n' ' ')"
	done
fi

# Times in serial order: RFC 3339 UTC with 9 digits compares as text.
cut -f2,6 "$list" | grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z'$'\t' |
	sed -n 1,5p | while IFS=$'\t' read -r t f; do violation "time $t of $f is not RFC 3339 UTC with nanoseconds"; done || true
awk -F'\t' 'NR > 1 && $2 < prev { print "serial " $1 " (" $6 ") is dated " $2 ", before serial " ps " at " prev }
	{ prev = $2; ps = $1 }' "$list" | sed -n 1,5p | while read -r l; do violation "$l"; done
now=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%S.%NZ)
awk -F'\t' -v now="$now" '$2 > now { print "serial " $1 " (" $6 ") is dated " $2 ", ahead of the clock (" now " incl. 2 s)" }' "$list" |
	sed -n 1,5p | while read -r l; do violation "$l"; done

# One root per tree size; then each distinct head against the final one.
awk -F'\t' '$4 != "-" { print $4 "\t" $5 "\t" $6 }' "$list" | sort -t $'\t' -k1,1n -k2,2 -u >"$work/heads.tsv"
cut -f1 "$work/heads.tsv" | uniq -d | while read -r s; do
	violation "two roots for tree size $s: $(awk -F'\t' -v s="$s" '$1 == s { print $2 " in " $3 }' "$work/heads.tsv" | tr '\n' ' ')"
done
heads=$(wc -l <"$work/heads.tsv")
echo "== check $heads tree heads against the final one (tsnode log --from)" >&2
"$tsnode" log --keys "$keys" --passphrase-file "$pass" --server "$server_tcp" >"$work/final-head.txt" 2>&1 || {
	violation "tsnode log cannot read the final head: $(tail -n1 "$work/final-head.txt")"
}
final_size=$(sed -n 's/^  size *\([0-9]*\)$/\1/p' "$work/final-head.txt")
max_serial=$(tail -n1 "$list" | cut -f1)
if [[ -n $max_serial && -n $final_size ]] && ((max_serial >= final_size)); then
	violation "serial $max_serial was handed out but the final log holds only $final_size stamps"
fi
mkdir -p "$work/proofs"
check_head() {
	local size=$1 rc=$2 out="$work/proofs/$1.json"
	if ! "$tsnode" log --keys "$keys" --passphrase-file "$pass" --server "$server_tcp" --from "$rc" --out "$out" >"$out.log" 2>&1; then
		echo "the head of size $size in $rc is not proved consistent with the final log: $(grep -m1 -E 'INCONSISTENT|tsnode:' "$out.log" || tail -n1 "$out.log")"
	elif ! grep -q "size *$final_size\$" "$out.log"; then
		echo "the proof for the head of size $size ends at another head than the final one ($final_size): $out.log"
	elif ! "$tsnode" verify --keys "$keys" --consistency "$out" >>"$out.log" 2>&1; then
		echo "the consistency proof $out does not verify offline: $(tail -n1 "$out.log")"
	fi
}
export -f check_head
export pass server_tcp work final_size
awk -F'\t' '{ print $1 " " $3 }' "$work/heads.tsv" |
	xargs -r -P "$(nproc)" -L1 bash -c 'check_head "$1" "$2"' _ >"$work/head-failures" || true
while read -r l; do violation "$l"; done <"$work/head-failures"
heads_ok=$((heads - $(wc -l <"$work/head-failures")))

# Client-side counts: documents OK and failed (expected around kills).
runs=0 runs_failed=0 docs_ok=0 docs_failed=0
for k in 0 1 2; do
	[[ -f $work/c$k/status ]] || continue
	runs=$((runs + $(wc -l <"$work/c$k/status")))
	runs_failed=$((runs_failed + $(awk '$2 != 0' "$work/c$k/status" | wc -l)))
done
docs_ok=$(cat "$work"/c*/run-*.log 2>/dev/null | grep -c '^  OK$' || true)
docs_failed=$(cat "$work"/c*/run-*.log 2>/dev/null | grep -c '^  FAILED' || true)
# Stamps logged per server lifetime (from the size each start reports):
# a lifetime that logged nothing was not killed under load.
growth=$(for ((n = 1; n <= done_kills; n++)); do
	echo $(($(cat "$work/size.$n" 2>/dev/null || echo 0) - $(cat "$work/size.$((n - 1))" 2>/dev/null || echo 0)))
done)
loaded=$(printf '%s\n' "$growth" | awk '$1 > 0' | wc -l)
growth_range=$(printf '%s\n' "$growth" | sort -n | sed -n '1p;$p' | tr '\n' ' ' | awk '{ print $1 " to " $2 }')
v1=$(awk -F'\t' '$3 == "tsnode-receipt-v1"' "$list" | wc -l)
nviol=$(wc -l <"$violations")

cat <<EOF

crash-loop summary ($((SECONDS - start_time)) s, load phase $load_seconds s)
  kills (SIGKILL)                 $done_kills of $kills ($loaded with stamps logged since the previous start: $growth_range per lifetime)
  server restarts on same --data  $(ls "$work"/server.*.log | wc -l) starts
  requester runs                  $runs ($runs_failed ended with an error, expected around kills)
  documents OK / failed           $docs_ok / $docs_failed
  final log size (stamps logged)  ${final_size:-?}
  receipts saved by clients       $receipts ($v1 one-shot v1, $((receipts - v1)) session v2)
  receipts verified               $verified
  duplicate serials               $dups
  tree heads checked consistent   $heads_ok of $heads
  violations                      $nviol
EOF
if ((nviol > 0)); then
	echo
	echo "crash-loop FAILED: $nviol violation(s); the first ones:"
	head -n 10 "$violations"
	KEEP=1 failure_message=""
	exit 1
fi
echo "crash-loop OK"

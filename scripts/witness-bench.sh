#!/usr/bin/env bash
# witness-bench.sh: what witnessing costs, on loopback. Four measurements,
# each on a fresh server and witnesses of its own (ids 3000..; each
# witness dials the server, the next witness on a ring and two others at
# random), run one after the other:
#
#  latency   the extra latency of a witnessed stamp, K of W witnesses
#            (default 3 of 5): N plain and N witnessed `tsnode stamp
#            --json` processes, alternating, each after a random pause of
#            0 to 1 s (so that stamps fall anywhere between two
#            checkpoints, as independent requesters' do). A stamp's
#            latency is from the receipt's stamp time (the server's
#            clock, which is this machine's) to the moment the process
#            printed its result: process start, key decryption and
#            connecting are left out. extra = witnessed - plain, at p50
#            and p99.
#  gossip    bytes per witness per 1,000 heads: the server runs with
#            --checkpoint-interval 100ms (a witness keeps up with that;
#            at 20 ms, 5 witnesses on 2 cores cosign about 13 heads/s)
#            and a bench stamps 200/s so that the log grows every
#            interval; over --duration, every TCP
#            socket of one witness process is read with `ss -tinp`
#            (bytes_received and bytes_acked, sampled at the start and
#            the end; the connections are long-lived) and the heads are
#            those the server published meanwhile (its "tree head
#            published" debug lines; the witness's tsnode_cosigned_total
#            increase is printed too). Split into the
#            witness's connection to the server (gossip and the log
#            protocol's consistency proofs) and to other witnesses
#            (gossip only). Each witness also relays the others'
#            cosignatures, so the figure grows with W (default 5).
#  cpu       a witness's CPU while the authority stamps --rate (default
#            8000/s, open loop, `tsnode bench --rate`): utime + stime
#            from /proc/PID/stat of each of W (default 3) witnesses,
#            before and after, as % of one core.
#  capacity  the server's stamps/s at --inflight (default 256) for
#            --duration, with no witness and with W (default 50)
#            witnesses attached; the ratio. The witnesses, the server
#            and the load generator share this machine's cores.
#
#   scripts/witness-bench.sh                        # all four
#   scripts/witness-bench.sh --only latency,gossip  # some
#   scripts/equivocation.sh --witnesses 50          # fork to evidence at 50 witnesses (the fifth figure)
#
# Options:
#   --only LIST      comma-separated: latency, gossip, cpu, capacity (default all)
#   --n N            stamps of each kind for latency (1 to 200; default 30)
#   --duration S     seconds of each gossip, cpu and capacity run (1 to 120; default 10)
#   --rate R         stamps/s of the cpu run (default 8000)
#   --inflight N     stamps in flight of the capacity runs (default 256)
#   --capacity-witnesses W   (default 50)
#   --cpu-witnesses W        witnesses attached in the cpu run, of which 3000-3002 are measured (3 to 50; default 3)
#   --bin PATH       use this tsnode binary instead of building one
#
# Identities (server, 1000, 3000..3049) are cached in $TSNODE_KEY_CACHE
# (default ${TMPDIR:-/tmp}/tsnode-swarm, swarm.sh's work folder). Exit
# status: 0 when every run worked; 1 otherwise; 2 for bad usage.
set -euo pipefail
export LC_ALL=C

source "$(dirname "$0")/lib.sh"

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0
}
bad() {
	echo "witness-bench: $*" >&2
	exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || bad "$1 $2: want $3 to $4"; }

only="latency,gossip,cpu,capacity" n=30 duration=10 rate=8000 inflight=256 capw=50 cpuw=3 bin=""
while (($#)); do
	case $1 in
	--only | --n | --duration | --rate | --inflight | --capacity-witnesses | --cpu-witnesses | --bin)
		(($# >= 2)) || bad "$1 needs a value"
		case $1 in
		--only) only=$2 ;;
		--n) n=$2 ;;
		--duration) duration=$2 ;;
		--rate) rate=$2 ;;
		--inflight) inflight=$2 ;;
		--capacity-witnesses) capw=$2 ;;
		--cpu-witnesses) cpuw=$2 ;;
		--bin) bin=$2 ;;
		esac
		shift 2
		;;
	-h | --help) usage ;;
	*) bad "unknown argument $1 (--help lists the options)" ;;
	esac
done
num --n "$n" 1 200
num --duration "$duration" 1 120
num --rate "$rate" 1 100000
num --inflight "$inflight" 1 100000
num --capacity-witnesses "$capw" 1 200
num --cpu-witnesses "$cpuw" 3 50
for m in ${only//,/ }; do
	case $m in latency | gossip | cpu | capacity) ;; *) bad "--only: $m is not latency, gossip, cpu or capacity" ;; esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
for tool in awk curl ss jq; do
	command -v "$tool" >/dev/null || { echo "witness-bench: $tool is needed and not on PATH" >&2; exit 1; }
done
failure_message="witness-bench FAILED"

if [[ -n $bin ]]; then
	tsnode=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	[[ -x $tsnode ]] || bad "--bin $bin is not an executable"
else
	build_tsnode
	tsnode="$work/tsnode"
fi
mkdir -p "$work/logs"
maxw=5
want cpu && ((maxw < 3)) && maxw=3
want capacity && ((maxw < capw)) && maxw=$capw
wids=()
for ((w = 0; w < maxw; w++)); do wids+=($((3000 + w))); done
cached_keys "$key_cache" server 1000 "${wids[@]}"
declare -A peer_id
peer_ids
common=(--keys "$keys" --passphrase-file "$pass")

# --- nodes of one run ------------------------------------------------------
# started: the pids of the current run, stopped by stop_run.
started=()
die() {
	echo "witness-bench: $*" >&2
	for f in "$work"/logs/*; do [[ -s $f ]] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }; done
	exit 1
}

# start_server RUN [FLAGS...]: a server with its own data; sets $srv,
# $srv_pid. Its log levels: $server_log (GOLOG_LOG_LEVEL's form).
server_log=warn
start_server() {
	local name=$1
	shift
	GOLOG_LOG_LEVEL=$server_log "$tsnode" --role server "${common[@]}" --data "$work/$name-server" \
		--listen /ip4/127.0.0.1/tcp/0 "$@" >"$work/logs/$name-server" 2>&1 &
	srv_pid=$!
	pids+=($!) started+=($!)
	srv=$(listen_addr server "$work/logs/$name-server") || die "the server of $name did not start"
}

# start_witnesses RUN W: W witnesses of $srv; sets wpid[] and wurl[] by id.
declare -A wpid wurl
start_witnesses() {
	local name=$1 w=$2 i p wid peers
	free_ports "$w"
	for ((i = 0; i < w; i++)); do
		wid=$((3000 + i))
		peers=()
		for p in $(witness_peers "$i" "$w" 2); do
			peers+=(--peer "/ip4/127.0.0.1/tcp/${ports[p]}/p2p/${peer_id[$((3000 + p))]}")
		done
		"$tsnode" --role witness --id "$wid" "${common[@]}" --log-level warn --data "$work/$name-witness-$wid" \
			--listen "/ip4/127.0.0.1/tcp/${ports[i]}" --server "$srv" "${peers[@]}" --metrics 127.0.0.1:0 \
			>"$work/logs/$name-witness-$wid" 2>&1 &
		wpid[$wid]=$!
		pids+=($!) started+=($!)
	done
	for ((i = 0; i < w; i++)); do
		wid=$((3000 + i))
		listen_addr witness "$work/logs/$name-witness-$wid" >/dev/null || die "witness $wid of $name did not start"
		wurl[$wid]=$(grep -m1 -o 'http://127\.0\.0\.1:[0-9]*/' "$work/logs/$name-witness-$wid")
	done
	sleep 3 # connections and GossipSub meshes
}

# stop_run: stops the current run's processes (TERM, then KILL after 10 s)
# and forgets their pids.
stop_run() {
	local p q keep
	for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${started[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	keep=()
	for q in "${pids[@]}"; do [[ " ${started[*]} " == *" $q "* ]] || keep+=("$q"); done
	pids=("${keep[@]}")
	started=()
	wpid=() wurl=()
}

# metric URL NAME: the sum of the samples of NAME.
metric() {
	curl -fsS --max-time 5 "${1}metrics" 2>/dev/null | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { n += $NF } END { printf "%d", n }'
}

# cpu_ticks PID: utime + stime of PID, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

bench() {
	"$tsnode" bench "${common[@]}" --server "$srv" --flows session --quiet "$@"
}

results=()

# --- latency ---------------------------------------------------------------
if want latency; then
	echo "== latency: $n plain and $n witnessed stamps, 3 of 5 witnesses" >&2
	start_server latency
	start_witnesses latency 5
	policy=(--witness 3000 --witness 3001 --witness 3002 --witness 3003 --witness 3004 --witnesses 3)
	: >"$work/lat-plain" && : >"$work/lat-witnessed"
	mkdir -p "$work/lat-docs"
	for ((i = 0; i < n; i++)); do
		for kind in plain witnessed; do
			sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", r / 32768 }')"
			d="$work/lat-docs/$kind-$i"
			head -c 64 /dev/urandom >"$d"
			args=()
			[[ $kind == witnessed ]] && args=("${policy[@]}")
			# The time each line arrived, then the line.
			out=$("$tsnode" stamp "${common[@]}" --log-level warn --server "$srv" --out "$work/lat-docs" --json \
				--timeout 30s "${args[@]}" "$d" 2>>"$work/logs/latency-stamps" |
				while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done) ||
				die "a $kind stamp failed: ${out#* } $(tail -n 3 "$work/logs/latency-stamps")"
			t1=${out%% *}
			js=${out#* }
			[[ $(jq -r .ok <<<"$js") == true ]] || die "a $kind stamp failed: $js"
			[[ $kind == plain ]] || [[ $(jq -r '.witnesses | length' <<<"$js") -ge 3 ]] || die "not witnessed: $js"
			t0=$(rfc3339_epoch "$(jq -r .time <<<"$js")")
			ms_since "$t0" "$t1" >>"$work/lat-$kind"
			echo >>"$work/lat-$kind"
		done
	done
	stop_run
	p50p=$(pct_of 50 <"$work/lat-plain") p99p=$(pct_of 99 <"$work/lat-plain")
	p50w=$(pct_of 50 <"$work/lat-witnessed") p99w=$(pct_of 99 <"$work/lat-witnessed")
	results+=("latency (3 of 5 witnesses, checkpoint interval 1 s, n=$n each): plain p50 $p50p ms p99 $p99p ms; witnessed p50 $p50w ms p99 $p99w ms; extra p50 $((p50w - p50p)) ms, p99 $((p99w - p99p)) ms (goal p50 <= 1200 ms)")
	echo "   ${results[-1]}" >&2
fi

# --- gossip bytes ----------------------------------------------------------
# sock_bytes PID SERVERPORT: "server_rx server_tx peers_rx peers_tx" over
# the TCP sockets of PID: those whose remote port is SERVERPORT, and the rest.
sock_bytes() {
	ss -tinpH state established 2>/dev/null | awk -v pid="pid=$1," -v sp=":$2" '
		/^ / || /^\t/ { if (mine) { for (i = 1; i <= NF; i++) {
				if ($i ~ /^bytes_received:/) { split($i, a, ":"); rx[srv] += a[2] }
				if ($i ~ /^bytes_acked:/) { split($i, a, ":"); tx[srv] += a[2] } } }
			next }
		{ mine = index($0, pid) > 0; srv = (substr($4, length($4) - length(sp) + 1) == sp) ? 1 : 0
			for (i = 1; i <= NF; i++) {
				if (!mine) break
				if ($i ~ /^bytes_received:/) { split($i, a, ":"); rx[srv] += a[2] }
				if ($i ~ /^bytes_acked:/) { split($i, a, ":"); tx[srv] += a[2] } } }
		END { printf "%d %d %d %d\n", rx[1], tx[1], rx[0], tx[0] }'
}
if want gossip; then
	echo "== gossip: 5 witnesses, heads every 100 ms for $duration s" >&2
	server_log="warn,tsnode/witness=debug"
	start_server gossip --checkpoint-interval 100ms
	server_log=warn
	start_witnesses gossip 5
	published() { grep -c 'tree head published' "$work/logs/gossip-server" || true; }
	sport=${srv#/ip4/127.0.0.1/tcp/}
	sport=${sport%%/*}
	bench --rate 200 --duration $((duration + 4))s >"$work/logs/gossip-bench" 2>&1 &
	bpid=$!
	pids+=($!) started+=($!)
	sleep 2
	c0=$(metric "${wurl[3000]}" tsnode_cosigned_total) h0=$(published)
	read -r srx0 stx0 prx0 ptx0 < <(sock_bytes "${wpid[3000]}" "$sport")
	sleep "$duration"
	c1=$(metric "${wurl[3000]}" tsnode_cosigned_total) h1=$(published)
	read -r srx1 stx1 prx1 ptx1 < <(sock_bytes "${wpid[3000]}" "$sport")
	wait "$bpid" || die "the gossip run's bench failed: $(tail -n 3 "$work/logs/gossip-bench")"
	stop_run
	heads=$((h1 - h0))
	((heads > 0)) || die "the server published no head in the gossip run"
	per() { awk -v b="$1" -v h="$heads" 'BEGIN { printf "%.0f", b / h * 1000 / 1024 }'; }
	results+=("gossip (witness 3000 of 5, $heads heads published in $duration s, $((c1 - c0)) cosigned by it): per 1,000 heads, server link in $(per $((srx1 - srx0))) KiB out $(per $((stx1 - stx0))) KiB; witness links in $(per $((prx1 - prx0))) KiB out $(per $((ptx1 - ptx0))) KiB; total $(per $((srx1 - srx0 + stx1 - stx0 + prx1 - prx0 + ptx1 - ptx0))) KiB (TCP payload bytes from ss: bytes_received + bytes_acked)")
	echo "   ${results[-1]}" >&2
fi

# --- witness CPU -------------------------------------------------------------
if want cpu; then
	echo "== cpu: $cpuw witnesses while the server is offered $rate stamps/s for $duration s (the first 3 measured)" >&2
	start_server cpu
	start_witnesses cpu "$cpuw"
	declare -A t0
	for wid in 3000 3001 3002; do t0[$wid]=$(cpu_ticks "${wpid[$wid]}"); done
	s0=$EPOCHREALTIME
	bench --rate "$rate" --duration "${duration}s" --server-pid "$srv_pid" --json "$work/cpu.json" >"$work/logs/cpu-bench" 2>&1 ||
		die "the cpu run's bench failed: $(tail -n 3 "$work/logs/cpu-bench")"
	s1=$EPOCHREALTIME
	line=""
	for wid in 3000 3001 3002; do
		d=$(($(cpu_ticks "${wpid[$wid]}") - t0[$wid]))
		line+=" $wid $(awk -v d="$d" -v hz="$hz" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", d / hz / (b - a) * 100 }')%"
	done
	cos=$(metric "${wurl[3000]}" tsnode_cosigned_total)
	stop_run
	got=$(jq -r '.flows[0].stamps_per_second | floor' "$work/cpu.json")
	results+=("cpu ($cpuw witnesses, offered $rate/s, achieved $got stamps/s, $cos heads cosigned by 3000): witness CPU as % of one core:$line (goal <= 2%)")
	echo "   ${results[-1]}" >&2
fi

# --- capacity ----------------------------------------------------------------
if want capacity; then
	declare -A cap
	for w in 0 "$capw"; do
		echo "== capacity: --inflight $inflight for $duration s with $w witnesses" >&2
		start_server "capacity-$w"
		((w == 0)) || start_witnesses "capacity-$w" "$w"
		bench --inflight "$inflight" --duration "${duration}s" --server-pid "$srv_pid" --json "$work/capacity-$w.json" \
			>"$work/logs/capacity-$w-bench" 2>&1 || die "the capacity bench with $w witnesses failed: $(tail -n 3 "$work/logs/capacity-$w-bench")"
		stop_run
		cap[$w]=$(jq -r '.flows[0].stamps_per_second | floor' "$work/capacity-$w.json")
		echo "   $w witnesses: ${cap[$w]} stamps/s, server CPU $(jq -r '.flows[0].server_cpu_us_per_stamp | floor' "$work/capacity-$w.json") µs/stamp" >&2
	done
	results+=("capacity (--inflight $inflight, $duration s): no witness ${cap[0]} stamps/s; $capw witnesses ${cap[$capw]} stamps/s; ratio $(awk -v a="${cap[$capw]}" -v b="${cap[0]}" 'BEGIN { printf "%.1f", a / b * 100 }')% (goal >= 90%; the $capw witnesses share the $(nproc) cores with the server and the bench)")
	echo "   ${results[-1]}" >&2
fi

echo
echo "machine: $(nproc) cores, $(awk '/^model name/ { sub(/^[^:]*: /, ""); print; exit }' /proc/cpuinfo)"
printf '%s\n' "${results[@]}"

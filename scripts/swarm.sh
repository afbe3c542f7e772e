#!/usr/bin/env bash
# swarm.sh: a scripted local swarm on loopback, as many nodes as you like.
#
# One server (id server), N requesters (ids 1001..) and M verifiers (ids
# 2001..), each with its own RSA-4096 identity, all on 127.0.0.1. Every
# requester stamps and relays its K documents (one document at a time,
# so each document's latency is the time between its result and the
# previous one); requester i relays to verifier i mod M, the next one
# each round. All requesters run at once. With --duration, each
# requester starts new rounds until D has passed.
#
# With --witnesses W, W witnesses (ids 3000..) follow the server: each
# is connected to the server and dials the next witness on a ring and two
# others at random; every requester then wants witnessed receipts (v3,
# --witness for every witness id, --witnesses K) and every verifier
# checks them with the same policy.
#
#   scripts/swarm.sh                                  # 20 requesters, 5 verifiers, 10 documents each
#   scripts/swarm.sh --requesters 50 --verifiers 10 --documents 4 --duration 60s
#   scripts/swarm.sh --witnesses 10 --require 6       # receipts cosigned by 6 of 10 witnesses
#
# Options:
#   --requesters N   requester processes (1 to 999; default 20)
#   --verifiers M    verifier processes (1 to 999; default 5)
#   --documents K    documents per requester and round (default 10)
#   --size BYTES     size of each document (default 4096)
#   --duration D     keep starting rounds until D (e.g. 30s, 2m) has passed (default: one round)
#   --transport T    tcp, quic, or both (odd requesters on QUIC; default both)
#   --witnesses W    witness processes (0 to 200; default 0: v2 receipts, no witnesses)
#   --require K      cosignatures each receipt needs, of the W (1 to W; default a
#                    majority, W/2+1)
#   --work DIR       work folder (default ${TMPDIR:-/tmp}/tsnode-swarm): the keys
#                    and their passphrase are made once and reused from
#                    DIR/keys; the last run's logs, documents and receipts
#                    are in DIR/run
#   --bin PATH       use this tsnode binary instead of building one
#
# Prints one line per node (stamps, verdicts, failures, p50/p99 latency;
# for a witness, the tree heads it cosigned and the equivocations it
# logged) and a final line. Exit status: 0 when every document was
# stamped (and witnessed, with --witnesses) and got a valid verdict, the
# server's log holds every stamp, no witness logged an equivocation and
# every node stopped cleanly; 1 otherwise; 2 for bad usage. Everything it starts is
# stopped on exit, also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

source "$(dirname "$0")/lib.sh"

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0
}
bad() {
	echo "swarm: $*" >&2
	exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || bad "$1 $2: want $3 to $4"; }

requesters=20 verifiers=5 documents=10 size=4096 duration="" transport=both witnesses=0 require=""
workdir="${TMPDIR:-/tmp}/tsnode-swarm" bin=""
while (($#)); do
	case $1 in
	--requesters | --verifiers | --documents | --size | --duration | --transport | --work | --bin | --witnesses | --require)
		(($# >= 2)) || bad "$1 needs a value"
		v=$2
		case $1 in
		--requesters) requesters=$v ;;
		--verifiers) verifiers=$v ;;
		--documents) documents=$v ;;
		--size) size=$v ;;
		--duration) duration=$v ;;
		--transport) transport=$v ;;
		--work) workdir=$v ;;
		--bin) bin=$v ;;
		--witnesses) witnesses=$v ;;
		--require) require=$v ;;
		esac
		shift 2
		;;
	-h | --help) usage ;;
	*) bad "unknown argument $1 (--help lists the options)" ;;
	esac
done
num --requesters "$requesters" 1 999
num --verifiers "$verifiers" 1 999
num --documents "$documents" 1 10000
num --size "$size" 0 $((1 << 30))
num --witnesses "$witnesses" 0 200
if ((witnesses > 0)); then
	[[ -n $require ]] || require=$((witnesses / 2 + 1))
	num --require "$require" 1 "$witnesses"
elif [[ -n $require ]]; then
	bad "--require needs --witnesses W"
fi
case $transport in tcp | quic | both) ;; *) bad "--transport $transport: want tcp, quic or both" ;; esac
duration_s=0
if [[ -n $duration ]]; then
	[[ $duration =~ ^([0-9]+)(s|m|h)?$ ]] || bad "--duration $duration: want seconds, e.g. 30s or 2m"
	case ${BASH_REMATCH[2]} in
	m) duration_s=$((BASH_REMATCH[1] * 60)) ;;
	h) duration_s=$((BASH_REMATCH[1] * 3600)) ;;
	*) duration_s=${BASH_REMATCH[1]} ;;
	esac
fi
failure_message="swarm FAILED"
tools=(awk sort split seq)
((witnesses == 0)) || tools+=(curl ss)
for tool in "${tools[@]}"; do
	command -v "$tool" >/dev/null || { echo "swarm: $tool is needed and not on PATH" >&2; exit 1; }
done

# die MESSAGE: fails with the tails of the logs of this run.
die() {
	echo "swarm: $*" >&2
	for f in "${run:-/nonexistent}"/logs/*; do
		[[ -s $f ]] && { echo "--- $f" >&2; tail -n 8 "$f" >&2; }
	done
	exit 1
}

# The work folder holds keys: it must be ours and private.
mkdir -p "$workdir"
[[ -O $workdir ]] || die "$workdir belongs to another user; pick --work DIR"
chmod 700 "$workdir"
workdir=$(cd "$workdir" && pwd)
run="$workdir/run"
rm -rf "$run"
mkdir -p "$run/logs" "$run/docs" "$run/receipts" "$run/lat" "$run/server-data"

if [[ -n $bin ]]; then
	tsnode=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	[[ -x $tsnode ]] || bad "--bin $bin is not an executable"
else
	t=$EPOCHREALTIME
	build_tsnode
	tsnode="$work/tsnode"
	printf '   built in %.1f s\n' "$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" >&2
fi

# --- identities: made once, reused by later runs ---------------------------
keys="$workdir/keys" pass="$workdir/passphrase"
ids=(server)
for ((i = 1; i <= requesters; i++)); do ids+=($((1000 + i))); done
for ((j = 1; j <= verifiers; j++)); do ids+=($((2000 + j))); done
for ((w = 0; w < witnesses; w++)); do ids+=($((3000 + w))); done
if [[ ! -s $pass ]]; then
	# Keys under a passphrase we no longer have are useless.
	rm -rf "$keys"
	(umask 077 && head -c 24 /dev/urandom | base64 >"$pass")
fi
missing=()
for id in "${ids[@]}"; do
	[[ -s $keys/private/$id.pem && -s $keys/public/$id.pem ]] || missing+=("$id")
done
t=$EPOCHREALTIME
if ((${#missing[@]})); then
	echo "== make ${#missing[@]} RSA-4096 identities in $keys ($(nproc) at a time; cached for later runs)" >&2
	first=${#pids[@]}
	for id in "${missing[@]}"; do
		# --force: a half-written pair from an interrupted run is replaced.
		"$tsnode" keygen --force --id "$id" --keys "$keys" --passphrase-file "$pass" >/dev/null 2>"$run/logs/keygen-$id" &
		pids+=($!)
		if ((${#pids[@]} - first >= $(nproc))); then
			wait "${pids[first]}" || die "keygen failed: $(cat "$run/logs/keygen-"*)"
			pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
		fi
	done
	while ((${#pids[@]} > first)); do
		wait "${pids[first]}" || die "keygen failed: $(cat "$run/logs/keygen-"*)"
		pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
	done
	keygen_s=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	echo "   made in $keygen_s s" >&2
else
	echo "== ${#ids[@]} identities cached in $keys" >&2
fi

# --- server and verifiers --------------------------------------------------
loopback=(--listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1)
common=(--keys "$keys" --passphrase-file "$pass" --log-level info)
# The witness policy of requesters and verifiers: every witness counts.
policy=()
for ((w = 0; w < witnesses; w++)); do policy+=(--witness $((3000 + w))); done
((witnesses == 0)) || policy+=(--witnesses "$require")
daemons=()
"$tsnode" --role server "${common[@]}" --data "$run/server-data" "${loopback[@]}" \
	>"$run/logs/server" 2>&1 &
pids+=($!) daemons+=("server:$!")
for ((j = 1; j <= verifiers; j++)); do
	"$tsnode" --role verifier --id $((2000 + j)) "${common[@]}" "${loopback[@]}" "${policy[@]}" \
		>"$run/logs/verifier-$((2000 + j))" 2>&1 &
	pids+=($!) daemons+=("$((2000 + j)):$!")
done

# addr ROLE LOG TRANSPORT: the address the node printed for that transport.
addr() {
	local line
	for _ in $(seq 600); do
		line=$(grep -m1 "^$1 listening on /ip4/127\.0\.0\.1.*/$3/" "$2" || true)
		[[ -n $line ]] && { echo "${line#"$1 listening on "}"; return; }
		sleep 0.1
	done
	die "$1 ($2) did not print a $3 address within 60 s"
}
declare -A tcp quic
tcp[server]=$(addr server "$run/logs/server" tcp)
quic[server]=$(addr server "$run/logs/server" quic-v1)
for ((j = 1; j <= verifiers; j++)); do
	v=$((2000 + j))
	tcp[$v]=$(addr verifier "$run/logs/verifier-$v" tcp)
	quic[$v]=$(addr verifier "$run/logs/verifier-$v" quic-v1)
done
echo "== server and $verifiers verifiers listening on 127.0.0.1" >&2

# --- witnesses -------------------------------------------------------------
# Each listens on a port picked beforehand, so that every one can be
# told its peers' addresses at start: it dials the server, the next
# witness of the ring and two more at random (witness_peers).
if ((witnesses > 0)); then
	declare -A peer_id
	peer_ids
	free_ports "$witnesses"
	wports=("${ports[@]}")
	for ((w = 0; w < witnesses; w++)); do
		wid=$((3000 + w))
		peers=()
		for p in $(witness_peers "$w" "$witnesses" 2); do
			peers+=(--peer "/ip4/127.0.0.1/tcp/${wports[p]}/p2p/${peer_id[$((3000 + p))]}")
		done
		mkdir -p "$run/witness-$wid"
		"$tsnode" --role witness --id "$wid" "${common[@]}" --data "$run/witness-$wid" \
			--listen "/ip4/127.0.0.1/tcp/${wports[w]}" --server "${tcp[server]}" "${peers[@]}" \
			--metrics 127.0.0.1:0 >"$run/logs/witness-$wid" 2>&1 &
		pids+=($!) daemons+=("$wid:$!")
	done
	for ((w = 0; w < witnesses; w++)); do
		listen_addr witness "$run/logs/witness-$((3000 + w))" /tcp/ >/dev/null ||
			die "witness $((3000 + w)) did not start"
	done
	echo "== $witnesses witnesses (ids 3000..$((3000 + witnesses - 1))) following the server; receipts need $require cosignatures" >&2
fi

# --- requesters ------------------------------------------------------------
for ((i = 1; i <= requesters; i++)); do
	d="$run/docs/$((1000 + i))"
	mkdir -p "$d"
	if ((size > 0)); then
		head -c $((documents * size)) /dev/urandom | split -b "$size" -d -a 5 - "$d/doc-"
	fi
	for ((k = 0; k < documents; k++)); do
		f=$(printf '%s/doc-%05d' "$d" "$k")
		[[ -e $f ]] || : >"$f"
	done
done

# stamp_lines: each line of stdin, after the time it arrived.
stamp_lines() {
	local line
	while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

# requester I: runs requester 1000+I's rounds, in a subshell of its own.
# Its log has "#round R start" and "#round R exit RC" lines around each
# round's output; a TERM stops the round's tsnode first.
requester() {
	local i=$1 id=$((1000 + $1)) r=0 v tr child="" rc t0=$EPOCHREALTIME
	local log="$run/logs/requester-$id"
	trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 143' TERM INT
	local files=()
	for ((k = 0; k < documents; k++)); do files+=(--file "$(printf '%s/doc-%05d' "$run/docs/$id" "$k")"); done
	tr=tcp
	if [[ $transport == quic ]] || [[ $transport == both && $((i % 2)) == 1 ]]; then tr=quic; fi
	while :; do
		v=$((2000 + (i - 1 + r) % verifiers + 1))
		local -n a=$tr
		echo "$EPOCHREALTIME #round $r start verifier $v $tr" >>"$log"
		"$tsnode" --role requester --id "$id" --keys "$keys" --passphrase-file "$pass" --log-level warn \
			--server "${a[server]}" --verifier "${a[$v]}" --verifier-id "$v" \
			--out "$run/receipts/$id/$r" --parallel 1 "${policy[@]}" "${files[@]}" \
			> >(stamp_lines >>"$log") 2>>"$log.stderr" &
		child=$!
		wait "$child" && rc=0 || rc=$?
		child=""
		wait # for stamp_lines to finish writing
		echo "$EPOCHREALTIME #round $r exit $rc" >>"$log"
		r=$((r + 1))
		((duration_s > 0)) || break
		awk -v a="$t0" -v b="$EPOCHREALTIME" -v d="$duration_s" 'BEGIN { exit !(b - a < d) }' || break
	done
}

echo "== $requesters requesters x $documents documents of $size bytes${duration:+, rounds for $duration}" >&2
start=$EPOCHREALTIME
rpids=()
for ((i = 1; i <= requesters; i++)); do
	requester "$i" &
	pids+=($!) rpids+=($!)
done
for p in "${rpids[@]}"; do wait "$p" || true; done
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# The server's log must hold exactly the stamps the requesters got.
logsize=$("$tsnode" log --id 1001 --keys "$keys" --passphrase-file "$pass" --server "${tcp[server]}" 2>"$run/logs/log.stderr" |
	awk '$1 == "size" { print $2 }') || true

# Each witness's count of heads cosigned, before it stops.
declare -A cosigned
for ((w = 0; w < witnesses; w++)); do
	wid=$((3000 + w))
	murl=$(grep -m1 -o 'http://127\.0\.0\.1:[0-9]*/metrics' "$run/logs/witness-$wid" || true)
	cosigned[$wid]=$( { [[ -n $murl ]] && curl -fsS --max-time 5 "$murl"; } 2>/dev/null |
		awk '/^tsnode_cosigned_total/ { n += $NF } END { printf "%d", n }') || cosigned[$wid]="?"
done

# Stop the server, verifiers and witnesses now, to check that each stops cleanly.
stopped_bad=()
for d in "${daemons[@]}"; do kill -TERM "${d#*:}" 2>/dev/null || true; done
for d in "${daemons[@]}"; do
	wait "${d#*:}" || stopped_bad+=("${d%%:*} (exit $?)")
done

# --- summary ---------------------------------------------------------------
# pct P FILE: the P-th percentile (nearest rank) of the numbers in FILE, in ms.
pct() {
	sort -g "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1
		printf "%.0f", v[i] * 1000 }'
}
failed=0 wrong=0 vwrong=0 total_docs=0 total_stamps=0 total_valid=0 total_witnessed=0 wbad=0
: >"$run/lat/all"
: >"$run/lat/first"
row() { printf '%-6s %-9s %6s %6s %8s %8s %7s %7s %7s %7s\n' "$@"; }
echo
row node role rounds stamps verdicts failures first_s p50_ms p99_ms wall_s
for ((i = 1; i <= requesters; i++)); do
	id=$((1000 + i))
	log="$run/logs/requester-$id"
	# Fields: rounds stamps valid verdicts wrong ok first-latencies wall
	# witnessed; document latencies go to lat/<id>.
	read -r rounds stamps valid verdicts wrongv ok firsts wall witnessed < <(awk -v lat="$run/lat/$id" '
		$2 == "#round" && $4 == "start" { prev = $1; first = 1; rounds++; if (t0 == "") t0 = $1; next }
		$2 == "#round" && $4 == "exit" { t1 = $1; next }
		{ text = substr($0, index($0, " ") + 1) }
		text ~ /^  stamped / { stamps++ }
		text ~ /^  witnessed / { witnessed++ }
		text ~ /^  verifier .* says / { verdicts++; if (text ~ / says valid(:|$)/) valid++; else wrong++ }
		text ~ /^  (OK$|FAILED)/ {
			# Latencies of documents that went through only.
			if (text ~ /^  OK$/) {
				ok++
				if (first) firsts = firsts (firsts == "" ? "" : ",") sprintf("%.2f", $1 - prev)
				else print $1 - prev > lat
			}
			first = 0
			prev = $1
		}
		END { printf "%d %d %d %d %d %d %s %.1f %d\n", rounds, stamps, valid, verdicts, wrong, ok, (firsts == "" ? "-" : firsts), t1 - t0, witnessed }' "$log")
	touch "$run/lat/$id"
	cat "$run/lat/$id" >>"$run/lat/all"
	docs=$((rounds * documents))
	fails=$((docs - ok))
	# With witnesses, a document went through only if its receipt was witnessed.
	((witnesses == 0 || witnessed >= ok)) || fails=$((docs - witnessed))
	total_witnessed=$((total_witnessed + witnessed))
	total_docs=$((total_docs + docs)) total_stamps=$((total_stamps + stamps)) total_valid=$((total_valid + valid))
	failed=$((failed + fails)) wrong=$((wrong + wrongv))
	echo "${firsts//,/$'\n'}" | grep -v '^-$' >>"$run/lat/first" || true
	first_med=$(echo "${firsts//,/$'\n'}" | median || true)
	row "$id" requester "$rounds" "$stamps" "$verdicts" "$fails" "$first_med" "$(pct 50 "$run/lat/$id")" "$(pct 99 "$run/lat/$id")" "$wall"
done
for ((j = 1; j <= verifiers; j++)); do
	v=$((2000 + j))
	# Verdict lines in go-log's text or JSON format: "verdict": "valid".
	read -r logged bad < <(awk '
		match($0, /"verdict": ?"[^"]*"/) { n++; if (substr($0, RSTART, RLENGTH) !~ /"valid"$/) b++ }
		END { printf "%d %d\n", n, b }' "$run/logs/verifier-$v")
	vwrong=$((vwrong + bad))
	row "$v" verifier - - "$logged" "$bad" - - - -
done
for ((w = 0; w < witnesses; w++)); do
	wid=$((3000 + w))
	# An equivocation here would be a bug: the swarm has one honest server.
	bad=$(grep -c 'equivocation' "$run/logs/witness-$wid" || true)
	wbad=$((wbad + bad))
	row "$wid" witness - "${cosigned[$wid]}" - "$bad" - - - -
done
server_fail=0
if [[ $logsize != "$total_stamps" ]]; then
	server_fail=1
	echo "server log size ${logsize:-unknown} != $total_stamps stamps received: $(tail -n 3 "$run/logs/log.stderr")" >&2
fi
row server server - "${logsize:-?}" - "$server_fail" - - - -
echo
echo "latency per document (stamp + relay, after the first of each round): p50 $(pct 50 "$run/lat/all") ms, p99 $(pct 99 "$run/lat/all") ms, n=$(wc -l <"$run/lat/all")"
echo "first document of a round (includes key decryption and connecting): median $(median <"$run/lat/first" || true) s"
if ((witnesses > 0)); then
	echo "witnesses: $total_witnessed of $total_stamps receipts cosigned by $require of $witnesses witnesses (witness rows: stamps = tree heads cosigned, failures = equivocation lines logged)"
fi
echo "logs, documents and receipts of this run: $run"
for d in "${stopped_bad[@]}"; do echo "$d did not stop cleanly on SIGTERM; see $run/logs" >&2; done
summary="$requesters requesters, $verifiers verifiers${require:+, $witnesses witnesses ($require required)}: $total_valid of $total_docs documents stamped and verified valid in $elapsed s"
summary+=" ($(awk -v n="$total_valid" -v s="$elapsed" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }') docs/s)"
if ((failed > 0 || wrong > 0 || vwrong > 0 || server_fail > 0 || wbad > 0 || ${#stopped_bad[@]} > 0)); then
	for ((i = 1; i <= requesters; i++)); do
		f="$run/logs/requester-$((1000 + i))"
		grep -q 'FAILED\|#round .* exit [1-9]' "$f" && { echo "--- $f" >&2; grep -m3 'FAILED' "$f" >&2; tail -n 3 "$f.stderr" >&2; }
	done
	failure_message=""
	echo "swarm FAILED: $summary; $failed failed, $wrong wrong verdicts ($vwrong logged by verifiers)" >&2
	exit 1
fi
echo "swarm OK: $summary"

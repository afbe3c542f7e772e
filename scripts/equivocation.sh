#!/usr/bin/env bash
# equivocation.sh: an authority that shows two views, and how fast its
# witnesses prove it (PROTOCOL.md §13.5), on loopback.
#
# Two servers run with the same `server` key on two --data directories:
# two logs of one authority. W witnesses (ids 3000..) follow it, the even
# ones through server A, the odd ones through server B (each witness's
# --server is one of the two), and all are peered with each other: each
# dials the next witness on a ring (so every ring link joins the two
# halves) and --links more at random. Then:
#
#  1. the fork: one document is stamped on each server at once (plain
#     `tsnode stamp`, no witnesses), so that each log holds one leaf of
#     its own: two heads of size 1 with different roots. The fork time
#     is the later of the two receipts' tree_head times, the moment the
#     second head was signed (both servers share this machine's clock);
#  2. every witness's <data>/evidence/server.evidence.json is polled
#     until all exist or --bound passes; each one's delay is the file's
#     modification time after the fork, in ms (the servers publish their
#     heads every --checkpoint-interval, 1 s, so the delay includes up to
#     one interval); p50 and max are printed;
#  3. each file is checked with `tsnode verify --evidence`, each
#     witness's /readyz must fail and its tsnode_equivocations_total be 1;
#  4. a witnessed stamp is tried on each server (`tsnode stamp --witness
#     ... --witnesses K --timeout 5s`): it must fail, and no witness may
#     cosign anything more (tsnode_cosigned_total unchanged).
#
#   scripts/equivocation.sh                      # 10 witnesses, 6 required
#   scripts/equivocation.sh --witnesses 50       # the 50-witness measurement
#
# Options:
#   --witnesses W   witness processes (2 to 200; default 10)
#   --require K     cosignatures the post-evidence stamps ask for (1 to W;
#                   default a majority, W/2+1)
#   --links L       random peers each witness dials besides the next one
#                   on the ring (default 2)
#   --bound S       fail unless every witness holds evidence within S
#                   seconds of the fork (default 30)
#   --bin PATH      use this tsnode binary instead of building one
#
# The identities (server, 1000, 3000..) are made once and reused from
# $TSNODE_KEY_CACHE (default ${TMPDIR:-/tmp}/tsnode-swarm, swarm.sh's
# work folder: keys/ and passphrase); 50 RSA-4096 keys take a minute or
# two on 2 cores the first time. Everything else is in a temporary
# folder, removed at exit (KEEP=1 keeps it). Exit status: 0 when every
# witness held valid evidence within the bound and no stamp got
# witnessed after it; 1 otherwise; 2 for bad usage.
set -euo pipefail
export LC_ALL=C

source "$(dirname "$0")/lib.sh"

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0
}
bad() {
	echo "equivocation: $*" >&2
	exit 2
}
num() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || bad "$1 $2: want $3 to $4"; }

witnesses=10 require="" links=2 bound=30 bin=""
while (($#)); do
	case $1 in
	--witnesses | --require | --links | --bound | --bin)
		(($# >= 2)) || bad "$1 needs a value"
		case $1 in
		--witnesses) witnesses=$2 ;;
		--require) require=$2 ;;
		--links) links=$2 ;;
		--bound) bound=$2 ;;
		--bin) bin=$2 ;;
		esac
		shift 2
		;;
	-h | --help) usage ;;
	*) bad "unknown argument $1 (--help lists the options)" ;;
	esac
done
num --witnesses "$witnesses" 2 200
[[ -n $require ]] || require=$((witnesses / 2 + 1))
num --require "$require" 1 "$witnesses"
num --links "$links" 0 $((witnesses - 2 > 0 ? witnesses - 2 : 0))
num --bound "$bound" 1 600
for tool in awk curl ss stat date; do
	command -v "$tool" >/dev/null || { echo "equivocation: $tool is needed and not on PATH" >&2; exit 1; }
done
failure_message="equivocation FAILED"

die() {
	echo "equivocation: $*" >&2
	for f in "$work"/logs/*; do
		[[ -s $f ]] && { echo "--- $f" >&2; tail -n 6 "$f" >&2; }
	done
	exit 1
}

if [[ -n $bin ]]; then
	tsnode=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	[[ -x $tsnode ]] || bad "--bin $bin is not an executable"
else
	build_tsnode
	tsnode="$work/tsnode"
fi
mkdir -p "$work/logs" "$work/docs" "$work/receipts"

wids=()
for ((w = 0; w < witnesses; w++)); do wids+=($((3000 + w))); done
cached_keys "$key_cache" server 1000 "${wids[@]}"
common=(--keys "$keys" --passphrase-file "$pass" --log-level info)

# --- the two views: one key, two logs ---------------------------------------
declare -A server
for v in a b; do
	"$tsnode" --role server "${common[@]}" --data "$work/server-$v" --listen /ip4/127.0.0.1/tcp/0 \
		>"$work/logs/server-$v" 2>&1 &
	pids+=($!)
done
for v in a b; do
	server[$v]=$(listen_addr server "$work/logs/server-$v") || die "server $v did not start"
done
echo "== one authority, two servers: A ${server[a]}" >&2
echo "                                B ${server[b]}" >&2

# --- witnesses -------------------------------------------------------------
declare -A peer_id
peer_ids
free_ports "$witnesses"
declare -A view murl
for ((w = 0; w < witnesses; w++)); do
	wid=$((3000 + w))
	view[$wid]=$([[ $((w % 2)) == 0 ]] && echo a || echo b)
	peers=()
	for p in $(witness_peers "$w" "$witnesses" "$links"); do
		peers+=(--peer "/ip4/127.0.0.1/tcp/${ports[p]}/p2p/${peer_id[$((3000 + p))]}")
	done
	"$tsnode" --role witness --id "$wid" "${common[@]}" --data "$work/witness-$wid" \
		--listen "/ip4/127.0.0.1/tcp/${ports[w]}" --server "${server[${view[$wid]}]}" "${peers[@]}" \
		--metrics 127.0.0.1:0 >"$work/logs/witness-$wid" 2>&1 &
	pids+=($!)
done
for wid in "${wids[@]}"; do
	listen_addr witness "$work/logs/witness-$wid" >/dev/null || die "witness $wid did not start"
	murl[$wid]=$(grep -m1 -o 'http://127\.0\.0\.1:[0-9]*/' "$work/logs/witness-$wid") || die "witness $wid printed no metrics address"
done
# Let the connections and GossipSub meshes form (heartbeat 1 s).
sleep 3
echo "== $witnesses witnesses: even ids through A, odd through B; each dials the next on a ring and $links at random" >&2

# metric WID NAME: the sum of witness WID's samples of metric NAME.
metric() {
	curl -fsS --max-time 5 "${murl[$1]}metrics" 2>/dev/null | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { n += $NF } END { printf "%d", n }'
}

# --- the fork --------------------------------------------------------------
for v in a b; do head -c 64 /dev/urandom >"$work/docs/fork-$v"; done
spids=()
for v in a b; do
	"$tsnode" stamp "${common[@]}" --log-level warn --server "${server[$v]}" --out "$work/receipts/fork-$v" \
		"$work/docs/fork-$v" >"$work/logs/stamp-fork-$v" 2>&1 &
	spids+=($!) pids+=($!)
done
for p in "${spids[@]}"; do wait "$p" || die "the fork's stamp failed: $(cat "$work"/logs/stamp-fork-*)"; done
stamped=$EPOCHREALTIME
fork=0
for v in a b; do
	t=$(grep -A4 '"tree_head"' "$work/receipts/fork-$v/fork-$v.receipt" | sed -n 's/.*"time": "\(.*\)".*/\1/p' | head -1)
	[[ -n $t ]] || die "no tree_head time in the receipt of fork-$v"
	e=$(rfc3339_epoch "$t")
	awk -v a="$e" -v b="$fork" 'BEGIN { exit !(a > b) }' && fork=$e
	echo "   server $v signed a head of size 1 at $t" >&2
done
echo "== forked at $fork (both stamps returned $(ms_since "$fork" "$stamped") ms later); waiting up to $bound s for evidence" >&2

# --- evidence --------------------------------------------------------------
deadline=$(awk -v a="$fork" -v b="$bound" 'BEGIN { printf "%.3f", a + b }')
declare -A held
nheld=0
while :; do
	for wid in "${wids[@]}"; do
		[[ -n ${held[$wid]:-} ]] && continue
		f="$work/witness-$wid/evidence/server.evidence.json"
		[[ -s $f ]] || continue
		held[$wid]=$(stat -c %.9Y "$f")
		nheld=$((nheld + 1))
	done
	((nheld == witnesses)) && break
	awk -v a="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(a < d) }' || break
	sleep 0.05
done

failed=0
: >"$work/delays"
printf '\n%-6s %-6s %12s %-12s %-8s %-8s\n' witness server evidence_ms verify readyz counted
for wid in "${wids[@]}"; do
	f="$work/witness-$wid/evidence/server.evidence.json"
	if [[ -z ${held[$wid]:-} ]]; then
		printf '%-6s %-6s %12s %-12s\n' "$wid" "${view[$wid]^^}" "none" "-"
		failed=$((failed + 1))
		continue
	fi
	ms=$(ms_since "$fork" "${held[$wid]}")
	echo "$ms" >>"$work/delays"
	kind=$("$tsnode" verify --evidence "$f" --keys "$keys" 2>&1) && vrc=0 || vrc=$?
	if ((vrc == 0)); then
		kind=$(grep -o -m1 -E '\b(fork|rollback|inconsistent)\b' <<<"$kind" || echo proven)
	else
		kind="FAILED"
		failed=$((failed + 1))
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${murl[$wid]}readyz" || true)
	[[ $code == 503 ]] || failed=$((failed + 1))
	eq=$(metric "$wid" tsnode_equivocations_total)
	[[ $eq == 1 ]] || failed=$((failed + 1))
	printf '%-6s %-6s %12s %-12s %-8s %-8s\n' "$wid" "${view[$wid]^^}" "$ms" "$kind" "$code" "$eq"
done
n=$(wc -l <"$work/delays")
echo
echo "evidence at $n of $witnesses witnesses: p50 $(pct_of 50 <"$work/delays") ms, max $(pct_of 100 <"$work/delays") ms after the fork (bound $bound s)"

# --- after the evidence: no view gets witnessed ------------------------------
declare -A before
for wid in "${wids[@]}"; do before[$wid]=$(metric "$wid" tsnode_cosigned_total); done
policy=()
for wid in "${wids[@]}"; do policy+=(--witness "$wid"); done
policy+=(--witnesses "$require")
witnessed=0
spids=()
for v in a b; do
	head -c 64 /dev/urandom >"$work/docs/after-$v"
	"$tsnode" stamp "${common[@]}" --log-level warn --server "${server[$v]}" --out "$work/receipts/after-$v" \
		"${policy[@]}" --timeout 5s "$work/docs/after-$v" >"$work/logs/stamp-after-$v" 2>&1 &
	spids+=($!) pids+=($!)
done
for i in 0 1; do
	v=$([[ $i == 0 ]] && echo a || echo b)
	if wait "${spids[i]}"; then
		echo "a stamp on server ${v^^} got $require cosignatures after the evidence:" >&2
		cat "$work/logs/stamp-after-$v" >&2
		witnessed=$((witnessed + 1))
	else
		r="$work/receipts/after-$v/after-$v.receipt"
		grep -q '"tsnode-receipt-v3"' "$r" 2>/dev/null && { echo "server ${v^^}: a v3 receipt was written" >&2; witnessed=$((witnessed + 1)); }
		echo "stamp on server ${v^^} with --witnesses $require after the evidence: refused, as it should be:"
		grep -m1 -i 'witness' "$work/logs/stamp-after-$v" | sed 's/^/   /' || true
	fi
done
more=0
for wid in "${wids[@]}"; do
	after=$(metric "$wid" tsnode_cosigned_total)
	((after == before[$wid])) || { echo "witness $wid cosigned $((after - before[$wid])) heads after holding evidence" >&2; more=$((more + 1)); }
done
echo "heads cosigned after the evidence: $more witnesses cosigned any"

if ((failed > 0 || witnessed > 0 || more > 0 || n < witnesses)); then
	failure_message=""
	echo "equivocation FAILED: $((witnesses - n)) witnesses without evidence within $bound s, $failed failed checks, $witnessed stamps witnessed after the evidence, $more witnesses cosigned after it" >&2
	exit 1
fi
echo "equivocation OK: $witnesses of $witnesses witnesses proved the fork (p50 $(pct_of 50 <"$work/delays") ms, max $(pct_of 100 <"$work/delays") ms); no stamp witnessed after it"

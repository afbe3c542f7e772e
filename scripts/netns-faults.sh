#!/usr/bin/env bash
# netns-faults.sh: network faults between three hosts, and truthful answers.
#
# Needs root, `ip netns` and nftables (`nft`); without them it says so and
# exits 0. Builds tsnode, makes throwaway keys, and makes four network
# namespaces: a bridge, and three hosts on it, each with its own address
# in 10.213.0.0/24 (only inside these namespaces): the server (.1), the
# verifier (.2) and the requester (.3). Then, over TCP and over QUIC:
#
#   baseline    a few files, no fault
#   loss10      10% of the requester's packets dropped both ways (nft
#               numgen), 20 small files and one of 4 MiB
#   partition   requester <-> server dropped (nft) for 5 s during a
#               60-file run, then restored
#   linkcut     a 64 MiB document; once its receipt is written (the relay
#               starts, held to 8 MB/s by nft), the requester's cable (its
#               veth on the bridge) goes down for 5 s
#   linkcut-long (TCP only) the same cut for 15 s, longer than the
#               requester waits (--timeout 12s): a clear failure expected
#   verifier-kill (TCP only) the verifier is killed (-9) as soon as it
#               stored a document of a 30-file run, and restarted on the
#               same address and store
#   witness-partition (TCP) one authority key on two fresh servers (.1
#               port 7410, and .4): a fork. Witness 3000 (.5) follows
#               server A, 3001 (.6) server B, and 3002 (.7), cut off from
#               both servers by nft from its start (--server A all the
#               same), is peered with the other two only. One document
#               is stamped on each server; 3002 must hold evidence that
#               `tsnode verify --evidence` accepts within 30 s, learnt
#               from the other witnesses alone (the nft counters show its
#               packets to the servers dropped)
#
# After each scenario a short fault-free run must succeed (recovery).
# Truthful means: every document the requester calls OK has a receipt
# that `tsnode verify` finds VALID and a valid verdict; every failure
# names its cause; every receipt saved verifies; the exit status matches;
# no run hangs past its bound. Everything the verifier stored verifies
# too. It prints a table, scenario -> outcome, and takes 3 to 6 minutes.
#
#   sudo scripts/netns-faults.sh
#   sudo scripts/netns-faults.sh --quick     # baselines and self-tests only
#   sudo scripts/netns-faults.sh --witness   # witness-partition only
#   KEEP=1 sudo scripts/netns-faults.sh      # keep the work folder (logs)
#
# Exit status: 0 when every outcome was truthful and every recovery run
# succeeded (or the checks were skipped), 1 otherwise.
set -euo pipefail

me=netns-faults.sh
quick="" witness_only=""
case ${1:-} in
"") ;;
--quick) quick=1 ;;
--witness) witness_only=1 ;;
*) echo "$me: unknown argument $1 (want nothing, --quick or --witness)" >&2 && exit 2 ;;
esac
skip() {
	echo "$me: SKIPPED: $*"
	exit 0
}
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, veth, nftables)"
command -v ip >/dev/null || skip "needs ip (iproute2)"
command -v nft >/dev/null ||
	skip "needs nft: install nftables (apt-get install -y nftables, or dnf install nftables); tc netem is not used"
probe="tsnf-probe-$$"
ip netns add "$probe" 2>/dev/null || skip "cannot make a network namespace (ip netns add failed)"
ip netns del "$probe"

failure_message="netns-faults FAILED"
source "$(dirname "$0")/lib.sh"
start_time=$SECONDS

# The namespaces: names unique to this run, deleted on any exit (after
# lib.sh has stopped the processes in them).
tag="tsnf$$"
br="$tag-br" srv="$tag-srv" ver="$tag-ver" req="$tag-req"
made_ns=()
del_netns() {
	local ns
	for ns in ${made_ns[@]+"${made_ns[@]}"}; do ip netns del "$ns" 2>/dev/null || true; done
}
on_cleanup=del_netns
net=10.213.0
srv_ip=$net.1 ver_ip=$net.2 req_ip=$net.3

echo "== namespaces: bridge $br; hosts $srv ($srv_ip), $ver ($ver_ip), $req ($req_ip)" >&2
ip netns add "$br" && made_ns+=("$br")
ip -n "$br" link add br0 type bridge
ip -n "$br" link set br0 up
for h in srv ver req; do
	ns=${!h} ipvar=${h}_ip
	ip netns add "$ns" && made_ns+=("$ns")
	ip -n "$br" link add "v$h" type veth peer name eth0 netns "$ns"
	ip -n "$br" link set "v$h" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "${!ipvar}/24" dev eth0
	ip -n "$ns" link set eth0 up
done

build_tsnode
tsnode="$work/tsnode"
make_keys server 2000 1000 3000 3001 3002

# start ROLE NS IP PORT LOG EXTRA...: a server or verifier in NS on TCP and
# QUIC at IP:PORT; sets $started to its pid once it listens.
start() {
	local role=$1 ns=$2 ip=$3 port=$4 log=$5
	shift 5
	ip netns exec "$ns" "$tsnode" --role "$role" --keys "$keys" --passphrase-file "$pass" --log-level warn \
		--listen "/ip4/$ip/tcp/$port" --listen "/ip4/$ip/udp/$port/quic-v1" "$@" >>"$log" 2>&1 &
	started=$!
	pids+=("$started")
	for _ in $(seq 300); do
		[[ $(grep -c "^$role listening on /ip4/$ip/" "$log") -ge 2 ]] && return 0
		kill -0 "$started" 2>/dev/null || break
		sleep 0.1
	done
	echo "$me: the $role did not start:" >&2
	tail -n 5 "$log" >&2
	exit 1
}
forget() {
	local p keep=()
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=(${keep[@]+"${keep[@]}"})
}
start server "$srv" "$srv_ip" 7400 "$work/server.log" --data "$work/data"
start verifier "$ver" "$ver_ip" 7401 "$work/verifier.log" --store "$work/store"
verifier_pid=$started
addr() { # addr IP PORT TRANSPORT
	if [[ $3 == tcp ]]; then echo "/ip4/$1/tcp/$2"; else echo "/ip4/$1/udp/$2/quic-v1"; fi
}

# docs DIR N SIZE: N files of SIZE bytes of random data in DIR.
docs() {
	mkdir -p "$1"
	local i
	for ((i = 0; i < $2; i++)); do head -c "$3" /dev/urandom >"$1/f$i.bin"; done
}

# requester NAME TRANSPORT PARALLEL DIR [TIMEOUT]: runs a requester in its
# namespace on every file of DIR (each given TIMEOUT, default 60s),
# receipts to $work/NAME/out, output to $work/NAME/run.log, in the
# background; sets $rpid. At most 180 s: a hang is untruthful.
requester() {
	local name=$1 transport=$2 parallel=$3 dir=$4 timeout=${5:-60s} f files=()
	mkdir -p "$work/$name"
	for f in "$dir"/*; do files+=(--file "$f"); done
	echo $((${#files[@]} / 2)) >"$work/$name/nfiles"
	timeout 180 ip netns exec "$req" "$tsnode" --role requester --keys "$keys" --passphrase-file "$pass" \
		--log-level error --server "$(addr "$srv_ip" 7400 "$transport")" --verifier "$(addr "$ver_ip" 7401 "$transport")" \
		--out "$work/$name/out" --parallel "$parallel" --timeout "$timeout" "${files[@]}" >"$work/$name/run.log" 2>&1 &
	rpid=$!
	pids+=("$rpid")
}
# finish NAME: waits for the requester of NAME; writes its status.
finish() {
	local rc=0
	wait "$rpid" || rc=$?
	forget "$rpid"
	echo "$rc" >"$work/$1/rc"
}
# wait_receipt NAME: waits (at most 60 s) until NAME's first receipt is
# written, i.e. a stamp came back.
wait_receipt() {
	for _ in $(seq 600); do
		compgen -G "$work/$1/out/*.receipt" >/dev/null && return 0
		kill -0 "$rpid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

results="$work/results" untruthful=0 unrecovered=0
: >"$results"
verify_receipt() { # verify_receipt RECEIPT DOC
	"$tsnode" verify --keys "$keys" --receipt "$1" "$2" >/dev/null 2>&1
}
# judge NAME DIR NOTE: is what the requester said true? Appends a row
# to the table; counts untruthful outcomes.
judge() {
	local name=$1 dir=$2 note=${3:-} log="$work/$1/run.log" rc n ok=0 failed=0 lies=() first="" rcpt doc
	rc=$(cat "$work/$name/rc") n=$(cat "$work/$name/nfiles")
	# One line per document: path, receipt, verdict, OK or FAILED message.
	# Progress lines of long transfers ("DOC: relaying 17.1 MiB of ...")
	# are not results.
	awk '/^[^ ]/ && !/^tsnode:/ && !/documents stamped and verified$/ && !/: (hashing|relaying) [0-9]/ { if (p != "") print p "\037" r "\037" v "\037" s; p = $0; r = ""; v = ""; s = "" }
		/^  receipt / { r = $2 } /^  verifier / { v = $4 } /^  OK$/ { s = "OK" } /^  FAILED / { sub(/^  FAILED +/, ""); s = "FAILED " $0 }
		END { if (p != "") print p "\037" r "\037" v "\037" s }' "$log" >"$work/$name/docs.tsv"
	# Fields split on \037: a tab would merge empty fields.
	while IFS=$'\037' read -r doc rcpt verdict status; do
		case $status in
		OK)
			ok=$((ok + 1))
			[[ $verdict == valid:* ]] || lies+=("$doc: OK without a valid verdict ($verdict)")
			if [[ -z $rcpt ]] || ! verify_receipt "$rcpt" "$doc"; then lies+=("$doc: OK but its receipt ${rcpt:-(none)} does not verify"); fi
			;;
		"FAILED "?*)
			failed=$((failed + 1))
			[[ -n $first ]] || first=${status#FAILED }
			;;
		*) lies+=("$doc: neither OK nor a failure with a cause (${status:-nothing})") ;;
		esac
	done <"$work/$name/docs.tsv"
	# Every receipt saved verifies, whatever happened after the stamp.
	for rcpt in "$work/$name/out"/*.receipt; do
		[[ -e $rcpt ]] || continue
		verify_receipt "$rcpt" "$dir/$(basename "$rcpt" .receipt)" || lies+=("saved receipt $rcpt does not verify")
	done
	local global
	global=$(grep -m1 '^tsnode:' "$log" || true)
	if ((rc == 124)); then
		lies+=("the requester hung past 180 s")
	elif ((ok + failed == 0)); then
		((rc != 0)) && [[ -n $global ]] || lies+=("no result, exit $rc, no error message")
		first=$global
	else
		((ok + failed == n)) || lies+=("$((ok + failed)) results for $n files")
		grep -q "^$ok of $n documents stamped and verified$" "$log" || lies+=("its summary line does not say $ok of $n")
		if ((ok == n && rc != 0)) || ((ok < n && rc == 0)); then lies+=("exit $rc with $ok of $n OK"); fi
	fi
	local outcome
	if ((${#lies[@]})); then
		untruthful=$((untruthful + 1))
		outcome="UNTRUTHFUL: ${lies[0]}"
		printf '%s\n' "${lies[@]}" >"$work/$name/untruthful"
	elif ((ok == n)); then
		outcome="ok: $ok/$n VALID"
	else
		outcome="failed truthfully: $ok/$n VALID, $((n - ok)) failed, first: ${first:0:90}"
	fi
	printf '%-26s %s%s\n' "$name" "$outcome" "${note:+ ($note)}" | tee -a "$results"
}
# recover TRANSPORT NAME: a short fault-free run must now succeed.
recover() {
	requester "$2" "$1" 4 "$work/docs/small3"
	finish "$2"
	judge "$2" "$work/docs/small3"
	grep -Eq "^$2 +ok: " "$results" || unrecovered=$((unrecovered + 1))
}
# Faults are made on the wire, in the bridge's namespace (bridge family,
# forward hook): dropping in a host's own output chain would instead fail
# its sendmsg with EPERM, which no real network does.
wire() { ip netns exec "$br" nft "$@"; }
wire_on() { # wire_on RULE...: the rules, in a fresh table
	local r
	wire add table bridge faults
	wire add chain bridge faults wire '{ type filter hook forward priority 0; }'
	for r in "$@"; do wire add rule bridge faults wire $r; done
}
wire_off() { wire delete table bridge faults; }

docs "$work/docs/small5" 5 1000
docs "$work/docs/small3" 3 1000
docs "$work/docs/loss" 20 2000
head -c $((4 << 20)) /dev/urandom >"$work/docs/loss/big.bin"
docs "$work/docs/many" 60 $((256 << 10))
docs "$work/docs/verif" 30 $((512 << 10))
mkdir -p "$work/docs/large" && head -c $((64 << 20)) /dev/urandom >"$work/docs/large/doc64m.bin"

echo "== scenarios" >&2
printf '%-26s %s\n' scenario outcome | tee -a "$results"
if [[ -z $witness_only ]]; then
for t in tcp quic; do
	tr=$t
	[[ $t == tcp ]] || tr=quic-v1
	s0=$SECONDS
	requester "baseline-$t" "$tr" 8 "$work/docs/small5"
	finish "baseline-$t"
	judge "baseline-$t" "$work/docs/small5" "$((SECONDS - s0)) s"
	[[ -z $quick ]] || continue

	# 10% of packets lost, each way, at the requester.
	wire_on "iifname vreq numgen random mod 10 0 drop" "oifname vreq numgen random mod 10 0 drop"
	s0=$SECONDS
	requester "loss10-$t" "$tr" 8 "$work/docs/loss"
	finish "loss10-$t"
	wire_off
	judge "loss10-$t" "$work/docs/loss" "$((SECONDS - s0)) s"
	recover "$tr" "loss10-$t-after"

	# Partition requester <-> server for 5 s during a multi-file run.
	s0=$SECONDS
	requester "partition-$t" "$tr" 2 "$work/docs/many"
	note=""
	if wait_receipt "partition-$t"; then
		wire_on "ip saddr $srv_ip ip daddr $req_ip drop" "ip saddr $req_ip ip daddr $srv_ip drop"
		kill -0 "$rpid" 2>/dev/null && note="cut while running" || note="run ended before the cut: not exercised"
		sleep 5
		wire_off
	fi
	finish "partition-$t"
	judge "partition-$t" "$work/docs/many" "${note:-no stamp before the cut}, $((SECONDS - s0)) s"
	recover "$tr" "partition-$t-after"

	# The requester's cable cut during the relay of a 64 MiB document.
	wire_on "ip saddr $req_ip ip daddr $ver_ip limit rate over 8 mbytes/second drop"
	s0=$SECONDS
	requester "linkcut-$t" "$tr" 1 "$work/docs/large"
	note=""
	if wait_receipt "linkcut-$t"; then
		sleep 1
		ip -n "$br" link set vreq down
		kill -0 "$rpid" 2>/dev/null && note="cut mid-relay" || note="relay ended before the cut: not exercised"
		sleep 5
		ip -n "$br" link set vreq up
	fi
	finish "linkcut-$t"
	wire_off
	judge "linkcut-$t" "$work/docs/large" "${note:-no stamp before the cut}, $((SECONDS - s0)) s"
	recover "$tr" "linkcut-$t-after"
done

if [[ -z $quick ]]; then
# A cut longer than the requester waits: the relay must fail, clearly,
# and the receipt saved before it must still verify.
wire_on "ip saddr $req_ip ip daddr $ver_ip limit rate over 8 mbytes/second drop"
s0=$SECONDS
requester linkcut-long-tcp tcp 1 "$work/docs/large" 12s
note=""
if wait_receipt linkcut-long-tcp; then
	sleep 1
	ip -n "$br" link set vreq down
	kill -0 "$rpid" 2>/dev/null && note="cut mid-relay for 15 s, requester --timeout 12s" || note="relay ended before the cut: not exercised"
	sleep 15
	ip -n "$br" link set vreq up
fi
finish linkcut-long-tcp
wire_off
judge linkcut-long-tcp "$work/docs/large" "${note:-no stamp before the cut}, $((SECONDS - s0)) s"
recover tcp linkcut-long-tcp-after

# The verifier killed during a run, and restarted on the same address.
# It is killed as soon as it has stored one document of this run, so
# that others are in flight.
s0=$SECONDS
stored_before=$(find "$work/store" -mindepth 1 -maxdepth 1 -type d | wc -l)
requester verifier-kill-tcp tcp 8 "$work/docs/verif"
note=""
for _ in $(seq 600); do
	(($(find "$work/store" -mindepth 1 -maxdepth 1 -type d | wc -l) > stored_before)) && break
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$rpid" 2>/dev/null; then
	kill -KILL "$verifier_pid"
	wait "$verifier_pid" 2>/dev/null || true
	forget "$verifier_pid"
	kill -0 "$rpid" 2>/dev/null && note="killed while running" || note="run ended before the kill: not exercised"
	sleep 1
	start verifier "$ver" "$ver_ip" 7401 "$work/verifier.log" --store "$work/store"
	verifier_pid=$started
fi
finish verifier-kill-tcp
judge verifier-kill-tcp "$work/docs/verif" "${note:-the run ended before the kill: not exercised}, $((SECONDS - s0)) s"
recover tcp verifier-kill-tcp-after
fi

fi # not --witness

# --- witness-partition -------------------------------------------------------
# add_host NAME IP: one more host namespace on the bridge.
add_host() {
	local ns=$1 ip=$2
	ip netns add "$ns" && made_ns+=("$ns")
	ip -n "$br" link add "v${ns#"$tag-"}" type veth peer name eth0 netns "$ns"
	ip -n "$br" link set "v${ns#"$tag-"}" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
}
wfail=0
if [[ -z $quick ]]; then
	s0=$SECONDS
	srvb="$tag-srvb" wit0="$tag-w0" wit1="$tag-w1" wit2="$tag-w2"
	srvb_ip=$net.4 w0_ip=$net.5 w1_ip=$net.6 w2_ip=$net.7
	add_host "$srvb" "$srvb_ip"
	add_host "$wit0" "$w0_ip"
	add_host "$wit1" "$w1_ip"
	add_host "$wit2" "$w2_ip"
	declare -A peer_id
	peer_ids
	sid=${peer_id[server]}
	srv_a="/ip4/$srv_ip/tcp/7410/p2p/$sid" srv_b="/ip4/$srvb_ip/tcp/7410/p2p/$sid"
	w0="/ip4/$w0_ip/tcp/7402/p2p/${peer_id[3000]}" w1="/ip4/$w1_ip/tcp/7402/p2p/${peer_id[3001]}"
	w2="/ip4/$w2_ip/tcp/7402/p2p/${peer_id[3002]}"
	# 3002 is cut off from both servers before it starts; it can reach
	# the other witnesses only.
	wire_on "ip saddr $w2_ip ip daddr $srv_ip counter drop" "ip saddr $srv_ip ip daddr $w2_ip counter drop" \
		"ip saddr $w2_ip ip daddr $srvb_ip counter drop" "ip saddr $srvb_ip ip daddr $w2_ip counter drop"
	start server "$srv" "$srv_ip" 7410 "$work/fork-a.log" --data "$work/fork-a"
	start server "$srvb" "$srvb_ip" 7410 "$work/fork-b.log" --data "$work/fork-b"
	# witness NS IP ID SERVER PEER...: a witness on TCP at IP:7402.
	witness() {
		local ns=$1 ip=$2 id=$3 server=$4 p peers=()
		shift 4
		for p in "$@"; do peers+=(--peer "$p"); done
		ip netns exec "$ns" "$tsnode" --role witness --id "$id" --keys "$keys" --passphrase-file "$pass" \
			--log-level info --data "$work/witness-$id" --listen "/ip4/$ip/tcp/7402" --server "$server" "${peers[@]}" \
			>>"$work/witness-$id.log" 2>&1 &
		pids+=($!)
	}
	witness "$wit0" "$w0_ip" 3000 "$srv_a" "$w1"
	witness "$wit1" "$w1_ip" 3001 "$srv_b" "$w0"
	witness "$wit2" "$w2_ip" 3002 "$srv_a" "$w0" "$w1"
	for id in 3000 3001 3002; do
		for _ in $(seq 300); do grep -q '^witness listening on' "$work/witness-$id.log" && break; sleep 0.1; done
	done
	sleep 3 # connections and GossipSub meshes
	head -c 100 /dev/urandom >"$work/fork-doc-a" && head -c 100 /dev/urandom >"$work/fork-doc-b"
	stamped=0
	for v in a b; do
		server=$srv_a
		[[ $v == a ]] || server=$srv_b
		timeout 60 ip netns exec "$req" "$tsnode" stamp --keys "$keys" --passphrase-file "$pass" --log-level warn \
			--server "$server" --out "$work/fork-receipts-$v" "$work/fork-doc-$v" >"$work/fork-stamp-$v.log" 2>&1 &&
			stamped=$((stamped + 1))
	done
	fork_t=$EPOCHREALTIME
	ev="$work/witness-3002/evidence/server.evidence.json"
	for _ in $(seq 300); do [[ -s $ev ]] && break; sleep 0.1; done
	dropped=$(wire list table bridge faults | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }')
	wire_off
	note="$stamped of 2 fork stamps"
	held=""
	for id in 3000 3001; do [[ -s $work/witness-$id/evidence/server.evidence.json ]] && held+=" $id"; done
	if [[ $stamped != 2 ]]; then
		wfail=1
		printf '%-26s %s\n' witness-partition "FAILED: $note; see $work/fork-stamp-*.log" | tee -a "$results"
	elif [[ ! -s $ev ]]; then
		wfail=1
		printf '%-26s %s\n' witness-partition "FAILED: the partitioned witness 3002 holds no evidence 30 s after the fork (evidence at:${held:- none}); see $work/witness-3002.log" | tee -a "$results"
	elif ! out=$("$tsnode" verify --evidence "$ev" --keys "$keys" 2>&1); then
		wfail=1
		printf '%-26s %s\n' witness-partition "FAILED: tsnode verify --evidence rejects 3002's evidence: $out" | tee -a "$results"
	elif ((dropped == 0)); then
		wfail=1
		printf '%-26s %s\n' witness-partition "FAILED: no packet between 3002 and the servers was dropped: the partition did not hold" | tee -a "$results"
	else
		printf '%-26s %s\n' witness-partition "ok: 3002, cut off from both servers ($dropped packets dropped), held verified evidence $(awk -v a="$fork_t" -v b="$(stat -c %.9Y "$ev")" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms after the second stamp returned (evidence also at:${held:- none}), $((SECONDS - s0)) s" | tee -a "$results"
	fi
fi

if [[ -z $witness_only ]]; then
# What the verifier kept: each folder's document and receipt verify. A
# folder without its document is a store that the kill interrupted: the
# verifier does not clean it up when it restarts, and would leave it
# empty if the same receipt were relayed again (reported, not counted as
# untruthful: no verdict said that document was stored).
stored=0 incomplete=0
leftovers=$(find "$work/store" -maxdepth 1 -name '.incoming-*' 2>/dev/null | wc -l)
for d in "$work/store"/*/; do
	[[ -d $d ]] || continue
	if [[ ! -f $d/document ]]; then
		incomplete=$((incomplete + 1))
		continue
	fi
	stored=$((stored + 1))
	if ! verify_receipt "$d/receipt.json" "$d/document"; then
		untruthful=$((untruthful + 1))
		printf '%-26s UNTRUTHFUL: %s\n' verifier-store "stored ${d%/} does not verify" | tee -a "$results"
	fi
done
printf '%-26s %s\n' verifier-store "$stored stored documents verify; left by the kill: $incomplete folders without a document, $leftovers .incoming-* files" | tee -a "$results"

# The judge can fail: a copy of baseline-tcp with one receipt altered
# (its serial) must be called untruthful.
cp -r "$work/baseline-tcp" "$work/judge-selftest"
sed -i "s#$work/baseline-tcp/#$work/judge-selftest/#" "$work/judge-selftest/run.log"
one=$(ls "$work/judge-selftest/out/"*.receipt | sed -n 1p)
sed -i 's/"serial": [0-9]*/"serial": 999999/' "$one"
saved_results=$results saved_untruthful=$untruthful
results="$work/judge-selftest/results"
judge judge-selftest "$work/docs/small5" >/dev/null
caught=$((untruthful - saved_untruthful))
results=$saved_results untruthful=$saved_untruthful
if ((caught == 1)); then
	printf '%-26s %s\n' judge-selftest "ok: an altered receipt is called untruthful ($(sed -n 1p "$work/judge-selftest/untruthful" | sed "s#$work/##g"))" | tee -a "$results"
else
	untruthful=$((untruthful + 1))
	printf '%-26s %s\n' judge-selftest "UNTRUTHFUL: the judge accepted an altered receipt" | tee -a "$results"
fi

# The offline check can fail: one saved receipt against an altered document.
one=$(ls "$work/baseline-tcp/out/"*.receipt | sed -n 1p)
cp "$work/docs/small5/$(basename "$one" .receipt)" "$work/altered.bin" && echo x >>"$work/altered.bin"
if verify_receipt "$one" "$work/altered.bin"; then
	untruthful=$((untruthful + 1))
	printf '%-26s UNTRUTHFUL: %s\n' altered-document "tsnode verify accepted $one for an altered document" | tee -a "$results"
fi

fi # not --witness

echo
echo "netns-faults: $((SECONDS - start_time)) s, $untruthful untruthful outcome(s), $unrecovered scenario(s) not recovered, $wfail witness scenario(s) failed"
if ((untruthful + unrecovered + wfail > 0)); then
	KEEP=1 failure_message=""
	echo "netns-faults FAILED; details in each scenario's folder (untruthful, run.log)"
	exit 1
fi
echo "netns-faults OK: every outcome truthful"

#!/usr/bin/env bash
# demo.sh: a local tsnode swarm, end to end.
#
# Builds tsnode, makes the three identities (server, 1000, 2000) in a
# temporary folder, starts a server and a verifier on loopback, then stamps
# and relays a sample document over TCP and over QUIC (stamp sessions, v2
# receipts) and once more over TCP with the prototype-style one-shot flow
# (v1 receipt). It checks the receipts with `tsnode verify` and with plain
# openssl, shows that a tampered document fails, prints the server's signed
# tree head, and stops everything it started, on success or failure.
#
#   scripts/demo.sh            # run it
#   KEEP=1 scripts/demo.sh     # keep the temporary folder to look around
#
# Exit status: 0 when every step did what it should, non-zero otherwise.
set -euo pipefail

failure_message="demo FAILED"
source "$(dirname "$0")/lib.sh"

step() { printf '\n== %s\n' "$*"; }
die() {
	echo "demo: $*" >&2
	for f in "$work"/*.log; do
		[[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# wait_addr LOGFILE ROLE TRANSPORT: the first full multiaddr the role
# printed for that transport (tcp or quic-v1) on 127.0.0.1.
wait_addr() {
	local log=$1 role=$2 transport=$3 line
	for _ in $(seq 300); do
		line=$(grep -m1 "^$role listening on /ip4/127\.0\.0\.1.*/$transport/" "$log" || true)
		[[ -n $line ]] && { echo "${line#"$role listening on "}"; return; }
		sleep 0.1
	done
	die "$role did not print a $transport address within 30 s"
}

for tool in go openssl xxd sha256sum base64; do
	command -v "$tool" >/dev/null || die "$tool is needed and not on PATH"
done

step "build tsnode"
(cd "$root" && go build -o "$work/tsnode" ./cmd/tsnode)
tsnode="$work/tsnode"
echo "built $tsnode"

step "make the identities server, 1000, 2000 (RSA-4096; takes a few seconds)"
# A random passphrase in a 0600 file: it never goes on a command line.
pass="$work/passphrase"
(umask 077 && head -c 24 /dev/urandom | base64 >"$pass")
keys="$work/keys"
for id in server 1000 2000; do
	"$tsnode" keygen --id "$id" --keys "$keys" --passphrase-file "$pass" | sed -n 's/^peer ID */  '"$id"' -> /p'
done
"$tsnode" id --keys "$keys"

step "start the server and the verifier on loopback (TCP and QUIC)"
loopback=(--listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1)
"$tsnode" --role server --keys "$keys" --passphrase-file "$pass" --data "$work/server-data" \
	"${loopback[@]}" >"$work/server.log" 2>&1 &
pids+=($!)
"$tsnode" --role verifier --keys "$keys" --passphrase-file "$pass" --store "$work/received" \
	"${loopback[@]}" >"$work/verifier.log" 2>&1 &
pids+=($!)
server_tcp=$(wait_addr "$work/server.log" server tcp)
server_quic=$(wait_addr "$work/server.log" server quic-v1)
verifier_tcp=$(wait_addr "$work/verifier.log" verifier tcp)
verifier_quic=$(wait_addr "$work/verifier.log" verifier quic-v1)
printf '  server   %s\n           %s\n  verifier %s\n           %s\n' "$server_tcp" "$server_quic" "$verifier_tcp" "$verifier_quic"

doc="$work/report.txt"
printf 'Quarterly report\n\nRevenue rose.\r\nNo trailing newline is stripped: tsnode hashes the exact bytes.' >"$doc"

notes="$work/notes.txt"
printf 'meeting notes\n' >"$notes"
# Larger than the relay's maximum message size: it goes in chunks.
big="$work/scan.bin"
head -c $((3 << 20)) /dev/urandom >"$big"
docs=("$doc" "$notes" "$big")

requester() {
	"$tsnode" --role requester --keys "$keys" --passphrase-file "$pass" --log-level warn "$@"
}

step "stamp and relay three documents over TCP, one stamp session (v2 receipts)"
requester --server "$server_tcp" --verifier "$verifier_tcp" --out "$work/tcp" \
	--file "$doc" --file "$notes" --file "$big" ||
	die "requester over TCP failed"

step "stamp and relay $(basename "$doc") over QUIC (stamp session, v2 receipt)"
requester --server "$server_quic" --verifier "$verifier_quic" --file "$doc" --out "$work/quic" ||
	die "requester over QUIC failed"

step "stamp and relay $(basename "$doc") over TCP, prototype-style one-shot flow (v1 receipt)"
requester --oneshot --server "$server_tcp" --verifier "$verifier_tcp" --file "$doc" --out "$work/oneshot" ||
	die "one-shot requester failed"

v2="$work/tcp/report.txt.receipt"
v1="$work/oneshot/report.txt.receipt"

step "check the receipts offline with tsnode verify"
for f in "${docs[@]}"; do
	rc="$work/tcp/$(basename "$f").receipt"
	"$tsnode" verify --keys "$keys" --receipt "$rc" "$f" || die "tsnode verify refused $rc"
done
for rc in "$work/quic/report.txt.receipt" "$v1"; do
	"$tsnode" verify --keys "$keys" --receipt "$rc" "$doc" || die "tsnode verify refused $rc"
done

step "check the receipts with plain openssl (no tsnode; docs/PROTOCOL.md §11)"
# receipt_field FILE KEY INDENT: a string field of the indented receipt JSON.
receipt_field() {
	sed -n "s/^$3\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" "$1"
}
server_pub="$keys/public/server.pem"
doc_hash=$(sha256sum "$doc" | cut -d' ' -f1)

# v1: the server signed the statement itself.
receipt_field "$v1" signed_data "  " | base64 -d >"$work/v1.statement"
receipt_field "$v1" signature "  " | base64 -d >"$work/v1.sig"
openssl dgst -sha256 -verify "$server_pub" -signature "$work/v1.sig" "$work/v1.statement" ||
	die "openssl: v1 statement signature"
# The document hash sits at bytes 38..69 of the statement (after the tag
# "tsnode-timestamp-v1" and "sha-256", each with a 4-byte length).
[[ $(xxd -p -s 38 -l 32 "$work/v1.statement" | tr -d '\n') == "$doc_hash" ]] ||
	die "openssl: v1 statement is not about $doc"
echo "v1 statement carries sha-256 $doc_hash"

# v2: the server signed a tree head; the leaf is in that tree.
# check_v2 RECEIPT DOC
check_v2() {
	local rc=$1 want base
	want=$(sha256sum "$2" | cut -d' ' -f1)
	base="$work/$(basename "$(dirname "$rc")")-$(basename "$rc")"
	receipt_field "$rc" signed_data "    " | base64 -d >"$base.head"
	receipt_field "$rc" signature "    " | base64 -d >"$base.sig"
	local head_pub=$server_pub
	if [[ -n $(receipt_field "$rc" delegation "    ") ]]; then
		# An online key signed the head (PROTOCOL.md §5.6, §11.6): the
		# server's key signed the delegation, the head's time is in its
		# window, and the head verifies with the delegated key.
		receipt_field "$rc" delegation "    " | base64 -d >"$base.dlg"
		receipt_field "$rc" delegation_signature "    " | base64 -d >"$base.dlg.sig"
		openssl dgst -sha256 -verify "$server_pub" -signature "$base.dlg.sig" "$base.dlg" >/dev/null ||
			{ echo "openssl: the online key's delegation in $rc" >&2; return 1; }
		local n nb na t
		n=$(wc -c <"$base.dlg")
		nb=$(tail -c 64 "$base.dlg" | head -c 30) na=$(tail -c 30 "$base.dlg")
		t=$(tail -c 30 "$base.head")
		# Times of one fixed width (§2.4) compare as strings.
		[[ ! $t < $nb && ! $t > $na ]] ||
			{ echo "openssl: the head of $rc ($t) is outside its online key's window $nb to $na" >&2; return 1; }
		tail -c 159 "$base.dlg" | head -c 91 | openssl pkey -pubin -inform DER -out "$base.online.pem" 2>/dev/null ||
			{ echo "openssl: the online key of $rc ($n-byte delegation)" >&2; return 1; }
		head_pub=$base.online.pem
	fi
	openssl dgst -sha256 -verify "$head_pub" -signature "$base.sig" "$base.head" >/dev/null ||
		{ echo "openssl: tree head signature of $rc" >&2; return 1; }
	receipt_field "$rc" leaf "  " | base64 -d >"$base.leaf"
	# Leaf tag "tsnode-stamp-leaf-v1" is one byte longer: the hash is at 39.
	[[ $(xxd -p -s 39 -l 32 "$base.leaf" | tr -d '\n') == "$want" ]] ||
		{ echo "openssl: the leaf of $rc is not about $2" >&2; return 1; }
	# RFC 6962 inclusion proof (RFC 9162 section 2.1.3.2), sha256 by openssl.
	local index size root r fn sn p
	index=$(sed -n 's/^  "serial": \([0-9]*\),$/\1/p' "$rc")
	size=$(sed -n 's/^    "size": \([0-9]*\),$/\1/p' "$rc")
	root=$(receipt_field "$rc" root_hash "    ")
	r=$( { printf '\x00'; cat "$base.leaf"; } | h)
	fn=$index sn=$((size - 1))
	for p in $(sed -n '/"inclusion_proof"/,/\]/s/^    "\([0-9a-f]\{64\}\)",\{0,1\}$/\1/p' "$rc"); do
		((sn != 0)) || { echo "openssl: inclusion proof of $rc too long" >&2; return 1; }
		if ((fn & 1)) || ((fn == sn)); then
			r=$(printf '01%s%s' "$p" "$r" | xxd -r -p | h)
			while ! ((fn & 1)) && ((fn != 0)); do
				fn=$((fn >> 1)) sn=$((sn >> 1))
			done
		else
			r=$(printf '01%s%s' "$r" "$p" | xxd -r -p | h)
		fi
		fn=$((fn >> 1)) sn=$((sn >> 1))
	done
	[[ $sn -eq 0 && $r == "$root" ]] || { echo "openssl: the inclusion proof of $rc does not lead to root $root" >&2; return 1; }
	echo "v2 $(basename "$rc"): tree head signature Verified OK$([[ $head_pub == "$server_pub" ]] || echo " (online key, delegated by the server's key)"), leaf carries sha-256 $want,"
	echo "   leaf $index of $size leads to the signed root $root"
}
h() { openssl dgst -sha256 -binary | xxd -p -c 64; }
for f in "${docs[@]}"; do
	check_v2 "$work/tcp/$(basename "$f").receipt" "$f" || die "openssl check failed"
done
check_v2 "$work/quic/report.txt.receipt" "$doc" || die "openssl check failed"
# The same check must refuse a receipt whose inclusion proof was altered.
mkdir -p "$work/altered"
alter='/"inclusion_proof"/,/\]/s/^    "[0-9a-f]/    "X/'
sed "${alter/X/0}" "$work/tcp/notes.txt.receipt" >"$work/altered/notes.txt.receipt"
if cmp -s "$work/tcp/notes.txt.receipt" "$work/altered/notes.txt.receipt"; then
	sed "${alter/X/1}" "$work/tcp/notes.txt.receipt" >"$work/altered/notes.txt.receipt"
fi
if check_v2 "$work/altered/notes.txt.receipt" "$notes" 2>/dev/null; then
	die "the openssl check accepted an altered inclusion proof"
fi
echo "an altered inclusion proof is refused by the same check"

step "a tampered document must fail"
tampered="$work/report-tampered.txt"
sed 's/rose/fell/' "$doc" >"$tampered"
if "$tsnode" verify --keys "$keys" --receipt "$v2" "$tampered"; then
	die "tsnode verify accepted a tampered document"
fi
echo "(refused, as it should be)"

step "the server's signed tree head"
"$tsnode" log --keys "$keys" --passphrase-file "$pass" --server "$server_tcp" ||
	die "tsnode log failed"

step "what the verifier logged and stored"
grep -c 'verdict' "$work/verifier.log" | sed 's/^/verdicts logged: /'
ls "$work/received"

printf '\ndemo OK: stamped, relayed and verified over TCP and QUIC\n'

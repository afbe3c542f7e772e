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

# key_cache: the folder whose keys/ and passphrase the witness scripts
# reuse between runs: $TSNODE_KEY_CACHE, else swarm.sh's default work
# folder, so that the scripts share one set of identities.
key_cache="${TSNODE_KEY_CACHE:-${TMPDIR:-/tmp}/tsnode-swarm}"

# cached_keys DIR ID...: the RSA-4096 identities ID... in DIR/keys under
# the passphrase in DIR/passphrase, made only where missing (nproc at a
# time; a few seconds each) and kept for later runs. DIR must be ours;
# it is made private. Uses the binary $tsnode. Sets $keys and $pass.
cached_keys() {
	local dir=$1 id first missing=() jobs_max
	shift
	mkdir -p "$dir"
	[[ -O $dir ]] || { echo "$(basename "$0"): $dir belongs to another user" >&2; exit 1; }
	chmod 700 "$dir"
	keys="$dir/keys" pass="$dir/passphrase"
	if [[ ! -s $pass ]]; then
		# Keys under a passphrase we no longer have are useless.
		rm -rf "$keys"
		(umask 077 && head -c 24 /dev/urandom | base64 >"$pass")
	fi
	for id in "$@"; do
		[[ -s $keys/private/$id.pem && -s $keys/public/$id.pem ]] || missing+=("$id")
	done
	if ((${#missing[@]} == 0)); then
		echo "== $# identities cached in $keys" >&2
		return 0
	fi
	jobs_max=$(nproc 2>/dev/null || echo 2)
	echo "== make ${#missing[@]} RSA-4096 identities in $keys ($jobs_max at a time; cached for later runs)" >&2
	first=${#pids[@]}
	for id in "${missing[@]}"; do
		# --force: a half-written pair from an interrupted run is replaced.
		"$tsnode" keygen --force --id "$id" --keys "$keys" --passphrase-file "$pass" >/dev/null &
		pids+=($!)
		if ((${#pids[@]} - first >= jobs_max)); then
			wait "${pids[first]}" || { echo "$(basename "$0"): keygen failed" >&2; exit 1; }
			pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
		fi
	done
	while ((${#pids[@]} > first)); do
		wait "${pids[first]}" || { echo "$(basename "$0"): keygen failed" >&2; exit 1; }
		pids=("${pids[@]:0:first}" "${pids[@]:first+1}")
	done
}

# peer_ids: fills the associative array peer_id (id -> libp2p peer ID)
# from the public keys in $keys. Declare it first: declare -A peer_id.
peer_ids() {
	local id p
	while read -r id p; do
		peer_id[$id]=$p
	done < <("$tsnode" id --keys "$keys" --json | sed -E 's/^\{"id":"([^"]*)","peer_id":"([^"]*)".*/\1 \2/')
}

# free_ports N: sets the array $ports to N distinct TCP ports of
# 127.0.0.1 that nothing listens on now (picked at random in 20000 to
# 59999), for nodes that must know each other's address before they
# start. Another program may still take one before it is used: the node
# then fails to listen, and says so.
free_ports() {
	local n=$1 p used
	used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); printf "%s ", a[n] }') "
	ports=()
	while ((${#ports[@]} < n)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		[[ $used == *" $p "* ]] && continue
		used+="$p "
		ports+=("$p")
	done
}

# listen_addr ROLE LOG [PATTERN [SECONDS]]: the first address that a
# node (ROLE: server, verifier, witness) printed in LOG as "ROLE
# listening on /ip4/127.0.0.1..." and matching PATTERN (default /tcp/),
# waiting up to SECONDS (default 60); fails otherwise.
listen_addr() {
	local role=$1 log=$2 pattern=${3:-/tcp/} secs=${4:-60} line i
	for ((i = 0; i < secs * 10; i++)); do
		line=$(grep -m1 "^$role listening on /ip4/127\.0\.0\.1.*$pattern" "$log" 2>/dev/null || true)
		[[ -n $line ]] && { echo "${line#"$role listening on "}"; return 0; }
		sleep 0.1
	done
	echo "$(basename "$0"): $role ($log) did not print a $pattern address within $secs s" >&2
	tail -n 5 "$log" >&2 || true
	return 1
}

# witness_peers I W LINKS: the indexes (0..W-1) that witness I dials: the
# next one on a ring of W (I+1 mod W), and LINKS more picked at random,
# none twice and never I. With every witness dialing its next one, the
# ring is closed both ways; the random links are chords.
witness_peers() {
	local i=$1 w=$2 links=$3 j out=" " tries
	((w > 1)) || return 0
	out+="$(((i + 1) % w)) "
	for ((tries = 0; links > 0 && tries < 20 * links; tries++)); do
		j=$((RANDOM % w))
		[[ $j == "$i" || $out == *" $j "* ]] && continue
		out+="$j "
		links=$((links - 1))
	done
	echo $out
}

# ms_since T0 T1: milliseconds from epoch time T0 to T1 (seconds with
# a fraction, as $EPOCHREALTIME or stat -c %.9Y print them).
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

# pct_of P: the P-th percentile (nearest rank) of the numbers on stdin
# ("n/a" when there are none).
pct_of() {
	grep -E '^-?[0-9.]+$' | sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1
		print v[i] }'
}

# rfc3339_epoch TIME: an RFC 3339 time (tsnode's, UTC with nanoseconds)
# as epoch seconds with the fraction.
rfc3339_epoch() {
	local t=${1%Z} frac=0
	[[ $t =~ \.([0-9]+)$ ]] && frac=${BASH_REMATCH[1]}
	printf '%s.%s\n' "$(date -u -d "${t%%.*}Z" +%s)" "$frac"
}

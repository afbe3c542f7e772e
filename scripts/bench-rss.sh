#!/usr/bin/env bash
# bench-rss.sh: does the server's memory stay flat as its log grows?
#
# Builds tsnode, makes throwaway identities, starts one server process on
# a fresh --data folder, and drives it with `tsnode bench --server` (the
# session flow, every stamp checked) in two phases: up to --first stamps,
# then on to --last. It samples the server's VmRSS and RssAnon from /proc
# every second and prints, per phase, the peak and the value once the
# phase's load is over, then the growth between the two phases. It also
# asks the server for its signed tree head, to show the log's size.
#
#   scripts/bench-rss.sh                         # 1M, then 5M stamps
#   scripts/bench-rss.sh --first 100000 --last 500000 --inflight 64
#
# Options: --first N (default 1000000), --last N (default 5000000),
# --inflight N (default 256), --requesters N (default 4, at most 64).
# Needs Linux (/proc) and a few GB of disk under $TMPDIR.
# Exit status: 0 when every stamp was checked, 1 otherwise, 2 bad usage.
set -euo pipefail

first=1000000 last=5000000 inflight=256 requesters=4
while (($#)); do
	case $1 in
	--first) first=${2:-} && shift ;;
	--last) last=${2:-} && shift ;;
	--inflight) inflight=${2:-} && shift ;;
	--requesters) requesters=${2:-} && shift ;;
	*)
		echo "bench-rss.sh: unknown argument $1 (want --first, --last, --inflight, --requesters)" >&2
		exit 2
		;;
	esac
	shift
done
for v in first last inflight requesters; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench-rss.sh: --$v ${!v}: want a positive integer" >&2
		exit 2
	fi
done
if ((last <= first)); then
	echo "bench-rss.sh: --last $last must be more than --first $first" >&2
	exit 2
fi
if ((requesters > 64)); then
	echo "bench-rss.sh: --requesters $requesters: want 1 to 64" >&2
	exit 2
fi

source "$(dirname "$0")/lib.sh"
build_tsnode
ids=$(seq -s, 1000 $((1000 + requesters - 1)))
make_keys server ${ids//,/ }

echo "== start the server on a fresh log" >&2
"$work/tsnode" --role server --keys "$keys" --passphrase-file "$pass" \
	--data "$work/data" --listen /ip4/127.0.0.1/tcp/0 --log-level warn \
	>"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
addr=""
for _ in $(seq 100); do
	addr=$(grep -m1 -o '/ip4/127\.0\.0\.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' "$work/server.log" || true)
	[[ -n $addr ]] && break
	kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
	sleep 0.1
done
[[ -n $addr ]] || { echo "bench-rss.sh: the server did not say where it listens" >&2; exit 1; }

# The sampler appends "phase rss_kB anon_kB" lines, once a second.
phase=none
samples="$work/samples"
sample() {
	awk -v p="$1" '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} END {print p, r, a}' "/proc/$server/status" >>"$samples"
}
(while kill -0 "$server" 2>/dev/null; do
	sample "$(cat "$work/phase" 2>/dev/null || echo none)"
	sleep 1
done) &
pids+=($!)

run_phase() { # name count
	echo "$1" >"$work/phase"
	echo "== phase $1: $2 stamps" >&2
	"$work/tsnode" bench --keys "$keys" --passphrase-file "$pass" --server "$addr" \
		--flows session --count "$2" --duration 1h --inflight "$inflight" \
		--requesters "$requesters" --reverify 0 --quiet
	echo "idle-$1" >"$work/phase"
	sleep 3 # let the sessions close and the server settle
	sample "end-$1"
}
run_phase first "$first"
run_phase last $((last - first))

echo "== the server's latest signed tree head" >&2
"$work/tsnode" log --keys "$keys" --passphrase-file "$pass" --server "$addr" | grep -i 'size' || true

awk -v first="$first" -v last="$last" '
	{ rss[$1] = $2; anon[$1] = $3 }
	$1 == "first" && $2 > pf { pf = $2 } $1 == "first" && $3 > af { af = $3 }
	$1 == "last" && $2 > pl { pl = $2 } $1 == "last" && $3 > al { al = $3 }
	END {
		printf "%-28s %10s %10s\n", "server memory, MiB", "VmRSS", "RssAnon"
		printf "%-28s %10.1f %10.1f\n", "peak while stamping to " first, pf/1024, af/1024
		printf "%-28s %10.1f %10.1f\n", "after " first " stamps", rss["end-first"]/1024, anon["end-first"]/1024
		printf "%-28s %10.1f %10.1f\n", "peak while stamping to " last, pl/1024, al/1024
		printf "%-28s %10.1f %10.1f\n", "after " last " stamps", rss["end-last"]/1024, anon["end-last"]/1024
		printf "peak growth %+.1f%% (VmRSS), %+.1f%% (RssAnon)\n", 100*(pl/pf-1), 100*(al/af-1)
	}' "$samples"

#!/usr/bin/env bash
# check-deploy.sh: checks the packaging in docs/deploy/.
#
# - the systemd unit: `systemd-analyze verify` must accept it without a
#   single warning (ExecStart pointed at a freshly built tsnode), and must
#   flag a deliberately broken copy, which shows the check can fail;
# - the Dockerfile: where a docker engine answers, builds the image and
#   checks that it runs `tsnode version` as a non-root user and exposes
#   7400 over TCP and UDP.
#
# Each part is skipped, with a line saying why, where its tool is missing
# or cannot work here (no systemd-analyze, no docker engine).
#
#   scripts/check-deploy.sh
#
# Exit status: 0 when every part that ran passed, 1 otherwise.
set -euo pipefail

failure_message="check-deploy FAILED"
source "$(dirname "$0")/lib.sh"

deploy="$root/docs/deploy"
ran=0

check_unit() {
	if ! command -v systemd-analyze >/dev/null; then
		echo "SKIP systemd unit: systemd-analyze is not on PATH"
		return
	fi
	build_tsnode
	local dir="$work/unit" out
	mkdir -p "$dir"
	# verify checks that ExecStart's binary exists: use the one just built.
	sed "s|^ExecStart=/usr/local/bin/tsnode |ExecStart=$work/tsnode |" "$deploy/tsnode.service" >"$dir/tsnode.service"
	grep -q "^ExecStart=$work/tsnode " "$dir/tsnode.service" ||
		{ echo "FAIL systemd unit: no ExecStart=/usr/local/bin/tsnode line to check"; return 1; }
	# A unit known to be good tells whether verify works here at all (it
	# needs no running systemd, but may lack what it needs in a sandbox).
	printf '[Service]\nExecStart=%s version\n' "$work/tsnode" >"$dir/probe.service"
	if ! out=$(systemd-analyze verify --man=no "$dir/probe.service" 2>&1) || [[ -n $out ]]; then
		echo "SKIP systemd unit: systemd-analyze verify does not work here: $out"
		return
	fi
	out=$(systemd-analyze verify --man=no "$dir/tsnode.service" 2>&1) || { echo "FAIL systemd unit: $out"; return 1; }
	[[ -z $out ]] || { echo "FAIL systemd unit: systemd-analyze verify warns: $out"; return 1; }
	# The same check must refuse a unit with a misspelt hardening key.
	sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$dir/tsnode.service" >"$dir/broken.service"
	out=$(systemd-analyze verify --man=no "$dir/broken.service" 2>&1 || true)
	[[ $out == *"Unknown key 'NoNewPrivilege'"* ]] ||
		{ echo "FAIL systemd unit: verify did not flag a misspelt key: $out"; return 1; }
	# What the unit must keep, checked on systemd's own reading of it.
	local want key
	want=(Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict StateDirectory=tsnode
		"LoadCredential=passphrase:/etc/tsnode/passphrase" User=tsnode)
	for key in "${want[@]}"; do
		grep -qx "$key" "$dir/tsnode.service" || { echo "FAIL systemd unit: lacks $key"; return 1; }
	done
	grep -q -- '--data /var/lib/tsnode .*--passphrase-file %d/passphrase' "$dir/tsnode.service" ||
		{ echo "FAIL systemd unit: ExecStart does not take --data from the state directory and the passphrase from the credential"; return 1; }
	if out=$(systemd-analyze security --offline=yes --no-pager "$dir/tsnode.service" 2>/dev/null | tail -n 1); then
		echo "   systemd-analyze security: ${out#→ }"
	fi
	echo "OK   systemd unit: systemd-analyze verify accepts docs/deploy/tsnode.service and flags a broken copy"
	ran=$((ran + 1))
}

check_image() {
	if ! command -v docker >/dev/null; then
		echo "SKIP docker image: docker is not on PATH"
		return
	fi
	local info
	if ! info=$(docker info 2>&1); then
		echo "SKIP docker image: no docker engine answers ($(grep -m1 -i 'cannot\|error' <<<"$info" || echo "docker info failed"))"
		return
	fi
	local tag="tsnode-check-deploy:$$" user ports out
	echo "== docker build -f docs/deploy/Dockerfile" >&2
	docker build -q -f "$deploy/Dockerfile" -t "$tag" "$root" >/dev/null ||
		{ echo "FAIL docker image: docker build failed"; return 1; }
	out=$(docker run --rm "$tag" version) || { echo "FAIL docker image: tsnode version: $out"; docker image rm "$tag" >/dev/null; return 1; }
	user=$(docker image inspect -f '{{.Config.User}}' "$tag")
	ports=$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$tag")
	docker image rm "$tag" >/dev/null
	[[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root ]] || { echo "FAIL docker image: runs as root (User=$user)"; return 1; }
	[[ $ports == *7400/tcp* && $ports == *7400/udp* ]] || { echo "FAIL docker image: exposes $ports"; return 1; }
	echo "OK   docker image: builds, runs as $user, exposes $ports; $(head -n 1 <<<"$out")"
	ran=$((ran + 1))
}

check_unit
check_image
echo "check-deploy: $ran of 2 checks ran and passed"

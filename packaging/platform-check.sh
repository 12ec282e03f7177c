#!/usr/bin/env bash
# The arm64 package on a system as a board runs it, under emulation:
#
#   packaging/platform-check.sh SUITE ARM64_DEB PEER_BINARY
#
# SUITE is bullseye, bookworm or trixie (Debian 11, 12, 13: the bases of Raspberry Pi OS
# Bullseye, Bookworm and Trixie; Debian 11 also stands in for JetPack 6's Ubuntu 22.04, which
# is newer in glibc and GStreamer). Needs root, mmdebstrap, systemd-nspawn, qemu-user-static
# and binfmt_misc (mounted and registered here when missing), mosquitto and iproute2.
#
#  1. A fresh arm64 root of SUITE (mmdebstrap, maintainer scripts under qemu) in which apt
#     installs ARM64_DEB the way a user would, resolving its Depends from that release, and
#     packaging/install-check.sh looks at the result.
#  2. The root is booted with systemd as PID 1 (systemd-nspawn --boot) inside a network
#     namespace this script makes (loopback and a veth pair that stays inside it), where a
#     mosquitto of the host's listens on loopback. packaging/boot-check.sh (platform mode)
#     runs in the booted system: "not configured", then configured against a development room
#     server on loopback with MQTT on, a reload, registered, `roomagent devices`.
#  3. An x86 agent (PEER_BINARY, the host's GStreamer, test sources) joins the namespace,
#     registers as "peer" and dials the arm64 agent, which answers; both report over MQTT
#     telemetry, and the call passes when each has decoded frames of the other. Then the
#     booted system stops the service cleanly and powers off.
#
# Prints MEASURE lines (root made, install, boot -> READY, reload -> registered, dial ->
# first frame at each end) and ends with "platform check SUITE: OK".
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 SUITE ARM64_DEB PEER_BINARY" >&2; exit 2; }
SUITE=$1
DEB=$(realpath "$2")
PEER=$(realpath "$3")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/target/platforms/$SUITE-arm64
ROOTFS=$OUT/rootfs
IN_ROOT=/usr/local/share/roomagent-check
IN_DEB=$IN_ROOT/$(basename "$DEB")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NS=roomagent-$SUITE-$$
PORT=18830
[ "$(id -u)" = 0 ] || { echo "platform check: needs root (mmdebstrap, systemd-nspawn, ip netns)" >&2; exit 2; }
"$ROOT/scripts/need-packages.sh" mmdebstrap systemd-container qemu-user-static arch-test \
  mosquitto mosquitto-clients iproute2

fail() { echo "platform check $SUITE FAILED: $*" >&2; exit 1; }
say() { echo "platform check $SUITE: $*"; }

# arm64 programs run through qemu-user-static; the F flag opens the emulator at
# registration, so it also works inside the root.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
register_qemu() { # interpreter, flags: (re-)registers qemu-aarch64 with binfmt_misc
  [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || echo -1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
  sed -n "s|^\(:qemu-aarch64:.*\):[^:]*:[A-Z]*\$|\1:$1:$2|p" \
    /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
}
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  register_qemu /usr/bin/qemu-aarch64-static F
fi
[ "$(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 | head -1)" = enabled ] || fail "qemu-aarch64 is not registered with binfmt_misc"

pids=()
cleanup() { # what this script started: asked to end, then ended (a container under qemu may be slow to)
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  if [ -n "${restore_qemu:-}" ]; then
    # shellcheck disable=SC2086 # interpreter and flags
    register_qemu $restore_qemu
  fi
}
trap cleanup EXIT

# 1. The root, and the package installed into it by apt.
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
mmdebstrap --quiet --variant=apt --architectures=arm64 --include=systemd-sysv,dbus,iproute2,procps \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/roomagent/*' \
  --customize-hook='mkdir -p "$1'"$IN_ROOT"'"' \
  --customize-hook="copy-in $DEB $ROOT/packaging/install-check.sh $ROOT/packaging/boot-check.sh $IN_ROOT" \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends '"$IN_DEB"' >/dev/null' \
  --customize-hook='chroot "$1" sh '"$IN_ROOT/install-check.sh $IN_DEB"' installed' \
  "$SUITE" "$ROOTFS" "deb $MIRROR $SUITE main" >"$OUT/mmdebstrap.log" 2>&1 \
  || { tail -n 30 "$OUT/mmdebstrap.log"; fail "making the root or installing the package failed"; }
grep "install check" "$OUT/mmdebstrap.log" || true
say "$(chroot "$ROOTFS" dpkg-query -W -f='libc6 ${Version}, ' libc6)$(chroot "$ROOTFS" dpkg-query -W -f='libgstreamer1.0-0 ${Version}' libgstreamer1.0-0)"
echo "MEASURE $SUITE arm64: root made and the package installed by apt in $(( $(date +%s) - start )) s"

# 2. The namespace: loopback, a veth pair inside it (libnice gathers nothing on loopback
# alone), and the broker both agents report to.
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" addr add 10.250.0.1/24 dev v0
ip -n "$NS" link set v0 up
ip -n "$NS" addr add 10.250.1.1/24 dev v1
ip -n "$NS" link set v1 up
printf '%s\n' "listener $PORT 127.0.0.1" 'allow_anonymous true' 'persistence false' >"$OUT/mosquitto.conf"
ip netns exec "$NS" mosquitto -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
pids+=($!)

# qemu-user cannot do what systemd does to hand a service its credentials (LoadCredential=
# fails with "Failed to set up credentials: Invalid argument", status 243): emulation only, so
# here the unit runs without them (the amd64 boot check in scripts/package.sh runs the unit as
# shipped). Everything else in it, seccomp filter included, is in force.
mkdir -p "$ROOTFS/etc/systemd/system/roomagent.service.d"
printf '%s\n' '[Service]' 'LoadCredential=' >"$ROOTFS/etc/systemd/system/roomagent.service.d/qemu-user.conf"
# systemd 255 and later (Debian 13) start every service through systemd-executor, executed from
# a file descriptor (/proc/self/fd/N): binfmt_misc must hand qemu the open file (flag O), and
# Debian 12's qemu 7.2 cannot run it even so; Debian 13's qemu 10 can (its static qemu-user,
# fetched once from the archive into the cache, registered for this boot, the previous
# registration restored after). Under that qemu, setting up a mount namespace for the service
# fails (status 226/NAMESPACE), so there the sandbox options that need one are off too: the
# amd64 boot check runs the unit as shipped.
systemd_major=$(chroot "$ROOTFS" dpkg-query -W -f='${Version}' systemd | sed 's/[^0-9].*//')
if [ "$systemd_major" -ge 255 ]; then
  QEMU_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/roomagent-cross/qemu-trixie
  if [ ! -x "$QEMU_CACHE/qemu-aarch64" ]; then
    rm -rf "$QEMU_CACHE.tmp"
    mkdir -p "$QEMU_CACHE.tmp"/{lists/partial,archives/partial,x}
    echo "deb $MIRROR trixie main" >"$QEMU_CACHE.tmp/sources.list"
    apt_isolated=(-o "Dir::State=$QEMU_CACHE.tmp" -o "Dir::State::Lists=$QEMU_CACHE.tmp/lists"
      -o "Dir::Cache=$QEMU_CACHE.tmp" -o "Dir::Etc::SourceList=$QEMU_CACHE.tmp/sources.list"
      -o Dir::Etc::SourceParts=/dev/null -o APT::Architecture=amd64 -o APT::Sandbox::User=root
      -o Debug::NoLocking=1)
    apt-get "${apt_isolated[@]}" update -qq >/dev/null
    (cd "$QEMU_CACHE.tmp" && apt-get "${apt_isolated[@]}" download -qq qemu-user >/dev/null)
    dpkg-deb -x "$QEMU_CACHE.tmp"/qemu-user_*.deb "$QEMU_CACHE.tmp/x"
    mkdir -p "$QEMU_CACHE"
    cp "$QEMU_CACHE.tmp/x/usr/bin/qemu-aarch64" "$QEMU_CACHE/qemu-aarch64"
    rm -rf "$QEMU_CACHE.tmp"
  fi
  say "systemd $systemd_major: booted with $("$QEMU_CACHE/qemu-aarch64" --version | head -1)"
  restore_qemu="$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64) $(sed -n 's/^flags: //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)"
  register_qemu "$QEMU_CACHE/qemu-aarch64" OF
  # (BindPaths= empties the unit's list: a bind mount needs a mount namespace as well.)
  printf '%s\n' '[Service]' ProtectSystem=no ProtectHome=no PrivateTmp=no ProtectKernelTunables=no \
    ProtectKernelModules=no ProtectKernelLogs=no ProtectControlGroups=no ProtectClock=no \
    ProtectHostname=no ProtectProc=default ProcSubset=all BindPaths= \
    >"$ROOTFS/etc/systemd/system/roomagent.service.d/qemu-user-namespace.conf"
fi
printf '%s\n' \
  '[Unit]' 'Description=Checks the running roomagent service' 'After=roomagent.service' '' \
  '[Service]' 'Type=oneshot' "ExecStart=/bin/sh $IN_ROOT/boot-check.sh platform" 'TimeoutStartSec=900' '' \
  '[Install]' 'WantedBy=multi-user.target' >"$ROOTFS/etc/systemd/system/roomagent-boot-check.service"
ln -sf /etc/systemd/system/roomagent-boot-check.service \
  "$ROOTFS/etc/systemd/system/multi-user.target.wants/roomagent-boot-check.service"
start=$(date +%s)
systemd-nspawn --quiet "--directory=$ROOTFS" "--network-namespace-path=/run/netns/$NS" \
  --register=no --keep-unit --console=pipe --boot >"$OUT/boot.log" 2>&1 &
nspawn=$!
pids+=("$nspawn")
for _ in $(seq 1200); do
  [ -f "$ROOTFS/call-ready" ] && break
  kill -0 "$nspawn" 2>/dev/null || break
  sleep 0.5
done
if [ ! -f "$ROOTFS/call-ready" ]; then
  cat "$ROOTFS/boot-check.txt" 2>/dev/null || tail -n 30 "$OUT/boot.log"
  fail "the booted system never registered (its check is above)"
fi
sed 's/^/  /' "$ROOTFS/boot-check.txt"

# 3. The call: the x86 agent dials the device (user 1001) and both report frames decoded.
sub() { # topic, seconds: the newest message on the topic (retained or the next one)
  ip netns exec "$NS" mosquitto_sub -p "$PORT" -h 127.0.0.1 -t "$1" -C 1 -W "$2" 2>/dev/null || true
}
decoded() { # device id: frames decoded in its latest telemetry (all sessions; 0 before any)
  sub "roomagent/$1/telemetry" 3 | { grep -o '"frames_decoded":[0-9]*' || true; } | cut -d: -f2 \
    | awk '{s += $1} END {print s + 0}'
}
printf '%s\n' '[device]' 'id = "x86-peer"' '[signaling]' 'host = "http://127.0.0.1:8089/app"' \
  '[signaling.login]' 'name = "peer"' "password = \"$(cat "$ROOTFS/call-ready")\"" \
  '[answer]' 'mode = "never"' \
  '[media]' 'speaker = "fakesink"' 'display = "fakesink"' 'width = 320' 'height = 180' \
  'framerate = 10' 'video_bitrate_kbps = 300' 'min_video_bitrate_kbps = 100' \
  '[mqtt]' 'enabled = true' 'host = "127.0.0.1"' "port = $PORT" 'telemetry_interval_s = 1' \
  'discovery = false' '[gpio]' 'enabled = false' '[room_server]' 'enabled = false' \
  >"$OUT/peer.toml"
chmod 600 "$OUT/peer.toml"
ip netns exec "$NS" "$PEER" run --config "$OUT/peer.toml" >"$OUT/peer.log" 2>&1 &
pids+=($!)
registered=no
for _ in $(seq 30); do
  if sub roomagent/x86-peer/state 2 | grep -q '"registered":true'; then registered=yes; break; fi
  sleep 0.5
done
[ "$registered" = yes ] || { tail -n 20 "$OUT/peer.log"; fail "the x86 agent did not register"; }
dialed=$(date +%s%N)
ip netns exec "$NS" mosquitto_pub -p "$PORT" -h 127.0.0.1 -t roomagent/x86-peer/cmd/dial -m '{"user": 1001}'
first_device="" first_peer="" device=0 peer=0
for _ in $(seq 120); do
  device=$(decoded room-101)
  peer=$(decoded x86-peer)
  now=$(( ($(date +%s%N) - dialed) / 1000000 ))
  [ -z "$first_device" ] && [ "$device" -gt 0 ] && first_device=$now
  [ -z "$first_peer" ] && [ "$peer" -gt 0 ] && first_peer=$now
  [ "$device" -ge 20 ] && [ "$peer" -ge 20 ] && break
done
ip netns exec "$NS" mosquitto_pub -p "$PORT" -h 127.0.0.1 -t roomagent/x86-peer/cmd/hangup -m '{}'
echo "frames decoded: device $device, x86 peer $peer" >"$ROOTFS/call-done"
if [ "$device" -lt 20 ] || [ "$peer" -lt 20 ]; then
  tail -n 20 "$OUT/peer.log"
  fail "the call decoded $device frames on the device and $peer on the x86 peer (want 20 each)"
fi
echo "MEASURE $SUITE arm64: dial -> first frame decoded on the device ${first_device} ms, on the x86 peer ${first_peer} ms (telemetry every 1 s); 20+ frames each ($device, $peer)"

for _ in $(seq 240); do
  kill -0 "$nspawn" 2>/dev/null || break
  sleep 0.5
done
kill -0 "$nspawn" 2>/dev/null && fail "the booted system did not power off within 2 minutes of the call"
tail -n +"$(grep -n '^call:' "$ROOTFS/boot-check.txt" | cut -d: -f1)" "$ROOTFS/boot-check.txt" | sed 's/^/  /'
tail -n 1 "$ROOTFS/boot-check.txt" | grep -qx "boot check: OK" || fail "the check in the booted system failed"
echo "MEASURE $SUITE arm64: booted, configured, called and stopped in $(( $(date +%s) - start )) s"
say OK

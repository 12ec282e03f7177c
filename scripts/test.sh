#!/usr/bin/env bash
# Runs every test. The test binaries are built once, in a Debian 11 root (the floor: glibc
# 2.31, the GStreamer 1.18 API; cross/roots.sh), and run against three GStreamer releases:
#   1. cross/floor-tests.sh host: every unit and integration test on this machine (Debian 12,
#      GStreamer 1.22) against real parts (room server, mosquitto, coturn, Chromium,
#      GStreamer, the systemd notify protocol); then the doc tests. Tests that run WebRTC peers
#      or a browser put themselves into a network namespace of their own (loopback plus a veth
#      pair that stays inside it: see tests/support/netns.rs); everything else talks to
#      loopback only.
#   2. cross/floor-tests.sh floor | trixie: the media tests that matter most in the Debian 11
#      root (GStreamer 1.18) and a Debian 13 root (GStreamer 1.26), each with that release's
#      libnice and Chromium.
#   3. cross/build-aarch64.sh --test: the arm64 release build against a Debian 11 arm64
#      sysroot, and the unit tests under qemu-aarch64-static.
#   4. scripts/package.sh --arm64 --check: the amd64 (built in the Debian 11 root) and arm64
#      .deb packages, their contents and Depends, a refusal below the floor, an install of the
#      amd64 one in a fresh Debian 12 root, booted with systemd to check the running service,
#      then an upgrade and a purge.
#   5. packaging/platform-check.sh: the arm64 package installed by apt in fresh arm64 Debian
#      11, 12 and 13 roots, each booted with systemd under qemu, configured, registered, and
#      called by an x86 agent with frames decoded at both ends.
# The Debian roots and sysroots are cached under ~/.cache (see cross/). Needs root or sudo.
#
# With arguments, only `cargo test ARGS…` (e.g. `./scripts/test.sh --test mqtt`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -gt 0 ]; then
  # The stand-ins for board elements that tests/boards.rs loads (tests/standins).
  cargo build --locked -p roomagent-standins
  exec cargo test --locked "$@"
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

step() { echo; echo "=== $* ==="; }
timed() { # what, command...
  local what=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "MEASURE $what took $(( $(date +%s) - start )) s"
}
step "every test on GStreamer $(pkg-config --modversion gstreamer-1.0) (built in the Debian 11 root)"
timed "tests on the host" ./cross/floor-tests.sh host
timed "doc tests" ./cross/in-root.sh floor cargo test --locked --offline --target-dir target/floor --doc
step "media tests on GStreamer 1.18 (Debian 11 root)"
timed "media tests on 1.18" ./cross/floor-tests.sh floor
step "media tests on GStreamer 1.26 (Debian 13 root)"
timed "media tests on 1.26" ./cross/floor-tests.sh trixie
step "aarch64 cross build and unit tests under qemu"
timed "aarch64 cross build and tests" ./cross/build-aarch64.sh --test
step "Debian packages"
timed "packages and their checks" ./scripts/package.sh --arm64 --check
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
for suite in bullseye bookworm trixie; do
  step "the arm64 package on Debian $suite (booted under qemu, called from x86)"
  timed "arm64 platform check on $suite" $SUDO ./packaging/platform-check.sh "$suite" \
    "target/debian/roomagent_${VERSION}-1_arm64.deb" target/floor/release/roomagent
done
echo
echo "all tests passed"

#!/usr/bin/env bash
# Runs every test:
#   1. `cargo test`: unit tests, and the integration tests against real parts (room server,
#      mosquitto, coturn, Chromium, GStreamer, the systemd notify protocol). Tests that run
#      WebRTC peers or a browser put themselves into a network namespace of their own
#      (loopback plus a veth pair that stays inside it: see tests/support/netns.rs);
#      everything else talks to loopback only.
#   2. cross/build-aarch64.sh --test: the arm64 release build, and the unit tests under
#      qemu-aarch64-static.
#   3. scripts/package.sh --arm64 --check: the amd64 and arm64 .deb packages, their contents,
#      an install of the amd64 one in a fresh Debian 12 root, booted with systemd to check the
#      running service, then an upgrade and a purge.
#
# With arguments, only `cargo test ARGS…` (e.g. `./scripts/test.sh --test mqtt`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -gt 0 ]; then
  exec cargo test --locked "$@"
fi

step() { echo; echo "=== $* ==="; }
step "cargo test"
start=$(date +%s)
cargo test --locked
echo "MEASURE cargo test took $(( $(date +%s) - start )) s"
step "aarch64 cross build and unit tests under qemu"
start=$(date +%s)
./cross/build-aarch64.sh --test
echo "MEASURE aarch64 cross build and tests took $(( $(date +%s) - start )) s"
step "Debian packages"
./scripts/package.sh --arm64 --check
echo
echo "all tests passed"

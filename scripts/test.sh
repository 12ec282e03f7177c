#!/usr/bin/env bash
# Runs every test. Builds with network access first, then runs the tests inside a private
# network namespace (loopback plus a veth pair that stays inside it), so WebRTC peers and the
# browser can only reach addresses this run created. See ../shared/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --locked --all-targets
cargo test --locked --no-run

unshare -rn sh -ec '
  ip link set lo up
  ip link add v0 type veth peer name v1
  ip addr add 10.250.0.1/24 dev v0; ip link set v0 up
  ip addr add 10.250.1.1/24 dev v1; ip link set v1 up
  exec cargo test --locked --offline -- "$@"
' sh "$@"

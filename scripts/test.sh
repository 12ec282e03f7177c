#!/usr/bin/env bash
# Runs every test. Tests that run WebRTC peers or a browser put themselves into a network
# namespace of their own (loopback plus a veth pair that stays inside it: see
# tests/support/netns.rs and ../shared/TESTING.md); everything else talks to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --locked "$@"

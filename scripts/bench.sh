#!/usr/bin/env bash
# Benchmarks that print numbers (nothing asserts on them): media latency and CPU, memory,
# reconnect time. Runs inside its own network namespace like the WebRTC tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --locked --bench media --bench mqtt 2>&1 | grep -E '^BENCH|error|panicked'

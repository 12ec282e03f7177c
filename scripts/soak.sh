#!/usr/bin/env bash
# Soak run (not part of CI): 1,000 sequential calls between two agents with real media, printing
# RSS, threads and file descriptors every 100 calls, then checking that threads and file
# descriptors are back at idle. `./scripts/soak.sh 300` runs 300 calls instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
calls="${1:-1000}"
SOAK_CALLS="$calls" ROOMAGENT_TEST_LIMIT_S=$((calls * 5 + 120)) \
  cargo test --locked --release --test sequential_calls -- --nocapture 2>&1 | grep -E '^MEASURE|panicked|test result'

#!/usr/bin/env bash
# Benchmarks that print numbers (nothing asserts on them): media latency and CPU, memory,
# a 1,000-device fleet on one broker,
# reconnect time. Runs inside its own network namespace like the WebRTC tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo bench --locked --bench media --bench rtm --bench mqtt --bench fleet 2>&1 | grep -E '^BENCH|error|panicked'
# FPNN codec throughput (RTM gate frames), plain and encrypted.
cargo bench --locked --bench fpnn 2>&1 | grep -vE '^\s*(Compiling|Finished|Running|Downloaded|Downloading)'
# RTM: a gate restarted mid-call, time until the device is authenticated and back in its room.
for _ in 1 2 3; do
  cargo test --locked --test rtm the_gate_restarted_mid_call -- --nocapture 2>&1 | grep -E '^MEASURE'
done
# Bitrate adaptation: a 300 kbit/s bottleneck for 30 s, with and without adaptation.
cargo bench --locked --bench adaptation 2>&1 | grep -vE '^\s*(Compiling|Finished|Running|Downloaded|Downloading)|^MEASURE'
# RTM media over a lossy path (0/2/5 % both ways, 20 ms each way): TCP against FPNN's UDP.
cargo bench --locked --bench rtm_loss 2>&1 | grep -vE '^\s*(Compiling|Finished|Running|Downloaded|Downloading)|^MEASURE|GStreamer-WARNING|^$'

#!/usr/bin/env bash
# Runs the agent the way a new user tries it: test sources when no camera is attached, and the
# development room server in-process. Open http://127.0.0.1:8080/, log in as alice / alice,
# and call "Room 101".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release --locked -- run --config config.example.toml

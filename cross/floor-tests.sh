#!/usr/bin/env bash
# Runs the test binaries built once in the Debian 11 root (the floor: glibc 2.31, the
# GStreamer 1.18 API), so the very same binaries are tested against three GStreamer releases:
#
#   cross/floor-tests.sh host            every test target (unit, integration, the binary's)
#                                        on this machine: GStreamer 1.22 on Debian 12
#   cross/floor-tests.sh floor [TEST…]   the media tests that matter most in the Debian 11
#                                        root: GStreamer 1.18.4, libnice 0.1.16
#   cross/floor-tests.sh trixie [TEST…]  the same in the Debian 13 root: GStreamer 1.26.2,
#                                        libnice 0.1.22, Chromium 156
#
# TEST names an integration test target (media_agents, rtm_media, …). Each test that runs
# WebRTC peers or a browser makes its own network namespace, in a root as on the host. Every
# target runs even when one fails; the exit status says whether all passed. Doc tests are
# `cargo test --doc`, run by scripts/test.sh in the floor root.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 host|floor|trixie [TEST ...]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
WHERE=$1
shift
TESTS=("$@")
case "$WHERE" in
  host) ;;
  floor | trixie)
    if [ ${#TESTS[@]} -eq 0 ]; then
      TESTS=(media_agents rtm_media sequential_calls encoder_failover hostile_media boards)
      # Debian 11's Chromium (120) has no H.264 for WebRTC, and the agent sends H.264 only:
      # the tests whose far end is Chromium run where Chromium decodes H.264.
      [ "$WHERE" = floor ] || TESTS+=(network_change browser_call)
    fi
    # The hostile-input campaign at 3,000 messages in the roots (the first 1,000 found
    # webrtcbin 1.18's abort); all 10,000 on the host.
    export HOSTILE_MESSAGES=${HOSTILE_MESSAGES:-3000}
    ;;
  *) echo "usage: $0 host|floor|trixie [TEST ...]" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
cd "$HERE"

# Built offline in the root: the crates come from the host. Test harnesses are the artifacts
# built with the test profile; the plain binary (built for the integration tests) is not one.
cargo fetch --locked >/dev/null
start=$(date +%s)
targets=(--lib --bins --tests)
if [ ${#TESTS[@]} -gt 0 ]; then
  targets=()
  for t in "${TESTS[@]}"; do targets+=(--test "$t"); done
fi
exes=$("$HERE/cross/in-root.sh" floor cargo test --locked --offline --target-dir target/floor \
  --no-run --message-format=json "${targets[@]}" \
  | grep -E '"profile":\{[^}]*"test":true' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
# The stand-ins for board elements (tests/standins), a plugin the board tests load.
"$HERE/cross/in-root.sh" floor cargo build --locked --offline --target-dir target/floor \
  -p roomagent-standins --quiet
echo "MEASURE test binaries built in the floor root in $(( $(date +%s) - start )) s"

if [ "$WHERE" = host ]; then
  run() { "$@"; }
  version=$(gst-inspect-1.0 --version | sed -n 's/^GStreamer \(.*\)$/\1/p')
else
  run() { "$HERE/cross/in-root.sh" "$WHERE" "$@"; }
  version=$(run gst-inspect-1.0 --version | sed -n 's/^GStreamer \(.*\)$/\1/p')
fi
failed=()
for exe in $exes; do
  name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
  start=$(date +%s)
  echo "--- $name on GStreamer $version ($WHERE)"
  if run "$exe"; then
    echo "MEASURE $name on GStreamer $version passed in $(( $(date +%s) - start )) s"
  else
    echo "MEASURE $name on GStreamer $version FAILED after $(( $(date +%s) - start )) s"
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests on GStreamer $version ($WHERE): failed: ${failed[*]}" >&2
  exit 1
fi
echo "tests on GStreamer $version ($WHERE): all passed ($(wc -w <<<"$exes") test binaries)"

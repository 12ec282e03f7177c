#!/usr/bin/env bash
# Installs what roomagent needs on Debian 12 (bookworm) or 13 (trixie): the Rust toolchain if
# missing, GStreamer (1.22 or 1.26) with its development files and plugins, and the real peers
# the tests use (mosquitto, coturn, Chromium + ChromeDriver). Safe to run again: installed packages are
# skipped, and apt is only touched when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config ca-certificates curl git iproute2 util-linux procps
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-tools
  gstreamer1.0-alsa socat
  mosquitto mosquitto-clients coturn chromium chromium-driver openssl
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The broker and TURN server are started by the tests themselves on free ports; the
# distribution's own services are not needed (and must not hold the default ports).
for svc in mosquitto coturn; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    :
  else
    echo "setup: installing the Rust toolchain (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
  fi
fi
echo "setup: ready"

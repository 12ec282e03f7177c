#!/usr/bin/env bash
# Debian roots (amd64) that the build and the tests run in, made with mmdebstrap and cached:
#
#   cross/roots.sh floor     Debian 11 (bullseye): glibc 2.31, GStreamer 1.18.4, the floor
#                            roomagent supports. The amd64 package and the test binaries are
#                            built here (so they run on every newer system), and the media
#                            tests run here against GStreamer 1.18.
#   cross/roots.sh trixie    Debian 13: GStreamer 1.26.2, where the media tests run again.
#
# Prints the root's directory. Both roots hold the GStreamer plugins the package depends on
# and the real peers the tests use (Chromium and ChromeDriver, mosquitto, coturn); the floor
# root also the development files, a C compiler and dpkg-dev. Cached in
# ${ROOMAGENT_ROOTS_CACHE:-~/.cache/roomagent-roots}, keyed by the package list and this
# script; delete that directory to make them again. Needs root (or sudo) and mmdebstrap.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 floor|trixie" >&2; exit 2; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

RUNTIME=(
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-alsa
  gstreamer1.0-tools
  chromium chromium-driver mosquitto mosquitto-clients coturn
  iproute2 util-linux procps openssl ca-certificates socat
)
case "$1" in
  floor)
    SUITE=bullseye
    ARCHES=amd64,arm64
    PACKAGES=(
      gcc libc6-dev pkg-config dpkg-dev
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
      "${RUNTIME[@]}"
      # The arm64 libraries the binary links, so dpkg-shlibdeps can name the arm64
      # package's Depends from its own binary (scripts/package.sh).
      libc6:arm64 libgcc-s1:arm64 libglib2.0-0:arm64 libgstreamer1.0-0:arm64
      libgstreamer-plugins-base1.0-0:arm64 libgstreamer-plugins-bad1.0-0:arm64
    )
    ;;
  trixie)
    SUITE=trixie
    ARCHES=amd64
    PACKAGES=("${RUNTIME[@]}")
    ;;
  *) echo "usage: $0 floor|trixie" >&2; exit 2 ;;
esac

"$(dirname "$0")/../scripts/need-packages.sh" mmdebstrap systemd-container arch-test

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${ROOMAGENT_ROOTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomagent-roots}
KEY=$({ printf '%s\n' "$SUITE" "$ARCHES" "${PACKAGES[@]}"; cat "$0"; } | sha256sum | cut -c1-16)
DIR=$CACHE/$SUITE-amd64-$KEY
if [ ! -f "$DIR/.complete" ]; then
  echo "roots: making the $SUITE root in $DIR (cached for later runs)" >&2
  start=$(date +%s)
  mkdir -p "$CACHE"
  $SUDO rm -rf "$DIR.tmp"
  includes=$(IFS=,; echo "${PACKAGES[*]}")
  # Only the main component: bullseye's security archive answered 404 for packages its index
  # listed.
  $SUDO mmdebstrap --quiet --variant=apt --architectures="$ARCHES" --include="$includes" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    "$SUITE" "$DIR.tmp" "deb $MIRROR $SUITE main" >&2
  $SUDO touch "$DIR.tmp/.complete"
  # Older roots of the same suite are dead weight.
  find "$CACHE" -mindepth 1 -maxdepth 1 -name "$SUITE-amd64-*" ! -name "$(basename "$DIR").tmp" \
    -exec $SUDO rm -rf {} +
  $SUDO mv "$DIR.tmp" "$DIR"
  echo "MEASURE $SUITE amd64 root made in $(( $(date +%s) - start )) s ($($SUDO du -sh "$DIR" | cut -f1))" >&2
fi
echo "$DIR"

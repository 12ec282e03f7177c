#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) arm64 sysroot for cross-compiling roomagent:
#
#   cross/sysroot.sh DIR [EXTRA_PACKAGE ...]
#   cross/sysroot.sh --list [EXTRA_PACKAGE ...]     prints the package list (a cache key)
#
# `mmdebstrap --variant=extract` unpacks the packages and their dependencies without running
# anything arm64, so no emulation and no multiarch install on the host are needed (arm64 dev
# packages cannot be co-installed with the amd64 ones on bookworm). Used by
# cross/build-aarch64.sh (no Docker) and by cross/Dockerfile (cross-rs).
# Apt sources: $SYSROOT_SOURCES (sources.list / deb822 .sources files, space-separated),
# else deb.debian.org's bookworm, bookworm-updates and bookworm-security.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR|--list [EXTRA_PACKAGE ...]" >&2; exit 2; }
DIR=$1
shift

# Link time: libc, libgcc, GStreamer 1.22 with base (app, video, sdp) and bad (webrtc).
# Run time (unit tests under qemu): the plugins the library's tests load.
PACKAGES=(
  libc6-dev libgcc-12-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice
  "$@"
)

if [ "$DIR" = "--list" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

if [ -n "${SYSROOT_SOURCES:-}" ]; then
  read -r -a SOURCES <<<"$SYSROOT_SOURCES"
else
  SOURCES=("deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main")
fi

rm -rf "$DIR.tmp"
# Nothing runs inside the sysroot, so nothing is mounted into it: this works without
# CAP_SYS_ADMIN, e.g. in a `docker build`.
includes=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$includes" \
  --skip=chroot/mount \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$DIR.tmp" "${SOURCES[@]}"
touch "$DIR.tmp/.complete"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"

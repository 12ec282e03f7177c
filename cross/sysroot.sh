#!/usr/bin/env bash
# Builds a Debian 11 (bullseye) arm64 sysroot for cross-compiling roomagent on the floor it
# supports (glibc 2.31, GStreamer 1.18: see docs/platforms.md):
#
#   cross/sysroot.sh DIR [STD_PACKAGE]
#   cross/sysroot.sh --list [STD_PACKAGE]     prints the package list (a cache key)
#
# `mmdebstrap --variant=extract` unpacks the packages and their dependencies without running
# anything arm64, so no emulation and no multiarch install on the host are needed. Used by
# cross/build-aarch64.sh (no Docker) and by cross/Dockerfile (cross-rs).
#
# STD_PACKAGE (e.g. libstd-rust-web-dev=1.96.0+dfsg1-1~deb12u2) is Debian's arm64 Rust
# standard library, which must come from the very build of the host's compiler (the host
# release's rustc-web): it is unpacked from the host's release on its own and only its rustlib
# directory is kept. Rust's std needs glibc 2.17, so linking it against bullseye's libc is fine.
# Apt sources: deb.debian.org, or $DEBIAN_MIRROR and $DEBIAN_SECURITY_MIRROR.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR|--list [STD_PACKAGE]" >&2; exit 2; }
DIR=$1
STD_PACKAGE=${2:-}
# The host's release, where its rustc-web comes from.
HOST_SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

# Link time: libc, GStreamer 1.18 with base (app, video, sdp) and bad (webrtc).
# Run time (unit tests under qemu): the plugins the library's tests load.
PACKAGES=(
  libc6-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice
)

if [ "$DIR" = "--list" ]; then
  printf '%s\n' bullseye "${PACKAGES[@]}" ${STD_PACKAGE:+"$HOST_SUITE" "$STD_PACKAGE"}
  exit 0
fi

MIRROR=${DEBIAN_MIRROR:-}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
extract() { # suite dir sources packages...
  local suite=$1 dir=$2 sources=$3
  shift 3
  local includes
  includes=$(IFS=,; echo "$*")
  # Nothing runs inside the sysroot, so nothing is mounted into it: this works without
  # CAP_SYS_ADMIN, e.g. in a `docker build`.
  mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$includes" \
    --skip=chroot/mount \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$dir" "$sources"
}

rm -rf "$DIR.tmp" "$DIR.std"
extract bullseye "$DIR.tmp" "deb $MIRROR bullseye main" "${PACKAGES[@]}"
if [ -n "$STD_PACKAGE" ]; then
  # rustc-web (and so its std) is updated through the security archive.
  extract "$HOST_SUITE" "$DIR.std" \
    "deb $MIRROR $HOST_SUITE main
deb $SECURITY_MIRROR $HOST_SUITE-security main" "$STD_PACKAGE"
  mkdir -p "$DIR.tmp/usr/lib/rustlib"
  cp -a "$DIR.std/usr/lib/rustlib/aarch64-unknown-linux-gnu" "$DIR.tmp/usr/lib/rustlib/"
  rm -rf "$DIR.std"
fi
# Debian 11 is not merged-/usr and its development symlinks are absolute
# (libpthread.so -> /lib/aarch64-linux-gnu/libpthread.so.0): made relative, so the linker
# finds the sysroot's libraries instead of skipping to the static ones.
find "$DIR.tmp" -type l -lname '/*' | while read -r link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m -s --relative-to="$(dirname "$link")" "$DIR.tmp$target")" "$link"
done
# The linker must take Debian 11's libgcc_s, not the one of the host's newer cross gcc
# (which needs glibc 2.35): a development link where -L finds it first.
ln -sfn ../../../lib/aarch64-linux-gnu/libgcc_s.so.1 "$DIR.tmp/usr/lib/aarch64-linux-gnu/libgcc_s.so"
touch "$DIR.tmp/.complete"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"

#!/usr/bin/env bash
# Cross-compiles roomagent for aarch64 (arm64) on a Debian 12 amd64 machine without Docker,
# against the floor roomagent supports (Debian 11's glibc 2.31 and GStreamer 1.18, so the
# binary runs on Raspberry Pi OS Bullseye, Bookworm and Trixie and on JetPack 6), and with
# --test runs its unit tests under qemu-aarch64-static against those 1.18 libraries.
#
#   cross/build-aarch64.sh            release binary: target/cross/aarch64-unknown-linux-gnu/release/roomagent
#   cross/build-aarch64.sh --test     the same, then the library's unit tests (and doctests) under qemu
#
# How: an arm64 Debian 11 sysroot made by cross/sysroot.sh (`mmdebstrap --variant=extract`:
# GStreamer dev files, libc, the plugins the unit tests load, and Debian 12's arm64 Rust std
# from libstd-rust-web-dev, unpacked, never installed),
# Debian's rustc-web (1.96) as the compiler, Debian's gcc-aarch64-linux-gnu as C compiler and
# linker (with --sysroot in a wrapper, so host build scripts are untouched), and pkg-config
# pointed at the sysroot for the target only. The sysroot is cached in
# ${ROOMAGENT_CROSS_CACHE:-~/.cache/roomagent-cross}, keyed by its package list, the
# rustc-web version and cross/sysroot.sh itself; delete that directory to rebuild it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=aarch64-unknown-linux-gnu
RUN_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --test) RUN_TESTS=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# Host tools: the sysroot builder, the emulator, the cross C toolchain, Debian's Rust 1.96.
HOST_PACKAGES=(mmdebstrap qemu-user-static gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu rustc-web pkg-config)
"$ROOT/scripts/need-packages.sh" "${HOST_PACKAGES[@]}"

RUSTC_WEB_VERSION=$(dpkg-query -W -f='${Version}' rustc-web)
# The arm64 std is pinned to the host's rustc-web: its rlibs must come from the very same
# compiler build.
STD_PACKAGE="libstd-rust-web-dev=$RUSTC_WEB_VERSION"
CACHE=${ROOMAGENT_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomagent-cross}
KEY=$({ "$ROOT/cross/sysroot.sh" --list "$STD_PACKAGE"; cat "$ROOT/cross/sysroot.sh"; } | sha256sum | cut -c1-16)
WORK=$CACHE/bullseye-arm64-$KEY
SYSROOT=$WORK/sysroot
mkdir -p "$WORK"

if [ ! -f "$SYSROOT/.complete" ]; then
  echo "cross: building the arm64 sysroot in $SYSROOT (cached for later runs)"
  start=$(date +%s)
  $SUDO env DEBIAN_MIRROR="${DEBIAN_MIRROR:-}" "$ROOT/cross/sysroot.sh" "$SYSROOT" "$STD_PACKAGE"
  [ -n "$SUDO" ] && $SUDO chown -R "$(id -u):$(id -g)" "$SYSROOT"
  echo "MEASURE arm64 sysroot built in $(( $(date +%s) - start )) s ($(du -sh "$SYSROOT" | cut -f1))"
  # Older sysroots are dead weight.
  find "$CACHE" -mindepth 1 -maxdepth 1 ! -name "$(basename "$WORK")" -exec rm -rf {} +
fi

# A Rust sysroot with both std libraries: the host's (for build scripts and proc macros) and
# the arm64 one from the Debian sysroot (unpacked, never installed on the host).
RUST_SYSROOT=$WORK/rust-sysroot
HOST_RUSTLIB=/usr/lib/rustlib/x86_64-unknown-linux-gnu
[ -d "$SYSROOT/usr/lib/rustlib/$TARGET/lib" ] || { echo "cross: no arm64 std in the sysroot" >&2; exit 1; }
mkdir -p "$RUST_SYSROOT/lib/rustlib" "$RUST_SYSROOT/bin"
ln -sfn "$HOST_RUSTLIB" "$RUST_SYSROOT/lib/rustlib/x86_64-unknown-linux-gnu"
ln -sfn "$SYSROOT/usr/lib/rustlib/$TARGET" "$RUST_SYSROOT/lib/rustlib/$TARGET"
[ -d /usr/lib/rustlib/etc ] && ln -sfn /usr/lib/rustlib/etc "$RUST_SYSROOT/lib/rustlib/etc"

# Wrappers: the compiler with that sysroot, the cross gcc with the Debian sysroot.
BIN=$WORK/bin
mkdir -p "$BIN"
cat > "$BIN/rustc" <<EOF
#!/bin/sh
exec /usr/bin/rustc --sysroot "$RUST_SYSROOT" "\$@"
EOF
cat > "$BIN/rustdoc" <<EOF
#!/bin/sh
exec /usr/bin/rustdoc --sysroot "$RUST_SYSROOT" "\$@"
EOF
cat > "$BIN/aarch64-gcc" <<EOF
#!/bin/sh
exec aarch64-linux-gnu-gcc --sysroot="$SYSROOT" "\$@"
EOF
chmod +x "$BIN/rustc" "$BIN/rustdoc" "$BIN/aarch64-gcc"

export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC="$BIN/rustc" RUSTDOC="$BIN/rustdoc"
export CARGO_TARGET_DIR="$ROOT/target/cross"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$BIN/aarch64-gcc"
export CC_aarch64_unknown_linux_gnu="$BIN/aarch64-gcc"
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu="$SYSROOT"
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu="$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$SYSROOT/usr/share/pkgconfig"
# Tests run in the emulator against the sysroot's libraries and GStreamer plugins; forking
# the plugin scanner under qemu is unreliable, so the registry is built in-process.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L $SYSROOT"
export GST_REGISTRY_FORK=no
export GST_REGISTRY="$WORK/gst-registry.bin"

echo "cross: $("$RUSTC" --version) for $TARGET"
start=$(date +%s)
cd "$ROOT"
cargo build --locked --release --target "$TARGET" --bin roomagent
build_s=$(( $(date +%s) - start ))
BINARY="$CARGO_TARGET_DIR/$TARGET/release/roomagent"
aarch64-linux-gnu-strip -o "$CARGO_TARGET_DIR/$TARGET/release/roomagent.stripped" "$BINARY"
size=$(stat -c %s "$CARGO_TARGET_DIR/$TARGET/release/roomagent.stripped")
file_type=$(od -An -tx1 -j18 -N2 "$BINARY" | tr -d ' ')
[ "$file_type" = "b700" ] || { echo "cross: $BINARY is not an aarch64 ELF (e_machine $file_type)" >&2; exit 1; }
echo "MEASURE cross build (release) took ${build_s} s; stripped aarch64 binary: $size bytes ($(( size / 1024 / 1024 )) MiB)"

# The binary starts on arm64 and reads a configuration.
qemu-aarch64-static -L "$SYSROOT" "$BINARY" --version
qemu-aarch64-static -L "$SYSROOT" "$BINARY" check-config "$ROOT/config.example.toml"

if [ "$RUN_TESTS" = 1 ]; then
  start=$(date +%s)
  cargo test --locked --release --target "$TARGET" --lib
  cargo test --locked --release --target "$TARGET" --doc
  echo "MEASURE unit tests under qemu-aarch64 took $(( $(date +%s) - start )) s"
fi

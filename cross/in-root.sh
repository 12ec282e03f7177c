#!/usr/bin/env bash
# Runs a command inside one of cross/roots.sh's Debian roots (systemd-nspawn, no boot, the
# host's network), with this checkout bound at the same path and the Rust toolchain
# (~/.cargo, ~/.rustup) bound too, so `cargo` works inside and paths compiled into binaries
# (the tests' CARGO_BIN_EXE_roomagent) hold on both sides:
#
#   cross/in-root.sh floor|trixie COMMAND [ARG ...]
#
# Tests that need a network namespace make their own inside (unshare -rn works under nspawn,
# not under a plain chroot). Needs root (or sudo).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 floor|trixie COMMAND [ARG ...]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=$("$HERE/cross/roots.sh" "$1")
shift
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
env_args=()
for v in RUST_LOG RUST_BACKTRACE ROOMAGENT_TEST_LIMIT_S GST_DEBUG HOSTILE_SEED HOSTILE_MESSAGES; do
  [ -n "${!v:-}" ] && env_args+=("--setenv=$v=${!v}")
done
# The directory lock of nspawn would keep two commands out of one root; nothing here writes
# to the root itself. (nspawn's complaint about its propagation directory, printed on every
# exit when it does not boot, is noise.)
exec 2> >(grep --line-buffered -v 'Attempted to remove disk file system' >&2)
exec $SUDO env SYSTEMD_NSPAWN_LOCK=0 systemd-nspawn --quiet --register=no --keep-unit \
  "--directory=$DIR" "--bind=$HERE" "--bind=$CARGO_HOME" "--bind-ro=$RUSTUP_HOME" \
  "--setenv=CARGO_HOME=$CARGO_HOME" "--setenv=RUSTUP_HOME=$RUSTUP_HOME" \
  "--setenv=PATH=$CARGO_HOME/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin" \
  "${env_args[@]}" "--chdir=$HERE" -- "$@"

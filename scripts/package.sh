#!/usr/bin/env bash
# Builds the Debian packages of roomagent and checks what is inside them.
#
#   scripts/package.sh            target/debian/roomagent_<version>_amd64.deb (native release build)
#   scripts/package.sh --arm64    also target/debian/roomagent_<version>_arm64.deb from the
#                                 binary cross/build-aarch64.sh made (run that first)
#   scripts/package.sh --check    build, then check each package: control fields, file paths,
#                                 the conffile, maintainer scripts, the unit and config as in the
#                                 repository, the binary's architecture, and (amd64) that the
#                                 packaged binary accepts the packaged config; then installs the
#                                 amd64 package with apt into a fresh Debian 12 root (mmdebstrap,
#                                 needs root or sudo) and checks it (packaging/install-check.sh),
#                                 boots that root with systemd-nspawn and checks the running
#                                 service (packaging/boot-check.sh), then upgrades and purges
#
# Packaging metadata: [package.metadata.deb] in Cargo.toml (cargo-deb); maintainer scripts in
# packaging/deb/; the unit is systemd/roomagent.service.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_DEB_VERSION=3.8.0
ARM64=0
CHECK=0
for arg in "$@"; do
  case "$arg" in
    --arm64) ARM64=1 ;;
    --check) CHECK=1 ;;
    *) echo "usage: $0 [--arm64] [--check]" >&2; exit 2 ;;
  esac
done

if ! cargo deb --version 2>/dev/null | grep -q " $CARGO_DEB_VERSION"; then
  echo "package: installing cargo-deb $CARGO_DEB_VERSION"
  cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

OUT=$ROOT/target/debian
mkdir -p "$OUT"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

debs=()
start=$(date +%s)
# amd64: a release build of the host binary.
cargo deb --locked --output "$OUT/roomagent_${VERSION}-1_amd64.deb"
debs+=("$OUT/roomagent_${VERSION}-1_amd64.deb")
echo "MEASURE amd64 package built in $(( $(date +%s) - start )) s"

if [ "$ARM64" = 1 ]; then
  # arm64: the binary from cross/build-aarch64.sh (target/cross), not rebuilt here.
  BINARY=$ROOT/target/cross/aarch64-unknown-linux-gnu/release/roomagent
  [ -x "$BINARY" ] || { echo "package: $BINARY is missing: run cross/build-aarch64.sh first" >&2; exit 1; }
  CARGO_TARGET_DIR=$ROOT/target/cross cargo deb --no-build --target aarch64-unknown-linux-gnu \
    --output "$OUT/roomagent_${VERSION}-1_arm64.deb"
  debs+=("$OUT/roomagent_${VERSION}-1_arm64.deb")
fi

for deb in "${debs[@]}"; do
  echo "package: $deb ($(stat -c %s "$deb") bytes)"
done
[ "$CHECK" = 1 ] || exit 0

fail() { echo "package check FAILED: $*" >&2; exit 1; }

check_deb() {
  local deb=$1 arch=$2 machine=$3
  local dir
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  dpkg-deb -x "$deb" "$dir/root"
  dpkg-deb -e "$deb" "$dir/control"

  # Control fields.
  local field
  field=$(dpkg-deb -f "$deb" Package Architecture Version Depends)
  grep -qx "Package: roomagent" <<<"$field" || fail "$deb: Package is not roomagent"
  grep -qx "Architecture: $arch" <<<"$field" || fail "$deb: Architecture is not $arch"
  grep -qx "Version: ${VERSION}-1" <<<"$field" || fail "$deb: Version is not ${VERSION}-1"
  for dep in adduser libgstreamer1.0-0 gstreamer1.0-plugins-bad gstreamer1.0-nice; do
    grep -q "$dep" <<<"$field" || fail "$deb: Depends lacks $dep"
  done

  # Files where a Debian system expects them.
  local unit=""
  for candidate in usr/lib/systemd/system/roomagent.service lib/systemd/system/roomagent.service; do
    [ -f "$dir/root/$candidate" ] && unit=$dir/root/$candidate
  done
  [ -n "$unit" ] || fail "$deb: no roomagent.service under /usr/lib/systemd/system or /lib/systemd/system"
  cmp -s "$unit" systemd/roomagent.service || fail "$deb: the packaged unit differs from systemd/roomagent.service"
  [ -x "$dir/root/usr/bin/roomagent" ] || fail "$deb: no executable /usr/bin/roomagent"
  cmp -s "$dir/root/etc/roomagent/config.toml" packaging/config.production.toml \
    || fail "$deb: /etc/roomagent/config.toml is not packaging/config.production.toml"
  cmp -s "$dir/root/usr/share/doc/roomagent/config.example.toml" config.example.toml \
    || fail "$deb: /usr/share/doc/roomagent/config.example.toml is not config.example.toml"
  [ "$(stat -c %a "$dir/root/etc/roomagent/config.toml")" = 640 ] \
    || fail "$deb: /etc/roomagent/config.toml is not mode 640"
  [ -f "$dir/root/usr/lib/udev/rules.d/60-roomagent-gpio.rules" ] || fail "$deb: no GPIO udev rule"
  [ -f "$dir/root/usr/share/doc/roomagent/copyright" ] || fail "$deb: no copyright file"
  ls "$dir/root/usr/share/doc/roomagent/pipelines/"*.toml >/dev/null 2>&1 || fail "$deb: no pipeline profiles"

  # The binary is for this architecture (ELF e_machine: 0x3e x86-64, 0xb7 aarch64).
  local em
  em=$(od -An -tx1 -j18 -N2 "$dir/root/usr/bin/roomagent" | tr -d ' ')
  [ "$em" = "$machine" ] || fail "$deb: /usr/bin/roomagent has ELF machine $em, want $machine"

  # The configuration survives upgrades and local edits.
  grep -qx "/etc/roomagent/config.toml" "$dir/control/conffiles" || fail "$deb: config.toml is not a conffile"

  # Maintainer scripts: valid shell; the user and groups; the unit enabled and started.
  for script in postinst postrm prerm; do
    [ -f "$dir/control/$script" ] || fail "$deb: no $script"
    sh -n "$dir/control/$script" || fail "$deb: $script is not valid shell"
  done
  grep -q "adduser --quiet --system --group" "$dir/control/postinst" || fail "$deb: postinst does not create the roomagent user"
  grep -q "addgroup --quiet --system" "$dir/control/postinst" || fail "$deb: postinst does not create missing groups"
  grep -q "deb-systemd-helper enable roomagent.service" "$dir/control/postinst" || fail "$deb: postinst does not enable the unit"
  grep -q "deb-systemd-invoke" "$dir/control/postinst" || fail "$deb: postinst does not start the unit"
  grep -q "deb-systemd-invoke stop" "$dir/control/prerm" || fail "$deb: prerm does not stop the unit"
  ! grep -q "#DEBHELPER#" "$dir/control/postinst" || fail "$deb: #DEBHELPER# was not filled in"

  # The packaged unit passes systemd's own checks in the packaged tree.
  if command -v systemd-analyze >/dev/null 2>&1; then
    local exposure
    exposure=$(systemd-analyze security --offline=true --root="$dir/root" roomagent.service 2>/dev/null \
      | sed -n 's/.*Overall exposure level for roomagent.service: \([0-9.]*\).*/\1/p')
    [ -n "$exposure" ] || fail "$deb: systemd-analyze could not rate the packaged unit"
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || fail "$deb: exposure $exposure > 2.5"
    echo "package: $deb unit exposure $exposure"
  fi

  # The packaged binary reads the packaged configuration (amd64 only: it runs here).
  if [ "$arch" = amd64 ]; then
    "$dir/root/usr/bin/roomagent" check-config "$dir/root/etc/roomagent/config.toml" \
      || fail "$deb: the packaged binary rejects the packaged config"
  fi
  echo "package: $deb OK ($(dpkg-deb -c "$deb" | wc -l) entries)"
}

check_deb "$OUT/roomagent_${VERSION}-1_amd64.deb" amd64 3e00
if [ "$ARM64" = 1 ]; then
  check_deb "$OUT/roomagent_${VERSION}-1_arm64.deb" arm64 b700
fi

# Install the amd64 package the way a user would (apt resolving its dependencies, without
# recommends) into a throwaway Debian 12 root and check it from inside; boot that root with
# systemd (systemd-nspawn) and check the running service (packaging/boot-check.sh); then
# upgrade over an edited configuration and purge.
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for tool in mmdebstrap:mmdebstrap systemd-nspawn:systemd-container; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && grep -q 'debian' "$f" && grep -Eq '^[[:space:]]*(deb |Types:)' "$f" && sources+=("$f")
done
DEB=$OUT/roomagent_${VERSION}-1_amd64.deb
IN_ROOT=/usr/local/share/roomagent-check
IN_DEB=$IN_ROOT/$(basename "$DEB")
ROOTFS=$OUT/rootfs
$SUDO rm -rf "$ROOTFS"
trap '$SUDO rm -rf "$ROOTFS"' EXIT
start=$(date +%s)
# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
$SUDO mmdebstrap --quiet --variant=apt --include=systemd-sysv,dbus,iproute2 \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='mkdir -p "$1'"$IN_ROOT"'"' \
  --customize-hook="copy-in $DEB $ROOT/packaging/install-check.sh $ROOT/packaging/boot-check.sh $IN_ROOT" \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends '"$IN_DEB"' >/dev/null' \
  --customize-hook='chroot "$1" sh '"$IN_ROOT/install-check.sh $IN_DEB"' installed' \
  bookworm "$ROOTFS" "${sources[@]}"
echo "MEASURE installed in a fresh Debian 12 root in $(( $(date +%s) - start )) s"

# Boot it: systemd starts roomagent (the package enabled it) from the shipped, not yet
# configured file, then the check unit, which powers the container off when done. The check
# starts a development room server on loopback itself (iproute2 gives it `ss`).
printf '%s\n' \
  '[Unit]' 'Description=Checks the running roomagent service' 'After=roomagent.service' '' \
  '[Service]' 'Type=oneshot' "ExecStart=/bin/sh $IN_ROOT/boot-check.sh" '' \
  '[Install]' 'WantedBy=multi-user.target' \
  | $SUDO tee "$ROOTFS/etc/systemd/system/roomagent-boot-check.service" >/dev/null
$SUDO ln -sf /etc/systemd/system/roomagent-boot-check.service \
  "$ROOTFS/etc/systemd/system/multi-user.target.wants/roomagent-boot-check.service"
start=$(date +%s)
nspawn=(systemd-nspawn --quiet "--directory=$ROOTFS" --private-network --register=no --keep-unit --console=pipe)
$SUDO timeout 180 "${nspawn[@]}" --boot >"$OUT/boot.log" 2>&1 || true
if ! $SUDO test -f "$ROOTFS/boot-check.txt"; then
  tail -n 30 "$OUT/boot.log"
  fail "the booted root wrote no /boot-check.txt (its console is in $OUT/boot.log)"
fi
$SUDO cat "$ROOTFS/boot-check.txt"
$SUDO tail -n 1 "$ROOTFS/boot-check.txt" | grep -qx "boot check: OK" || fail "the service check in the booted root failed"
echo "MEASURE boot check took $(( $(date +%s) - start )) s"

# Upgrade over a locally edited configuration, then purge.
$SUDO "${nspawn[@]}" sh "$IN_ROOT/install-check.sh" "$IN_DEB" purge

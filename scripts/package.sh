#!/usr/bin/env bash
# Builds the Debian packages of roomagent and checks what is inside them.
#
#   scripts/package.sh            target/debian/roomagent_<version>_amd64.deb, built on the floor:
#                                 a release build in the Debian 11 root (cross/roots.sh floor:
#                                 glibc 2.31, GStreamer 1.18), so it installs on Debian 11, 12 and
#                                 13, Raspberry Pi OS and Ubuntu 22.04 (JetPack 6) alike
#   scripts/package.sh --arm64    also target/debian/roomagent_<version>_arm64.deb from the
#                                 binary cross/build-aarch64.sh made (run that first; it links
#                                 against a Debian 11 arm64 sysroot)
#   scripts/package.sh --check    build, then check each package: control fields, Depends that
#                                 come from its binary, file paths, the conffile, maintainer
#                                 scripts, the unit and config as in the repository, the binary's
#                                 architecture and glibc floor, and (amd64) that the packaged
#                                 binary accepts the packaged config; that a system below the
#                                 floor refuses it (dpkg and apt, nothing installed); then installs
#                                 the amd64 package with apt into a fresh Debian 12 root
#                                 (mmdebstrap, needs root or sudo) and checks it
#                                 (packaging/install-check.sh), boots that root with
#                                 systemd-nspawn and checks the running service
#                                 (packaging/boot-check.sh), then upgrades and purges
#
# Depends: the GStreamer plugins and adduser from [package.metadata.deb] in Cargo.toml, plus
# the libraries the binary links as dpkg-shlibdeps names them with Debian 11's symbols files
# (the oldest versions that carry every symbol it uses); Pre-Depends on GStreamer 1.18, so
# neither apt nor dpkg puts it on a system below the floor. Packaging metadata otherwise:
# [package.metadata.deb] (cargo-deb); maintainer scripts in packaging/deb/; the unit is
# systemd/roomagent.service.
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

# The floor the packages promise (docs/platforms.md).
GST_FLOOR=1.18.0
GLIBC_FLOOR=2.31

# The libraries a binary links, as Depends: dpkg-shlibdeps in the Debian 11 root, which holds
# the amd64 and the arm64 libraries (and their symbols files).
shlib_depends() { # binary
  local tmp
  tmp=$(mktemp -d "$ROOT/target/shlibdeps.XXXXXX")
  mkdir -p "$tmp/debian"
  : >"$tmp/debian/control"
  cp "$1" "$tmp/roomagent"
  "$ROOT/cross/in-root.sh" floor sh -c "cd '$tmp' && dpkg-shlibdeps -O -e roomagent 2>/dev/null" \
    | sed -n 's/^shlibs:Depends=//p'
  rm -rf "$tmp"
}

# Writes the Depends (those of Cargo.toml plus the binary's libraries) and the Pre-Depends
# (the GStreamer floor) into a package cargo-deb made.
set_depends() { # deb binary
  local deb=$1 libs tmp
  libs=$(shlib_depends "$2")
  [ -n "$libs" ] || { echo "package: dpkg-shlibdeps named no libraries for $2" >&2; exit 1; }
  tmp=$(mktemp -d)
  dpkg-deb -R "$deb" "$tmp/pkg"
  sed -i -e "s|^Depends: \(.*\)$|Pre-Depends: libgstreamer1.0-0 (>= $GST_FLOOR)\nDepends: $libs, \1|" \
    "$tmp/pkg/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$tmp/pkg" "$deb" >/dev/null
  rm -rf "$tmp"
}

debs=()
start=$(date +%s)
# amd64: a release build in the Debian 11 root.
cargo fetch --locked >/dev/null
"$ROOT/cross/in-root.sh" floor cargo build --locked --offline --release --target-dir target/floor --bin roomagent
CARGO_TARGET_DIR=$ROOT/target/floor cargo deb --no-build --output "$OUT/roomagent_${VERSION}-1_amd64.deb"
set_depends "$OUT/roomagent_${VERSION}-1_amd64.deb" "$ROOT/target/floor/release/roomagent"
debs+=("$OUT/roomagent_${VERSION}-1_amd64.deb")
echo "MEASURE amd64 package built in the Debian 11 root in $(( $(date +%s) - start )) s"

if [ "$ARM64" = 1 ]; then
  # arm64: the binary from cross/build-aarch64.sh (target/cross), not rebuilt here.
  BINARY=$ROOT/target/cross/aarch64-unknown-linux-gnu/release/roomagent
  [ -x "$BINARY" ] || { echo "package: $BINARY is missing: run cross/build-aarch64.sh first" >&2; exit 1; }
  CARGO_TARGET_DIR=$ROOT/target/cross cargo deb --no-build --target aarch64-unknown-linux-gnu \
    --output "$OUT/roomagent_${VERSION}-1_arm64.deb"
  set_depends "$OUT/roomagent_${VERSION}-1_arm64.deb" "$BINARY"
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

  # Control fields; Depends from the binary, at or under the floor.
  local field depends
  field=$(dpkg-deb -f "$deb" Package Architecture Version Pre-Depends)
  depends=$(dpkg-deb -f "$deb" Depends)
  grep -qx "Package: roomagent" <<<"$field" || fail "$deb: Package is not roomagent"
  grep -qx "Architecture: $arch" <<<"$field" || fail "$deb: Architecture is not $arch"
  grep -qx "Version: ${VERSION}-1" <<<"$field" || fail "$deb: Version is not ${VERSION}-1"
  grep -qx "Pre-Depends: libgstreamer1.0-0 (>= $GST_FLOOR)" <<<"$field" || fail "$deb: no Pre-Depends on GStreamer $GST_FLOOR"
  for dep in adduser libc6 libglib2.0-0 libgstreamer1.0-0 libgstreamer-plugins-base1.0-0 \
    libgstreamer-plugins-bad1.0-0 gstreamer1.0-plugins-bad gstreamer1.0-nice; do
    grep -Eq "(^|, )$dep( |,|$)" <<<"$depends" || fail "$deb: Depends lacks $dep ($depends)"
  done
  local v
  for lib in libc6:$GLIBC_FLOOR libgstreamer1.0-0:$GST_FLOOR libgstreamer-plugins-bad1.0-0:1.18.4; do
    v=$(grep -o "${lib%%:*} (>= [^)]*)" <<<"$depends" | sed 's/.*>= //; s/)//')
    [ -z "$v" ] || dpkg --compare-versions "$v" le "${lib#*:}" \
      || fail "$deb: Depends asks for ${lib%%:*} $v, above the floor ${lib#*:}"
  done
  echo "package: $deb Depends: $depends"

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

  # The binary is for this architecture (ELF e_machine: 0x3e x86-64, 0xb7 aarch64), and asks
  # for no glibc symbol newer than the floor's.
  local em glibc
  em=$(od -An -tx1 -j18 -N2 "$dir/root/usr/bin/roomagent" | tr -d ' ')
  [ "$em" = "$machine" ] || fail "$deb: /usr/bin/roomagent has ELF machine $em, want $machine"
  glibc=$(readelf -V --wide "$dir/root/usr/bin/roomagent" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  dpkg --compare-versions "$glibc" le "$GLIBC_FLOOR" || fail "$deb: the binary needs glibc $glibc, above the floor $GLIBC_FLOOR"
  echo "package: $deb binary needs glibc $glibc at most"

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

# A system below the floor: a dpkg database that holds GStreamer 1.16 (JetPack 5, Debian 10)
# and nothing newer to be had. dpkg refuses to unpack the package (its Pre-Depends) and apt
# refuses to install it, each naming GStreamer: nothing of it is installed, not even in part.
below_floor() {
  local deb=$1 fake out
  fake=$(mktemp -d)
  mkdir -p "$fake/var/lib/dpkg/info" "$fake/var/lib/dpkg/updates" "$fake/var/lib/dpkg/triggers" \
    "$fake/lists/partial" "$fake/cache/archives/partial"
  : >"$fake/var/lib/dpkg/available"
  printf '%s\n' 'Package: libgstreamer1.0-0' 'Status: install ok installed' 'Priority: optional' \
    'Section: libs' 'Maintainer: nobody <nobody@localhost>' 'Architecture: amd64' \
    'Multi-Arch: same' 'Version: 1.16.3-3' 'Description: GStreamer 1.16 (below the floor)' '' \
    >"$fake/var/lib/dpkg/status"
  if out=$(dpkg --root="$fake" -i "$deb" 2>&1); then
    fail "dpkg installed $deb over GStreamer 1.16"
  fi
  grep -q "pre-dependency problem" <<<"$out" && grep -q "libgstreamer1.0-0" <<<"$out" \
    || fail "dpkg refused $deb, but not for GStreamer: $out"
  # dpkg remembers it was asked (the selection), but nothing is unpacked.
  [ "$(dpkg-query --root="$fake" -W -f='${db:Status-Status}' roomagent 2>/dev/null)" = not-installed ] \
    && [ ! -e "$fake/usr/bin/roomagent" ] || fail "dpkg installed roomagent in part"
  if out=$(apt-get -s -o Dir::State::status="$fake/var/lib/dpkg/status" \
    -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$fake/none" \
    -o Dir::State::Lists="$fake/lists" -o Dir::Cache="$fake/cache" install "$deb" 2>&1); then
    fail "apt would install $deb over GStreamer 1.16"
  fi
  grep -q "libgstreamer1.0-0 (>= $GST_FLOOR) but 1.16.3-3 is to be installed" <<<"$out" \
    || fail "apt refused $deb, but not for GStreamer: $out"
  rm -rf "$fake"
  echo "package: below the floor (GStreamer 1.16), dpkg and apt refuse $(basename "$deb") by its GStreamer dependency; nothing installed"
}
below_floor "$OUT/roomagent_${VERSION}-1_amd64.deb"

# Install the amd64 package the way a user would (apt resolving its dependencies, without
# recommends) into a throwaway Debian 12 root and check it from inside; boot that root with
# systemd (systemd-nspawn) and check the running service (packaging/boot-check.sh); then
# upgrade over an edited configuration and purge.
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
"$ROOT/scripts/need-packages.sh" mmdebstrap systemd-container
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
$SUDO mmdebstrap --quiet --variant=apt --include=systemd-sysv,dbus,iproute2,mosquitto,mosquitto-clients \
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
booted=0
$SUDO timeout 180 "${nspawn[@]}" --boot >"$OUT/boot.log" 2>&1 || booted=$?
if ! $SUDO test -f "$ROOTFS/boot-check.txt"; then
  tail -n 30 "$OUT/boot.log"
  fail "the booted root wrote no /boot-check.txt (its console is in $OUT/boot.log)"
fi
$SUDO cat "$ROOTFS/boot-check.txt"
$SUDO tail -n 1 "$ROOTFS/boot-check.txt" | grep -qx "boot check: OK" || fail "the service check in the booted root failed"
# The check ends by asking for a reboot over MQTT: nspawn exits with 133 when its container
# reboots (0 when it powers off).
[ "$booted" = 133 ] || fail "the container did not reboot on cmd/restart {\"scope\": \"system\"} (systemd-nspawn exited with $booted, not 133)"
echo "package: the reboot asked for over MQTT rebooted the container (systemd-nspawn exit status 133)"
echo "MEASURE boot check took $(( $(date +%s) - start )) s"

# Upgrade over a locally edited configuration, then purge.
$SUDO "${nspawn[@]}" sh "$IN_ROOT/install-check.sh" "$IN_DEB" purge

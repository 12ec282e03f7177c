#!/bin/sh
# Runs inside a fresh Debian 12 root with the roomagent package (see scripts/package.sh
# --check):
#
#   install-check.sh DEB installed   right after `apt-get install ./roomagent_*.deb`: what an
#                                    administrator would look at after installing
#   install-check.sh DEB purge       later: an upgrade that must keep a locally edited
#                                    configuration, then a purge
set -eu
DEB=$1
PHASE=$2

fail() { echo "install check FAILED: $*" >&2; exit 1; }

installed() {

    # The service user, in the groups the unit names (gpio and render made when missing).
    id roomagent >/dev/null 2>&1 || fail "no roomagent user"
    groups=$(id -nG roomagent)
    for g in roomagent video audio gpio render; do
        echo " $groups " | grep -q " $g " || fail "roomagent is not in group $g (groups: $groups)"
    done
    [ "$(getent passwd roomagent | cut -d: -f6)" = /var/lib/roomagent ] || fail "roomagent's home is not /var/lib/roomagent"
    [ "$(getent passwd roomagent | cut -d: -f7)" = /usr/sbin/nologin ] || fail "roomagent has a login shell"

    # The configuration: readable by the service, not by everyone.
    [ "$(stat -c '%U:%G %a' /etc/roomagent/config.toml)" = "root:roomagent 640" ] \
        || fail "/etc/roomagent/config.toml is $(stat -c '%U:%G %a' /etc/roomagent/config.toml), want root:roomagent 640"
    checked=$(setpriv --reuid=roomagent --regid=roomagent --init-groups roomagent check-config /etc/roomagent/config.toml) \
        || fail "the roomagent user cannot read or validate /etc/roomagent/config.toml"

    # The shipped configuration is the safe one: valid but not configured (no signaling
    # server), no development room server, no password or secret in it; the example that
    # runs the development room server is documentation only.
    echo "$checked" | grep -q "not configured" || fail "the installed configuration is not the unconfigured one: $checked"
    if grep -Eq '^[[:space:]]*(password|secret|token|relay_password|turn_password)[[:space:]]*=' /etc/roomagent/config.toml; then
        fail "the installed configuration holds a password or secret"
    fi
    sed -n '/^\[room_server\]/,/^\[/p' /etc/roomagent/config.toml | grep -qx 'enabled = false' \
        || fail "the installed configuration does not turn the development room server off"
    [ -f /usr/share/doc/roomagent/config.example.toml ] || fail "no config.example.toml under /usr/share/doc/roomagent"
    if setpriv --reuid=nobody --regid=nogroup --clear-groups cat /etc/roomagent/config.toml >/dev/null 2>&1; then
        fail "other users can read /etc/roomagent/config.toml"
    fi

    # The unit: enabled for boot, and valid for this systemd.
    [ -L /etc/systemd/system/multi-user.target.wants/roomagent.service ] || fail "roomagent.service is not enabled"
    [ -L /etc/systemd/system/paths.target.wants/roomagent-privileged.path ] || fail "roomagent-privileged.path is not enabled"
    # Outside a booted system systemd-analyze works offline from systemd 250 on (Debian 11 has
    # 247: there the booted check verifies the unit instead).
    if [ "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')" -ge 250 ]; then
        systemd-analyze verify roomagent.service || fail "systemd-analyze verify rejects roomagent.service"
        systemd-analyze verify roomagent-privileged.path roomagent-privileged.service \
            || fail "systemd-analyze verify rejects the privileged helper's units"
        exposure=$(systemd-analyze security --offline=true roomagent.service | sed -n 's/.*exposure level for roomagent.service: \([0-9.]*\).*/\1/p')
        echo "install check: exposure $exposure"
    fi

    # With only the package's dependencies installed, the agent finds a media profile.
    roomagent devices | grep -q "^Chosen profile: test" \
        || { roomagent devices; fail "no media profile fits with the package's dependencies"; }

    echo "install check: installed OK (user and groups, config mode, safe unconfigured config, unit enabled and verified, a media profile fits)"
}

purge() {
    # Upgrade (the same package again): a locally edited configuration is kept.
    echo '# edited by the administrator' >>/etc/roomagent/config.toml
    DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$DEB" >/dev/null
    tail -n 1 /etc/roomagent/config.toml | grep -q "edited by the administrator" || fail "reinstalling lost the edited config"
    [ "$(stat -c '%U:%G %a' /etc/roomagent/config.toml)" = "root:roomagent 640" ] || fail "reinstalling changed the config's owner or mode"

    # Purge: the configuration, state and enablement go; the user stays (Debian policy).
    mkdir -p /var/lib/roomagent
    dpkg --purge roomagent >/dev/null
    [ ! -e /usr/bin/roomagent ] || fail "/usr/bin/roomagent is still there after purge"
    [ ! -e /etc/roomagent/config.toml ] || fail "/etc/roomagent/config.toml is still there after purge"
    [ ! -e /var/lib/roomagent ] || fail "/var/lib/roomagent is still there after purge"
    [ ! -e /etc/systemd/system/multi-user.target.wants/roomagent.service ] || fail "roomagent.service is still enabled after purge"
    [ ! -e /etc/systemd/system/paths.target.wants/roomagent-privileged.path ] || fail "roomagent-privileged.path is still enabled after purge"
    echo "install check: upgrade and purge OK (edited config kept; binary, config, state, enablement gone)"
}

case "$PHASE" in
    installed) installed ;;
    purge) purge ;;
    *) fail "unknown phase $PHASE" ;;
esac

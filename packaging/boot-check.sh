#!/bin/sh
# Runs as a unit (roomagent-boot-check.service) inside a Debian 12 root that has the roomagent
# package installed and was booted with systemd-nspawn (see scripts/package.sh --check):
# what an administrator sees of the service on a real systemd. Writes /boot-check.txt, whose
# last line is "boot check: OK" or says what failed, then powers the container off.
exec >/boot-check.txt 2>&1

fail() {
    echo "--- journal"
    journalctl -u roomagent --no-pager -o short-monotonic | tail -n 40
    echo "boot check FAILED: $*"
    systemctl poweroff
    exit 1
}
show() { systemctl show roomagent -p "$1" --value; }

# Started from the shipped configuration: up and READY, saying it is not configured, and
# listening on nothing.
[ "$(show ActiveState)/$(show SubState)" = active/running ] \
    || fail "roomagent is $(show ActiveState)/$(show SubState) ($(show Result))"
status=$(show StatusText)
[ "$status" = "not configured: edit /etc/roomagent/config.toml" ] \
    || fail "status is '$status', want 'not configured: edit /etc/roomagent/config.toml'"
echo "status: $status"
pid=$(show MainPID)
sockets=$(ss -ltnupH | grep "pid=$pid," || true)
[ -z "$sockets" ] || fail "the unconfigured service listens: $sockets"
echo "listens on nothing (ss -ltnup)"

# The hardening is in force on the running process.
[ "$(stat -c %U /proc/"$pid")" = roomagent ] || fail "runs as $(stat -c %U /proc/"$pid"), not roomagent"
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"$pid"/status || fail "NoNewPrivs is off"
grep -q '^CapBnd:[[:space:]]*0000000000000000' /proc/"$pid"/status || fail "the capability bounding set is not empty"
grep -q '^Seccomp:[[:space:]]*2' /proc/"$pid"/status || fail "no seccomp filter"
groups=$(id -nG roomagent)
echo "runs as roomagent ($groups), NoNewPrivs, no capabilities, seccomp filter"

# Configure it the way an administrator would: a (development) room server on loopback,
# started here with a password made here; the installed file edited to name it; a reload.
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' '[room_server]' 'listen = "127.0.0.1:8089"' '[[room_server.accounts]]' \
    'id = 1001' 'name = "room-101"' "password = \"$password\"" >/root/dev-room.toml
chmod 600 /root/dev-room.toml
systemd-run --quiet --unit=dev-room-server /usr/bin/roomagent room-server --config /root/dev-room.toml \
    || fail "cannot start the development room server"
for _ in $(seq 50); do
    ss -ltnH 'sport = :8089' | grep -q . && break
    sleep 0.2
done
ss -ltnH 'sport = :8089' | grep -q . || fail "the development room server does not listen on 127.0.0.1:8089"
sed -i \
    -e 's|^# id = "room-101"$|id = "room-101"|' \
    -e 's|^# host = "https://meet.example.com/app"$|host = "http://127.0.0.1:8089/app"|' \
    -e "s|^# name = \"room-101\"\$|name = \"room-101\"\\npassword = \"$password\"|" \
    /etc/roomagent/config.toml
if roomagent check-config /etc/roomagent/config.toml | grep -q "not configured"; then
    fail "the edited configuration is still not configured"
fi
systemctl reload roomagent || fail "systemctl reload failed"
for _ in $(seq 100); do
    case "$(show StatusText)" in "registered as "*) break ;; esac
    sleep 0.2
done
status=$(show StatusText)
case "$status" in
    "registered as "*) echo "after the edit and a reload: $status" ;;
    *) fail "after configuring and reloading, the status is '$status', want 'registered as …'" ;;
esac
[ "$(show MainPID)" = "$pid" ] && [ "$(show NRestarts)" = 0 ] || fail "configuring restarted the service"

# The watchdog: past WatchdogSec the service is still the same process, not restarted.
wd=$(show WatchdogUSec)
sleep 22
[ "$(show MainPID)" = "$pid" ] && [ "$(show NRestarts)" = 0 ] \
    || fail "restarted within 22 s (watchdog $wd not fed?)"
echo "watchdog ($wd) fed: same process after 22 s"

# Reload: a good configuration is re-read; a broken one is refused and the service runs on.
systemctl reload roomagent || fail "systemctl reload failed"
sleep 1
case "$(show StatusText)" in
    *reloaded*) echo "reload: $(show StatusText)" ;;
    *) fail "after reload the status is '$(show StatusText)'" ;;
esac
cp -p /etc/roomagent/config.toml /root/config.toml.good
echo 'no_such_option = 1' >>/etc/roomagent/config.toml
if systemctl reload roomagent 2>/dev/null; then
    fail "reload accepted a broken configuration"
fi
[ "$(show ActiveState)" = active ] && [ "$(show MainPID)" = "$pid" ] \
    || fail "a refused reload stopped the service"
cat /root/config.toml.good >/etc/roomagent/config.toml
echo "reload of a broken configuration refused; still running"

# Faults: a crash (SIGABRT, as a failed assertion in a C library ends a process; a SIGSEGV sent by
# kill is caught and ignored by Rust's stack-overflow handler) and a hang (SIGSTOP: nothing
# answers, so the watchdog is not fed) both end in a restart by systemd and the device
# registered again.
survives() { # $1: signal, $2: seconds to wait, $3: what it stands for
    before=$(show NRestarts)
    start=$(date +%s%N)
    kill -"$1" "$pid"
    back=no
    for _ in $(seq $(( $2 * 5 ))); do
        p=$(show MainPID)
        if [ "$p" != "$pid" ] && [ "$p" != 0 ]; then
            case "$(show StatusText)" in "registered as "*) back=yes; break ;; esac
        fi
        sleep 0.2
    done
    [ "$back" = yes ] || fail "after a $3: $(show ActiveState)/$(show SubState), '$(show StatusText)'"
    took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    [ "$(show NRestarts)" = $((before + 1)) ] || fail "NRestarts $(show NRestarts) after one $3"
    echo "MEASURE $3 (SIG$1) -> restarted and registered again in ${took_ms} ms"
    pid=$(show MainPID)
}
survives ABRT 30 crash
survives STOP 60 "hang (watchdog $wd)"

# Stop: SIGTERM, a clean exit with status 0.
start=$(date +%s%N)
systemctl stop roomagent
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(show Result)" = success ] && [ "$(show ExecMainStatus)" = 0 ] \
    || fail "stop: result $(show Result), exit status $(show ExecMainStatus)"
echo "MEASURE systemctl stop took ${took_ms} ms (exit status 0)"
systemctl stop dev-room-server
echo "boot check: OK"
systemctl poweroff

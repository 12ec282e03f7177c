//! The few facts only libc gives: free disk space (`statvfs`), the kernel's NTP state
//! (`adjtimex`, read-only), the kernel and machine (`uname`) and the network interfaces
//! (`getifaddrs`). Each is safe to call and returns `None` where the call fails.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `(available, total)` bytes of the filesystem holding `path`.
pub fn statvfs(path: &Path) -> Option<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid `statvfs`; `c` is NUL-terminated and `st` an out-parameter
    // of the right type.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

/// Whether the kernel says its clock is synchronised (`None`: the call is not allowed here,
/// as under systemd's `ProtectClock=`).
pub fn kernel_clock_synced() -> Option<bool> {
    // SAFETY: all-zero is a valid `timex`; with `modes = 0` the call only reads the kernel's
    // state into it.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

/// The kernel release and the machine (`6.6.51+rpt-rpi-2712`, `aarch64`).
pub fn uname() -> Option<(String, String)> {
    // SAFETY: all-zero is a valid `utsname`, which uname fills with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates each field within its array.
        unsafe { CStr::from_ptr(field.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some((text(&u.release), text(&u.machine)))
}

/// A network interface as the kernel reports it in this network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`eth0`, `wlan0`).
    pub name: String,
    /// Its hardware address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Up and running (`IFF_UP` and `IFF_RUNNING`).
    pub running: bool,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
}

/// Every interface with its MAC and addresses (`getifaddrs`: this network namespace's own,
/// unlike `/sys/class/net`, which shows the namespace sysfs was mounted in).
pub fn interfaces() -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list it hands over through `head`; it is walked while
    // alive and freed once with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let i = match out.iter().position(|i| i.name == name) {
            Some(i) => i,
            None => {
                out.push(Interface {
                    name,
                    ..Interface::default()
                });
                out.len() - 1
            }
        };
        let entry = &mut out[i];
        let flags = ifa.ifa_flags as libc::c_int;
        entry.running |= flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type and size.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        match family {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                entry.addresses.push(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                entry.addresses.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
            libc::AF_PACKET => {
                // SAFETY: an AF_PACKET address is a sockaddr_ll.
                let ll = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
                let len = usize::from(ll.sll_halen).min(ll.sll_addr.len());
                if len > 0 {
                    let hex: Vec<String> = ll.sll_addr[..len]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    entry.mac = Some(hex.join(":"));
                }
            }
            _ => {}
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_answers_each_call() {
        let (free, total) = statvfs(Path::new("/")).expect("statvfs /");
        assert!(total > 0 && free <= total);
        assert!(statvfs(Path::new("/nonexistent/x")).is_none());
        let (release, machine) = uname().expect("uname");
        assert!(!release.is_empty() && !machine.is_empty());
        let all = interfaces();
        assert!(
            all.iter()
                .any(|i| i.name == "lo" && i.addresses.iter().any(IpAddr::is_loopback)),
            "{all:?}"
        );
    }
}

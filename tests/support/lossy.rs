//! A lossy network path inside the test's own network namespace (`netem` is not available on
//! these machines): a TUN device whose packets a thread of this process reads, drops at
//! random with a given probability (both directions), holds for a given one-way delay, and
//! writes back with source and
//! destination swapped. The kernel then delivers each packet to the local socket on the
//! other side, so a client that connects to [`FAR`]`:port` reaches a server listening on the
//! same port here (bound to `0.0.0.0` or [`NEAR`]), over TCP or UDP, through real loss: TCP
//! retransmits by itself, UDP sees the gap. Swapping the two addresses changes neither the IP
//! nor the TCP/UDP checksum (both sum the addresses).
//!
//! Call only inside a namespace the test made (`netns::run_isolated`).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::rng::Rng;

/// This side's address on the TUN device.
pub const NEAR: &str = "10.99.0.1";
/// The far side: packets to it go through the lossy thread and come back to [`NEAR`].
pub const FAR: &str = "10.99.0.2";
const DEVICE: &str = "rloss0";

/// The lossy path; ends (and removes its device) when dropped.
pub struct LossyPath {
    stop: Arc<AtomicBool>,
    /// Drop probability in millionths; changeable while running.
    loss_ppm: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn ip(args: &str) {
    let out = Command::new("sh")
        .args(["-ec", &format!("ip {args}")])
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Opens `/dev/net/tun` as the TUN device `name` (no packet information header).
fn open_tun(name: &str) -> OwnedFd {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let path = c"/dev/net/tun";
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    assert!(
        fd >= 0,
        "open /dev/net/tun: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just opened and is owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads a `struct ifreq`, which `IfReq` lays out.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) };
    assert!(r == 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    fd
}

impl LossyPath {
    /// Starts the path dropping `loss` (0.0–1.0) of the packets in each direction and
    /// delaying the rest by `delay` each way, drawing from `seed` (the same seed drops the
    /// same packet numbers).
    pub fn start(loss: f64, delay: Duration, seed: u64) -> LossyPath {
        let fd = open_tun(DEVICE);
        ip(&format!("addr add {NEAR}/24 dev {DEVICE}"));
        ip(&format!("link set {DEVICE} txqueuelen 10000 up"));
        let stop = Arc::new(AtomicBool::new(false));
        let loss_ppm = Arc::new(AtomicU64::new((loss * 1e6) as u64));
        let passed = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (s, l, p, d) = (
            stop.clone(),
            loss_ppm.clone(),
            passed.clone(),
            dropped.clone(),
        );
        let thread = std::thread::spawn(move || reflect(fd, s, l, p, d, delay, seed));
        LossyPath {
            stop,
            loss_ppm,
            passed,
            dropped,
            thread: Some(thread),
        }
    }

    /// Changes the drop probability.
    pub fn set_loss(&self, loss: f64) {
        self.loss_ppm.store((loss * 1e6) as u64, Ordering::Relaxed);
    }

    /// Packets passed and dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.passed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LossyPath {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = Command::new("ip").args(["link", "del", DEVICE]).output();
    }
}

fn reflect(
    fd: OwnedFd,
    stop: Arc<AtomicBool>,
    loss_ppm: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    delay: Duration,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let mut buf = vec![0u8; 65536];
    let mut held: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while held.front().is_some_and(|(at, _)| *at <= now) {
            let (_, packet) = held.pop_front().expect("a held packet");
            // SAFETY: `packet` is readable for its length.
            unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        }
        let wait = held
            .front()
            .map_or(100, |(at, _)| {
                at.saturating_duration_since(now).as_millis().max(1) as i32
            })
            .min(100);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, wait) } <= 0 {
            continue;
        }
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 20 {
            continue;
        }
        let packet = &mut buf[..n as usize];
        if packet[0] >> 4 != 4 {
            continue; // IPv4 only
        }
        if rng.below(1_000_000) < loss_ppm.load(Ordering::Relaxed) as usize {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (src, dst) = packet[12..20].split_at_mut(4);
        src.swap_with_slice(dst);
        passed.fetch_add(1, Ordering::Relaxed);
        held.push_back((Instant::now() + delay, packet.to_vec()));
    }
}

//! Every limit on state that remote input can grow, in one place. At each limit the server
//! answers in the dialect's usual shape: a socket reply with `result` (1 = failed, 400 = bad
//! request), an `account` reply with `result`, or an HTTP status before a socket exists.

use std::time::Duration;

/// A login session (`SID`) expires this long after it was opened.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Open sessions per user; logging in once more evicts the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 16;

/// A `getSign` signature is valid this long, and for one `dockingLogin` only.
pub const SIGN_TTL: Duration = Duration::from_secs(5 * 60);

/// Unused signatures kept at once; issuing one more forgets the oldest.
pub const MAX_LIVE_SIGNS: usize = 1024;

/// Users `dockingLogin` may create; a new account beyond it is refused (`result` 1).
pub const MAX_DOCKING_USERS: usize = 1000;

/// A room made by `room/newAppRoom` that nobody entered is removed after this long (checked
/// when rooms are created).
pub const UNENTERED_ROOM_TTL: Duration = Duration::from_secs(10 * 60);

/// Unentered rooms one user may own; `newAppRoom` beyond it is refused (`result` 1).
pub const MAX_EMPTY_ROOMS_PER_OWNER: usize = 16;

/// Rooms one user may sit in at once; entering another is refused (`result` 1).
pub const MAX_ROOMS_PER_USER: usize = 4;

/// Longest chat text, participant or meeting name, account or user name, in bytes; longer
/// is refused (`result` 400 naming the field).
pub const MAX_TEXT: usize = 4 * 1024;

/// Longest HTTP request body; longer gets HTTP 413.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

/// Longest WebSocket message and frame; longer closes the socket (frames above the
/// dialect's 64 KiB but below this get a 400 reply instead).
pub const MAX_WS_MESSAGE: usize = 1 << 20;

/// Limits of the socket transport; [`Default`] is what the server uses, tests shrink them.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// WebSocket connections open at once; one more gets HTTP 503.
    pub max_connections: usize,
    /// WebSocket connections of one user; one more gets HTTP 429.
    pub max_sockets_per_user: usize,
    /// Outgoing frames queued for one connection; one more closes it (a client that does
    /// not read).
    pub queue: usize,
    /// A single send that takes longer closes the connection.
    pub send_timeout: Duration,
    /// The server pings a connection this often.
    pub ping_every: Duration,
    /// A connection that sent nothing (pongs included) for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for SocketLimits {
    fn default() -> SocketLimits {
        SocketLimits {
            max_connections: 256,
            max_sockets_per_user: 8,
            queue: 1024,
            send_timeout: Duration::from_secs(10),
            ping_every: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

//! Waiting on something that may not exist: the branches of a `select!` loop whose source is
//! optional (no deadline armed, media off, no watchdog) wait forever instead.

use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next item of an optional stream, or never.
pub async fn next_or_pending<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The next message of an optional channel, or never.
pub async fn recv_or_pending<T>(
    rx: &mut Option<tokio::sync::mpsc::UnboundedReceiver<T>>,
) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next message of an optional bounded channel, or never.
pub async fn recv_bounded_or_pending<T>(
    rx: &mut Option<tokio::sync::mpsc::Receiver<T>>,
) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next tick of an optional interval, or never.
pub async fn tick_or_pending(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

//! What the WebSocket clients share (Twitch chat over IRC, EventSub over WebSocket, the Discord
//! gateway): the socket type, the pause between reconnections, and status watching.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// A client WebSocket, TLS or plain.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Pauses between reconnection attempts: from `first`, doubling up to a minute, each with up to
/// half a second of jitter so many bots cut off together do not come back in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    next: Duration,
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(60);

    pub(crate) fn new(first: Duration) -> Self {
        Self { first, next: first }
    }

    /// After a connection that worked: the next failure starts from `first` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }

    /// How long to wait now.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.next + Duration::from_millis(fastrand::u64(0..500));
        self.next = (self.next * 2)
            .max(Duration::from_millis(500))
            .min(Self::MAX);
        pause
    }
}

/// Sleeps for `pause`, unless nobody listens to `events` any more (`false` then).
pub(crate) async fn pause_unless_closed<T>(pause: Duration, events: &mpsc::Sender<T>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => true,
        () = events.closed() => false,
    }
}

/// Waits until `status` satisfies `done`, and returns it; `stopped` when its sender is gone.
pub(crate) async fn wait_for_status<S: Clone>(
    status: &watch::Receiver<S>,
    done: impl Fn(&S) -> bool,
    stopped: S,
) -> S {
    let mut status = status.clone();
    let result = status.wait_for(|s| done(s)).await.map(|s| s.clone());
    result.unwrap_or(stopped)
}

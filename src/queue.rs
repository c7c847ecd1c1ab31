//! `queue`: this node's side of the durable job queue. The queue itself is rows in the metadata
//! store; this part wakes idle workers when a job is queued and holds the cancellation handle of
//! every job running here, so that deleting a track stops its work.

use crate::store::TrackId;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

/// The queue part of the server's state.
#[derive(Default)]
pub struct Queue {
    wake: tokio::sync::Notify,
    running: DashMap<TrackId, CancellationToken>,
}

impl Queue {
    /// An idle queue.
    pub fn new() -> Queue {
        Queue::default()
    }

    /// Wakes idle workers: a job was queued.
    pub fn notify(&self) {
        self.wake.notify_waiters();
    }

    /// Resolves when [`Queue::notify`] is called.
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    /// Records that this node runs `track`'s job; the token is cancelled by [`Queue::cancel`].
    pub fn start(&self, track: TrackId) -> CancellationToken {
        let token = CancellationToken::new();
        self.running.insert(track, token.clone());
        token
    }

    /// The job of `track` ended here.
    pub fn finish(&self, track: TrackId) {
        self.running.remove(&track);
    }

    /// Cancels `track`'s job if it runs here.
    pub fn cancel(&self, track: TrackId) {
        if let Some((_, token)) = self.running.remove(&track) {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_reaches_the_running_job_only() {
        let q = Queue::new();
        let (a, b) = (TrackId::new(), TrackId::new());
        let ta = q.start(a);
        let tb = q.start(b);
        q.cancel(a);
        assert!(ta.is_cancelled());
        assert!(!tb.is_cancelled());
        q.finish(b);
        q.cancel(b);
        assert!(!tb.is_cancelled());
    }
}

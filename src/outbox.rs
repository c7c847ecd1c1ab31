//! `outbox`: this node's side of the event outbox. The outbox itself is rows in the metadata
//! store, written in the same transaction as the change they report; this part wakes the
//! dispatcher (`dispatch`) when something was written, so an event leaves at once rather than at
//! its next poll.

/// The outbox part of the server's state.
#[derive(Default)]
pub struct Outbox {
    wake: tokio::sync::Notify,
}

impl Outbox {
    /// An outbox with nobody waiting.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Something was written to the outbox.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`Outbox::notify`] is called (or was, since the last wait).
    pub async fn notified(&self) {
        self.wake.notified().await
    }
}

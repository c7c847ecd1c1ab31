//! `app`: the state the HTTP routers share, made of the per-concern parts that
//! [`Server::load`](crate::server::Server::load) builds. Drivers (job workers, the outbox dispatcher, the
//! JWKS refresher, the sweeper) take only the parts they need and never see this.

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::outbox::Outbox;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::store::MetadataStore;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a request handler may reach.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// Base URL of playback URLs.
    pub public_url: String,
    /// Base URL of Icecast ingest URLs (`live.ingest_url`, or `public_url`).
    pub ingest_url: String,
    /// The metadata store.
    pub store: Arc<dyn MetadataStore>,
    /// Object storage.
    pub storage: Storage,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// API keys, JWTs, rate limits and playback tokens.
    pub auth: Arc<Auth>,
    /// Published and stitched caches, listeners, and the operations on tracks.
    pub catalog: Arc<Catalog>,
    /// This node's side of the job queue.
    pub queue: Arc<Queue>,
    /// Wakes the event dispatcher.
    pub outbox: Arc<Outbox>,
    /// This node's live channels.
    pub live: Arc<Live>,
    /// WebRTC sessions on the shared UDP port.
    pub webrtc: Arc<crate::webrtc::WebRtc>,
    /// The delivery hot cache.
    pub objects: Objects,
    /// What the nodes share (rate limits, revocations, channel events), through Redis if set.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// The development API key, on embedded defaults (no `auth.api_keys`): what the web app's
    /// development sign-in hands to a loopback page.
    pub dev_api_key: Option<String>,
}

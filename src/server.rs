//! `server`: [`Server::load`] wires the configuration into live objects (store, storage, keys,
//! caches, listener) and [`Server::run`] serves until SIGTERM/SIGINT, then drains.

use crate::auth::{ApiKeys, DevSecrets, Jwt, Tokens};
use crate::config::{Config, PlaybackKey};
use crate::listeners::Listeners;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::store::{MetadataStore, TrackId};
use anyhow::Context;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A published track as delivery needs it.
#[derive(Debug)]
pub struct Published {
    /// Object prefix of the package.
    pub prefix: String,
    /// Rendition directory names.
    pub renditions: Vec<String>,
}

/// What playlist delivery needs of a playlist: its playable tracks in order and the renditions
/// they all have.
#[derive(Debug)]
pub struct Stitch {
    /// Ready tracks, in playlist order.
    pub tracks: Vec<TrackId>,
    /// Renditions every one of them has (bandwidths: the highest).
    pub renditions: Vec<crate::store::Rendition>,
    /// Each rendition's media playlist, rendered once for this state of the playlist with a
    /// place for the token; a request only substitutes its own.
    pub media: parking_lot::Mutex<std::collections::HashMap<String, Arc<Template>>>,
}

/// A rendered playlist whose token is left out: the text between the token's places.
#[derive(Debug)]
pub struct Template {
    /// The text, split where the token goes.
    pub pieces: Vec<String>,
    /// A hash of the whole template, for strong validators.
    pub tag: String,
}

impl Template {
    /// The marker a renderer writes where the token goes.
    pub const MARK: &'static str = "\u{1}token\u{1}";

    /// Splits rendered `text` at its markers.
    pub fn new(text: &str, tag: String) -> Template {
        Template {
            pieces: text.split(Self::MARK).map(String::from).collect(),
            tag,
        }
    }

    /// The text with `token` in every place: one copy of the bytes.
    pub fn fill(&self, token: &str) -> String {
        let len: usize = self.pieces.iter().map(String::len).sum::<usize>()
            + token.len() * self.pieces.len().saturating_sub(1);
        let mut out = String::with_capacity(len);
        for (i, p) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push_str(token);
            }
            out.push_str(p);
        }
        out
    }
}

/// An object held in the hot cache, with its strong validator.
#[derive(Debug, Clone)]
pub struct Object {
    /// The bytes.
    pub data: Bytes,
    /// The quoted ETag.
    pub etag: axum::http::HeaderValue,
}

/// Everything a request handler or worker shares.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// Base URL for playback URLs.
    pub public_url: String,
    /// The metadata store.
    pub store: Arc<dyn MetadataStore>,
    /// Object storage.
    pub storage: Storage,
    /// Playback-token keys.
    pub tokens: Tokens,
    /// Control API keys.
    pub api_keys: ApiKeys,
    /// JWT verification.
    pub jwt: Jwt,
    /// Request-rate limits of the control API.
    pub limits: crate::http::Limiters,
    /// Wakes the event dispatcher when something was written to the outbox.
    pub events_wake: tokio::sync::Notify,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Listener sessions.
    pub listeners: Listeners,
    /// Published tracks by id (`None`: not playable), refreshed every few seconds.
    pub published: moka::sync::Cache<TrackId, Option<Arc<Published>>>,
    /// Playlists as delivery stitches them, by id, refreshed every few seconds.
    pub stitched: moka::sync::Cache<crate::store::PlaylistId, Arc<Stitch>>,
    /// Hot objects (segments, init segments, playlists) by key, bounded in bytes.
    pub objects: moka::sync::Cache<String, Object>,
    /// Jobs running on this node, to cancel on DELETE.
    pub running: DashMap<TrackId, CancellationToken>,
    /// Wakes idle workers when a job is queued.
    pub wake: tokio::sync::Notify,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// Renditions and options for new jobs.
    pub package_options: crate::Options,
}

impl App {
    /// Unix seconds now.
    pub fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Unix milliseconds now.
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A server bound to its port, ready to run.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    dev_api_key: Option<String>,
    /// The descriptor limit in force (raised to the hard limit at load).
    nofile: u64,
}

impl Server {
    /// Opens the store (running migrations), the storage and the listening socket.
    pub async fn load(mut config: Config) -> anyhow::Result<Server> {
        // object_store (S3) and other rustls users may pull in two crypto providers; pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Idle clients must not run the process out of descriptors before the caps do.
        let nofile = crate::listen::raise_nofile();
        let mut dev_api_key = None;
        let jwt_configured = !(config.auth.jwt_hs256_secret.is_empty()
            && config.auth.jwt_public_key_file.is_empty()
            && config.auth.jwt_jwks_file.is_empty()
            && config.auth.jwt_jwks_url.is_empty());
        let mut jwt_secret = Some(config.auth.jwt_hs256_secret.clone()).filter(|s| !s.is_empty());
        if config.auth.api_keys.is_empty()
            || config.auth.playback_keys.is_empty()
            || !jwt_configured
        {
            let dev = DevSecrets::load_or_create(&config.server.data_dir).with_context(|| {
                format!(
                    "creating development secrets in {}",
                    config.server.data_dir.display()
                )
            })?;
            if config.auth.api_keys.is_empty() {
                config.auth.api_keys = vec![dev.api_key.clone()];
                dev_api_key = Some(dev.api_key);
            }
            if config.auth.playback_keys.is_empty() {
                config.auth.playback_keys = vec![PlaybackKey {
                    id: "dev".into(),
                    secret: dev.playback_secret,
                }];
            }
            if !jwt_configured {
                jwt_secret = Some(dev.jwt_secret);
            }
        }
        let jwt = Jwt::new(&config.auth, jwt_secret.as_deref()).map_err(anyhow::Error::msg)?;
        let store = crate::store::open(&config.database.url, config.database.max_connections)
            .await
            .with_context(|| {
                format!(
                    "opening the metadata store {}",
                    redact(&config.database.url)
                )
            })?;
        store
            .migrate()
            .await
            .context("migrating the metadata store")?;
        let storage = Storage::open(&config.storage).context("opening object storage")?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let mut package_options = crate::Options {
            segment_seconds: config.packaging.segment_seconds,
            panic_in_encoder: config.jobs.fault == "encoder-panic",
            limits: veza_codecs::Limits {
                max_seconds: config.limits.max_duration_seconds,
                max_channels: config.limits.max_channels,
                ..veza_codecs::Limits::default()
            },
            ..crate::Options::default()
        };
        package_options.renditions = config
            .packaging
            .renditions
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, String>>()
            .map_err(anyhow::Error::msg)?;
        if !config.packaging.normalize {
            package_options.normalize = None;
        }
        // With no public URL configured, the bound address (a port of 0 is resolved here).
        let public_url = if config.server.public_url.is_empty() {
            format!("http://{}", listener.local_addr()?)
        } else {
            config.public_url()
        };
        let app = App {
            tokens: Tokens::new(
                &config.auth.playback_keys,
                &config.auth.playback_signing_key,
            ),
            api_keys: ApiKeys::new(config.auth.api_keys.clone()),
            jwt,
            limits: crate::http::Limiters::new(&config.limits),
            events_wake: tokio::sync::Notify::new(),
            metrics: Metrics::new(),
            listeners: Listeners::new(Duration::from_secs(config.delivery.listener_idle_seconds)),
            published: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            stitched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            objects: moka::sync::Cache::builder()
                .max_capacity(config.delivery.cache_bytes)
                .weigher(|k: &String, v: &Object| {
                    u32::try_from(k.len() + v.data.len()).unwrap_or(u32::MAX)
                })
                .build(),
            running: DashMap::new(),
            wake: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
            package_options,
            public_url,
            store,
            storage,
            config,
        };
        Ok(Server {
            app: Arc::new(app),
            listener,
            dev_api_key,
            nofile,
        })
    }

    /// The shared state (for in-process tests).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The start-up banner: where to go and how.
    pub fn banner(&self) -> String {
        let url = &self.app.public_url;
        let mut s = format!("Veza Stream listening on {url}\n");
        s += &format!(
            "  metadata store: {}\n",
            redact(&self.app.config.database.url)
        );
        s += &format!("  media storage:  {}\n", self.app.storage.describe());
        if let Some(k) = &self.dev_api_key {
            s +=
                &format!(
                "  development API key: {k}\n    (kept in {}; set auth.api_keys for production)\n",
                self.app.config.server.data_dir.join("dev-secrets.toml").display()
            );
        }
        let key = self.dev_api_key.as_deref().unwrap_or("$VEZA_API_KEY");
        s += &format!(
            "  upload:   curl -H 'Authorization: Bearer {key}' -H 'Content-Type: audio/flac' --data-binary @track.flac {url}/v1/tracks\n"
        );
        s += &format!("  tracks:   curl -H 'Authorization: Bearer {key}' {url}/v1/tracks\n");
        s += &format!("  metrics:  {url}/metrics   health: {url}/healthz   ready: {url}/readyz\n");
        s
    }

    /// Serves until SIGTERM or SIGINT (or [`App::shutdown`]), then stops accepting, lets in-flight
    /// requests finish within `server.shutdown_grace_seconds`, and gives running jobs back.
    pub async fn run(self) -> anyhow::Result<()> {
        let app = self.app;
        let workers = match app.config.jobs.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        };
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..workers {
            tasks.spawn(crate::jobs::worker(app.clone(), n));
        }
        tasks.spawn(sweeper(app.clone()));
        tasks.spawn(crate::dispatch::dispatcher(app.clone()));
        if !app.config.auth.jwt_jwks_url.is_empty() {
            tasks.spawn(crate::dispatch::jwks_refresher(app.clone()));
        }
        let shutdown = app.shutdown.clone();
        tokio::spawn(signals(shutdown.clone()));
        let router = crate::http::router(app.clone());
        let grace = Duration::from_secs(app.config.server.shutdown_grace_seconds);
        let server = &app.config.server;
        let (max, per_ip) = crate::listen::Limits::sized_for(self.nofile);
        let limits = crate::listen::Limits {
            header: Duration::from_secs_f64(server.header_timeout_seconds),
            keepalive: Duration::from_secs_f64(server.keepalive_idle_seconds),
            max: match server.max_connections {
                0 => max,
                n => n,
            },
            per_ip: match server.max_connections_per_ip {
                0 => per_ip,
                n => n,
            },
        };
        tracing::info!(
            max_connections = limits.max,
            per_ip = limits.per_ip,
            descriptors = self.nofile,
            "accepting"
        );
        let served = tokio::spawn(crate::listen::serve(
            self.listener,
            router,
            limits,
            shutdown.clone(),
            grace,
        ));
        shutdown.cancelled().await;
        tracing::info!("shutting down: draining requests and releasing jobs");
        if tokio::time::timeout(grace + Duration::from_secs(1), served)
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests outlived the grace period");
        }
        // Jobs stop packaging within a fraction of a second of the shutdown (their cancellation
        // flag) and give their work back; an upload of a package in flight gets the same grace.
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("background tasks outlived the grace period; leases will expire");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}

/// Drops idle listener sessions and refreshes the listener gauge; expires idempotency keys and
/// resumable uploads; and, at start and every ten minutes, removes what interrupted writes left.
async fn sweeper(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_leftovers: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = app.shutdown.cancelled() => return,
        }
        if last_leftovers.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
            last_leftovers = Some(Instant::now());
            sweep_leftovers(&app).await;
        }
        let n = app.listeners.sweep(Instant::now());
        app.metrics.listeners.set(n as i64);
        app.limits.sweep();
        let now = App::now_ms();
        let ttl = app.config.limits.idempotency_ttl_seconds as i64 * 1000;
        if let Err(e) = app.store.forget_idempotency(now - ttl).await {
            tracing::warn!(error = %e, "forgetting old idempotency keys");
        }
        crate::http::expire_uploads(&app, now).await;
    }
}

/// Removes what a killed process left in storage, once older than the upload expiry (so nothing
/// still being written is touched): object_store's partial multipart files (`<key>#<n>`), tus
/// pieces whose upload row is gone, and originals whose track row was never written.
pub async fn sweep_leftovers(app: &App) {
    let expiry = Duration::from_secs(app.config.limits.upload_expiration_seconds);
    let Some(before) = std::time::SystemTime::now().checked_sub(expiry) else {
        return;
    };
    let storage = app.storage.clone();
    let partials = tokio::task::spawn_blocking(move || storage.sweep_partials(before))
        .await
        .unwrap_or(0);
    let mut pieces = 0;
    let mut originals = 0;
    match app.storage.older_than("uploads/", before).await {
        Ok(keys) => {
            let mut ids: Vec<String> = keys
                .iter()
                .filter_map(|k| k.split('/').nth(1).map(String::from))
                .collect();
            ids.dedup();
            for id in ids {
                if let Ok(None) = app.store.upload(&id).await {
                    if let Ok(n) = app.storage.delete_prefix(&format!("uploads/{id}/")).await {
                        pieces += n;
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing upload pieces"),
    }
    match app.storage.older_than("originals/", before).await {
        Ok(keys) => {
            for key in keys {
                let Some(id) = key
                    .strip_prefix("originals/")
                    .and_then(|id| id.parse::<crate::store::TrackId>().ok())
                else {
                    continue;
                };
                if let Ok(None) = app.store.track(id).await {
                    if app.storage.delete(&key).await.is_ok() {
                        originals += 1;
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing originals"),
    }
    if partials + pieces + originals > 0 {
        tracing::info!(
            partials,
            pieces,
            originals,
            "removed what interrupted uploads left"
        );
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

//! `server`: [`Server::load`] wires the configuration into live objects (store, storage, keys,
//! caches, listener) and [`Server::run`] serves until SIGTERM/SIGINT, then drains.

use crate::app::App;
use crate::auth::{ApiKeys, Auth, DevSecrets, Jwt, Limiters, Tokens};
use crate::catalog::Catalog;
use crate::config::{Config, PlaybackKey};
use crate::dispatch::Dispatcher;
use crate::jobs::Worker;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::sweep::Sweeper;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A server bound to its port, ready to run.
pub struct Server {
    app: Arc<App>,
    /// Renditions and options of new jobs.
    package_options: crate::package::Options,
    listener: TcpListener,
    https: Option<Https>,
    dev_api_key: Option<String>,
    /// The descriptor limit in force (raised to the hard limit at load).
    nofile: u64,
    limits: crate::listen::Limits,
}

/// The HTTPS side: its TCP listener, its certificate and, with HTTP/3, its UDP endpoint.
struct Https {
    listener: TcpListener,
    certs: Arc<crate::tls::Certs>,
    #[cfg(feature = "http3")]
    h3: Option<crate::http3::Endpoint>,
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
        let mut session_secret = config.auth.session_secret.clone();
        if config.auth.api_keys.is_empty()
            || config.auth.playback_keys.is_empty()
            || !jwt_configured
            || session_secret.is_empty()
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
            if session_secret.is_empty() {
                session_secret = dev.session_secret;
            }
        }
        for r in &config.live.renditions {
            crate::rendition::Rendition::parse_live(r)
                .map_err(|e| anyhow::anyhow!("configuration: live.renditions: {e}"))?;
        }
        let jwt = Jwt::new(&config.auth, jwt_secret.as_deref())
            .map_err(anyhow::Error::msg)?
            .with_local(&session_secret);
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
        let limits = limits(&config.server, nofile);
        let https = match crate::tls::Certs::load(&config).context("loading the TLS certificate")? {
            None => None,
            Some(certs) => {
                let at = config.server.tls_listen;
                let listener = TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding {at} (HTTPS)"))?;
                // HTTP/3 takes the same port over UDP (the one TCP got, when 0 was asked).
                #[cfg(feature = "http3")]
                let h3 = if config.server.http3 {
                    let udp = listener.local_addr()?;
                    Some(
                        crate::http3::Endpoint::bind(udp, &certs, limits)
                            .with_context(|| format!("binding udp {udp} (HTTP/3)"))?,
                    )
                } else {
                    None
                };
                Some(Https {
                    listener,
                    certs,
                    #[cfg(feature = "http3")]
                    h3,
                })
            }
        };
        let mut package_options = crate::package::Options {
            segment_seconds: config.packaging.segment_seconds,
            panic_in_encoder: config.jobs.fault == "encoder-panic",
            limits: veza_codecs::Limits {
                max_seconds: config.limits.max_duration_seconds,
                max_channels: config.limits.max_channels,
                ..veza_codecs::Limits::default()
            },
            ..crate::package::Options::default()
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
        let store: Arc<dyn crate::store::MetadataStore> = store;
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let outbox = Arc::new(Outbox::new());
        if config.live.node_id.is_empty() {
            config.live.node_id = node_identity(&config.server.data_dir, &public_url)?;
        }
        let queue = Arc::new(Queue::new());
        let live = Arc::new(crate::live::Live::new(
            config.live.clone(),
            public_url.clone(),
            Duration::from_secs(config.delivery.listener_idle_seconds)
                .min(crate::live::HLS_LISTENER_IDLE),
            store.clone(),
            storage.clone(),
            outbox.clone(),
            metrics.clone(),
            shutdown.clone(),
            queue.clone(),
            config.server.data_dir.join("recordings"),
        ));
        let webrtc =
            crate::webrtc::WebRtc::bind(config.live.clone(), metrics.clone(), shutdown.clone())
                .await
                .context("starting WebRTC")?;
        let cluster = Arc::new(crate::cluster::Cluster::new(
            &config.redis,
            metrics.clone(),
        )?);
        let app = App {
            live,
            webrtc,
            cluster,
            dev_api_key: dev_api_key.clone(),
            auth: Arc::new(Auth {
                tokens: Tokens::new(
                    &config.auth.playback_keys,
                    &config.auth.playback_signing_key,
                ),
                api_keys: ApiKeys::new(config.auth.api_keys.clone()),
                jwt: Arc::new(jwt),
                limits: Limiters::new(&config.limits),
                guard: crate::auth::accounts::Guard::new(
                    config.auth.sign_in_failures_per_account,
                    config.auth.sign_in_failures_per_address,
                ),
                oidc: crate::auth::oidc::Oidc::new(&config.auth, &session_secret),
            }),
            catalog: Arc::new(Catalog::new(
                store.clone(),
                storage.clone(),
                Duration::from_secs(config.delivery.listener_idle_seconds),
            )),
            queue,
            outbox,
            objects: crate::objects::cache(config.delivery.cache_bytes),
            metrics,
            shutdown,
            ingest_url: match config.live.ingest_url.trim_end_matches('/') {
                "" => public_url.clone(),
                url => url.to_string(),
            },
            public_url,
            store,
            storage,
            config,
        };
        Ok(Server {
            app: Arc::new(app),
            package_options,
            listener,
            https,
            dev_api_key,
            nofile,
            limits,
        })
    }

    /// How HTTP/3 is served, for the banner.
    fn h3_note(&self) -> &'static str {
        #[cfg(feature = "http3")]
        if self.https.as_ref().is_some_and(|h| h.h3.is_some()) {
            return ", HTTP/3 on the same port over UDP";
        }
        ""
    }

    /// The shared state (for in-process tests).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The start-up banner: where to go and how.
    pub fn banner(&self) -> String {
        let url = &self.app.public_url;
        let mut s = format!("Veza Stream listening on {url}\n");
        if let Some(h) = &self.https {
            if let Ok(at) = h.listener.local_addr() {
                s += &format!(
                    "  HTTPS: https://{at} (HTTP/1.1 and HTTP/2){}\n",
                    self.h3_note()
                );
                s += &format!("  TLS certificate SHA-256: {}\n", h.certs.fingerprint());
            }
        }
        s += &format!("  WebRTC (WHEP): udp {}\n", self.app.webrtc.local_addr());
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
        let worker = Arc::new(Worker {
            store: app.store.clone(),
            storage: app.storage.clone(),
            queue: app.queue.clone(),
            catalog: app.catalog.clone(),
            metrics: app.metrics.clone(),
            config: app.config.jobs.clone(),
            options: self.package_options,
            shutdown: app.shutdown.clone(),
        });
        for n in 0..workers {
            tasks.spawn(crate::jobs::worker(worker.clone(), n));
        }
        tasks.spawn(crate::sweep::sweeper(Sweeper {
            store: app.store.clone(),
            storage: app.storage.clone(),
            catalog: app.catalog.clone(),
            auth: app.auth.clone(),
            metrics: app.metrics.clone(),
            limits: app.config.limits.clone(),
            stats_retention_days: app.config.live.stats_retention_days,
            shutdown: app.shutdown.clone(),
        }));
        tasks.spawn(crate::dispatch::dispatcher(Dispatcher {
            store: app.store.clone(),
            outbox: app.outbox.clone(),
            config: app.config.events.clone(),
            metrics: app.metrics.clone(),
            shutdown: app.shutdown.clone(),
        }));
        let auth = &app.config.auth;
        if !auth.jwt_jwks_url.is_empty() {
            tasks.spawn(crate::auth::jwks_refresher(
                app.auth.jwt.clone(),
                auth.jwt_jwks_url.clone(),
                Duration::from_secs(auth.jwt_jwks_refresh_seconds),
                app.shutdown.clone(),
            ));
        }
        let shutdown = app.shutdown.clone();
        tokio::spawn(signals(shutdown.clone()));
        let router = crate::http::router(app.clone());
        let grace = Duration::from_secs(app.config.server.shutdown_grace_seconds);
        let limits = self.limits;
        tracing::info!(
            max_connections = limits.max,
            per_ip = limits.per_ip,
            descriptors = self.nofile,
            "accepting"
        );
        tasks.spawn(crate::live::supervisor(app.live.clone()));
        tasks.spawn(
            app.cluster
                .clone()
                .run(app.store.clone(), app.shutdown.clone()),
        );
        if app.cluster.shared() {
            // Every channel this node runs tells the followers on the other nodes.
            let relay = app.clone();
            app.live.on_start(Box::new(move |ch| {
                tokio::spawn(crate::http::relay_channel(relay.clone(), ch.clone()));
            }));
        }
        // Shows a crash interrupted are published once, from what was received.
        let recorders = app.live.recorders.clone();
        tasks.spawn(async move { recorders.recover().await });
        let ingest = Arc::new(crate::icecast::Ingest {
            live: app.live.clone(),
            auth: app.auth.clone(),
            metrics: app.metrics.clone(),
            source_timeout: Duration::from_secs_f64(app.config.live.source_timeout_seconds),
        });
        // Channels with a relay_url take their source from another server's stream.
        tasks.spawn(crate::icecast::relay::supervise(
            ingest.clone(),
            app.shutdown.clone(),
        ));
        // Icecast sources, on the plain listener and (HTTP/1.1) on the HTTPS one.
        let takeover = crate::listen::Takeover {
            sniff: crate::icecast::sniff,
            serve: Arc::new(move |stream, addr| {
                Box::pin(crate::icecast::serve(ingest.clone(), stream, addr))
            }),
        };
        let mut served = vec![tokio::spawn(crate::listen::serve(
            self.listener,
            router.clone(),
            crate::listen::Extra::Takeover(takeover.clone()),
            limits,
            shutdown.clone(),
            grace,
        ))];
        if let Some(https) = self.https {
            if let Some(at) = https.certs.not_after() {
                app.metrics.set_tls_expiry(at);
            }
            tokio::spawn(reload_on_hangup(
                https.certs.clone(),
                app.metrics.clone(),
                shutdown.clone(),
            ));
            #[allow(unused_mut)]
            let mut alt_svc = None;
            #[cfg(feature = "http3")]
            if let Some(h3) = https.h3 {
                let port = h3.local_addr()?.port();
                alt_svc =
                    axum::http::HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400")).ok();
                served.push(tokio::spawn(h3.serve(
                    router.clone(),
                    limits,
                    shutdown.clone(),
                    grace,
                )));
            }
            let tls = crate::listen::Tls {
                acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(
                    https.certs.server_config(&crate::tls::ALPN_TCP),
                )),
                alt_svc,
                takeover: Some(takeover),
            };
            served.push(tokio::spawn(crate::listen::serve(
                https.listener,
                router,
                crate::listen::Extra::Tls(tls),
                limits,
                shutdown.clone(),
                grace,
            )));
        }
        shutdown.cancelled().await;
        tracing::info!("shutting down: draining requests and releasing jobs");
        let drained = futures::future::join_all(served);
        if tokio::time::timeout(grace + Duration::from_secs(1), drained)
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

/// The connection bounds of every listener, from `[server]` and the descriptor limit.
fn limits(server: &crate::config::Server, nofile: u64) -> crate::listen::Limits {
    let (max, per_ip) = crate::listen::Limits::sized_for(nofile);
    crate::listen::Limits {
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
        streams: server.max_concurrent_streams,
        header_bytes: server.max_header_bytes,
    }
}

/// SIGHUP reads the certificate files again; new handshakes get the new certificate, open
/// connections keep theirs.
async fn reload_on_hangup(
    certs: Arc<crate::tls::Certs>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => match certs.reload() {
                Ok(()) => {
                    if let Some(at) = certs.not_after() {
                        metrics.set_tls_expiry(at);
                    }
                    tracing::info!(sha256 = %certs.fingerprint(), "TLS certificate reloaded")
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "TLS certificate not reloaded; the old one stays"),
            },
            _ = shutdown.cancelled() => return,
        }
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

/// This node's id in channel leases when `live.node_id` is not set: a random id kept in
/// `data_dir/node-id`, with the node's public URL. A node restarted after a crash (kill -9, no
/// lease released) is the same node, holds its channels' leases still and takes them back at
/// once, instead of redirecting to itself until they expire. Two nodes sharing a data directory
/// have different URLs, so they stay two nodes.
fn node_identity(data_dir: &std::path::Path, public_url: &str) -> anyhow::Result<String> {
    use sha2::Digest;
    let path = data_dir.join("node-id");
    let kept = match std::fs::read_to_string(&path) {
        Ok(id) => id.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let random = if kept.is_empty() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        crate::util::write_private(&path, format!("{id}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        id
    } else {
        kept
    };
    let digest = sha2::Sha256::digest(format!("{random} {public_url}").as_bytes());
    Ok(format!("node-{}", crate::util::hex(&digest[..8])))
}

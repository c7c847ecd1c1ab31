//! The sections of [`Config`](super::Config), each with its defaults.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL put in playback URLs; empty means `http://<listen>`.
    pub public_url: String,
    /// Directory for local state: the development secrets file.
    pub data_dir: PathBuf,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Origins allowed by CORS; `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// From a request's first byte to its complete head.
    pub header_timeout_seconds: f64,
    /// A request body that sends nothing for this long fails.
    pub body_idle_timeout_seconds: f64,
    /// A connection with no request in flight closes after this long without a byte.
    pub keepalive_idle_seconds: f64,
    /// Connections at once; 0 sizes it from the descriptor limit.
    pub max_connections: usize,
    /// Connections at once from one client address; 0 sizes it from the descriptor limit.
    pub max_connections_per_ip: usize,
    /// `"dev"`: HTTPS with a self-signed certificate for localhost, made once and kept in
    /// `data_dir`. Empty: HTTPS only when `tls_cert_file` is set.
    pub tls: String,
    /// PEM certificate chain of the HTTPS listener, read again on SIGHUP.
    pub tls_cert_file: String,
    /// PEM private key of `tls_cert_file`, read again on SIGHUP.
    pub tls_key_file: String,
    /// Address of the HTTPS listener: TCP for HTTP/1.1 and HTTP/2, and UDP for HTTP/3.
    pub tls_listen: SocketAddr,
    /// HTTP/3 on `tls_listen`'s port (when HTTPS is on and the `http3` feature is built in).
    pub http3: bool,
    /// Concurrent requests (streams) on one HTTP/2 or HTTP/3 connection.
    pub max_concurrent_streams: u32,
    /// Largest request head (request line and headers, or its HTTP/2 and HTTP/3 field section).
    pub max_header_bytes: u32,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            data_dir: PathBuf::from("./data"),
            max_upload_bytes: 2 << 30,
            cors_origins: vec!["*".into()],
            shutdown_grace_seconds: 30,
            header_timeout_seconds: 10.0,
            body_idle_timeout_seconds: 30.0,
            keepalive_idle_seconds: 60.0,
            max_connections: 0,
            max_connections_per_ip: 0,
            tls: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http3: true,
            max_concurrent_streams: 100,
            max_header_bytes: 64 << 10,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// `sqlite://path` (embedded) or `postgres://…` (external).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: "sqlite://./data/veza.db".into(),
            max_connections: 8,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// `local` or `s3`.
    pub backend: String,
    /// Root directory of the local backend.
    pub path: PathBuf,
    /// S3 endpoint URL; empty means AWS.
    pub s3_endpoint: String,
    /// S3 bucket.
    pub s3_bucket: String,
    /// S3 region.
    pub s3_region: String,
    /// S3 access key id; empty means the usual AWS environment and instance credentials.
    pub s3_access_key_id: String,
    /// S3 secret access key.
    pub s3_secret_access_key: String,
    /// Allow a plain-HTTP endpoint (local S3-compatible servers).
    pub s3_allow_http: bool,
    /// Retries of one failed S3 request before the operation fails (and a job attempt with it).
    pub s3_max_retries: usize,
    /// How long one S3 request is retried for, at most.
    pub s3_retry_timeout_seconds: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            backend: "local".into(),
            path: PathBuf::from("./data/media"),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            s3_max_retries: 10,
            s3_retry_timeout_seconds: 180,
        }
    }
}

/// One playback-token key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackKey {
    /// Key id, carried in every token: letters, digits, `_` and `-`.
    pub id: String,
    /// The HMAC secret, at least 32 bytes.
    pub secret: String,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Service API keys for the control API. Empty: a development key is generated, stored in
    /// `server.data_dir` and printed at start-up.
    pub api_keys: Vec<String>,
    /// Keys that verify playback tokens. Empty: a development key is generated like the API key.
    pub playback_keys: Vec<PlaybackKey>,
    /// The id of the key that signs new tokens; empty means the first key.
    pub playback_signing_key: String,
    /// Lifetime of a playback token.
    pub playback_ttl_seconds: u64,
    /// Lifetime of the playback token a public page gets without sign-in, past the end of the
    /// track or playlist it plays (a channel's page asks again before it runs out).
    pub public_playback_ttl_seconds: u64,
    /// Shared secret for HS256 JWTs. Empty, with no other JWT key configured: a development secret
    /// is generated like the API key, and `veza-stream token create` signs with it.
    pub jwt_hs256_secret: String,
    /// PEM file with the RS256 or ES256 public key of the token issuer.
    pub jwt_public_key_file: String,
    /// JWKS file (RFC 7517) with the issuer's RS256/ES256 keys.
    pub jwt_jwks_file: String,
    /// JWKS URL, such as Keycloak's `/realms/<realm>/protocol/openid-connect/certs`.
    pub jwt_jwks_url: String,
    /// How often the JWKS URL is fetched again.
    pub jwt_jwks_refresh_seconds: u64,
    /// Required `iss`; empty: not checked.
    pub jwt_issuer: String,
    /// Required `aud`; empty: not checked.
    pub jwt_audience: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway_seconds: u64,
    /// Claim holding the role: a dotted path (`realm_access.roles` for Keycloak) to a string or an
    /// array of strings. The strongest of `admin`, `artist`, `listener` found wins.
    pub jwt_role_claim: String,
    /// Who may make a local account at `POST /v1/accounts`: `open` (anyone), `invite` (with an
    /// admin's invitation code) or `closed`. Empty: `open` on embedded defaults (no
    /// `auth.api_keys`), where the first account becomes admin, and `closed` otherwise.
    pub registration: String,
    /// The role of a new local account: `listener` or `artist`.
    pub registration_role: String,
    /// HS256 key (at least 32 bytes) of the JWTs handed out at sign-in. Empty: one is generated
    /// and kept in `server.data_dir`; set it when several nodes share the accounts.
    pub session_secret: String,
    /// How long a sign-in session lasts.
    pub session_days: u64,
    /// Lifetime of the JWT handed out at sign-in.
    pub account_token_seconds: u64,
    /// Failed sign-ins allowed in a burst for one email; then one a minute.
    pub sign_in_failures_per_account: u32,
    /// Failed sign-ins allowed in a burst from one client address; then one every 15 s.
    pub sign_in_failures_per_address: u32,
    /// OpenID Connect sign-in: the provider's issuer URL (Keycloak
    /// `https://id.example/realms/<realm>`, `https://accounts.google.com`, Authentik's
    /// `https://auth.example/application/o/<slug>/`). Empty: off.
    pub oidc_issuer: String,
    /// The client id registered at the provider.
    pub oidc_client_id: String,
    /// The client's secret (a confidential client; PKCE is used as well).
    pub oidc_client_secret: String,
    /// What the sign-in button names: "Sign in with …".
    pub oidc_name: String,
    /// Scopes asked for.
    pub oidc_scopes: String,
    /// Claim of the ID token holding the role: a dotted path to a string or an array of
    /// strings (`realm_access.roles` for Keycloak). The strongest of admin, artist, listener
    /// wins; none: `oidc_default_role`.
    pub oidc_role_claim: String,
    /// The role of a person whose token names none: `listener` or `artist`.
    pub oidc_default_role: String,
}

impl Auth {
    /// The registration policy in force: `open`, `invite` or `closed` (see
    /// [`Auth::registration`]); `embedded` says whether the server runs on embedded defaults.
    pub fn registration(&self, embedded: bool) -> &str {
        match self.registration.as_str() {
            "" if embedded => "open",
            "" => "closed",
            other => other,
        }
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            api_keys: Vec::new(),
            playback_keys: Vec::new(),
            playback_signing_key: String::new(),
            playback_ttl_seconds: 6 * 3600,
            public_playback_ttl_seconds: 600,
            jwt_hs256_secret: String::new(),
            jwt_public_key_file: String::new(),
            jwt_jwks_file: String::new(),
            jwt_jwks_url: String::new(),
            jwt_jwks_refresh_seconds: 300,
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_leeway_seconds: 60,
            jwt_role_claim: "role".into(),
            registration: String::new(),
            registration_role: "artist".into(),
            session_secret: String::new(),
            session_days: 30,
            account_token_seconds: 3600,
            sign_in_failures_per_account: 5,
            sign_in_failures_per_address: 20,
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_client_secret: String::new(),
            oidc_name: "single sign-on".into(),
            oidc_scopes: "openid email profile".into(),
            oidc_role_claim: "role".into(),
            oidc_default_role: "listener".into(),
        }
    }
}

/// `[jobs]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jobs {
    /// Concurrent transcodes on this node; 0 means one per core.
    pub workers: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease_seconds: u64,
    /// Attempts before a job is failed for good.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each further one.
    pub retry_backoff_seconds: u64,
    /// Test-only fault injection: `""` (none) or `"encoder-panic"` (every lossy encoder thread
    /// panics), so the tests can show that a panic is retried and keeps the original.
    pub fault: String,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            workers: 0,
            lease_seconds: 30,
            max_attempts: 3,
            retry_backoff_seconds: 5,
            fault: String::new(),
        }
    }
}

/// `[packaging]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Packaging {
    /// The ladder: `opus-<kbps>`, `aac-<kbps>`, `flac`.
    pub renditions: Vec<String>,
    /// VOD segment length target.
    pub segment_seconds: f64,
    /// Normalise lossy renditions to -14 LUFS.
    pub normalize: bool,
}

impl Default for Packaging {
    fn default() -> Self {
        Packaging {
            renditions: vec!["opus-96".into(), "aac-128".into(), "flac".into()],
            segment_seconds: 6.0,
            normalize: true,
        }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Bytes of hot segments kept in memory.
    pub cache_bytes: u64,
    /// `max-age` of VOD playlists.
    pub playlist_max_age_seconds: u64,
    /// A listener not seen for this long no longer counts.
    pub listener_idle_seconds: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            cache_bytes: 256 << 20,
            playlist_max_age_seconds: 10,
            listener_idle_seconds: 60,
        }
    }
}

/// `[live]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Live {
    /// A source that sends no bytes for this long is dropped.
    pub source_timeout_seconds: f64,
    /// How far ahead of real time a source may send before its reads stop and TCP holds it
    /// back (a file sent without pacing, a burst after a stall).
    pub lead_seconds: f64,
    /// Length of the PCM crossfade when sources switch (live takeover, back to the auto-DJ).
    pub crossfade_seconds: f64,
    /// Seconds of parts and segments each rendition keeps (the DVR window).
    pub dvr_seconds: u64,
    /// Renditions of a channel created without any: encoded once each.
    pub renditions: Vec<String>,
    /// How long a node's lease of a channel lasts; it is renewed at a third of this.
    pub lease_seconds: u64,
    /// This node's id in channel leases; empty: one made from a random id kept in
    /// `data_dir/node-id` and the public URL, so that a restarted node takes its leases back at
    /// once.
    pub node_id: String,
    /// Encoded frames a push consumer (a WebRTC session) may have queued before it is dropped.
    pub consumer_queue_frames: usize,
    /// The one UDP address every WebRTC session uses (ICE, DTLS, SRTP).
    pub webrtc_udp: String,
    /// Addresses written as host candidates in WebRTC answers, for NAT and 1:1 public IPs
    /// (`IP` or `IP:PORT`); empty: every address of this host's interfaces, on the bound port.
    pub webrtc_advertise: Vec<String>,
    /// WebRTC sessions (WHEP listeners and WHIP publishers) this node holds at once. At most a
    /// quarter of them may be connecting (not yet through ICE and DTLS): connected listeners
    /// keep the rest.
    pub max_webrtc_sessions: usize,
    /// WebRTC sessions one client address may have connecting at once; past it, 429.
    pub max_connecting_per_client: usize,
    /// WebRTC sessions one credential (a playback token, a stream key) may have connecting at
    /// once; past it, 429.
    pub max_connecting_per_credential: usize,
    /// STUN/TURN URLs announced in `Link` headers of WHEP/WHIP answers
    /// (`stun:host:port`, `turn:host:port?transport=udp`).
    pub ice_servers: Vec<String>,
    /// A session whose ICE and DTLS have not completed this long after its POST is freed.
    pub webrtc_connect_timeout_seconds: f64,
    /// A connected session that hears no ICE consent check for this long is ended (RFC 7675
    /// uses 30 s).
    pub webrtc_consent_timeout_seconds: f64,
    /// Base URL of the Icecast ingest URLs channels show (`https://host:8443` for sources over
    /// TLS, `http://host:8080` when `server.public_url` names a CDN); empty: `server.public_url`.
    pub ingest_url: String,
    /// Bitrate of the MP3 mounts (`/listen/{channel}.mp3`), kb/s: one of 32, 40, 48, 56, 64,
    /// 80, 96, 112, 128, 160, 192, 224, 256, 320.
    pub mp3_bitrate_kbps: u32,
    /// Bytes a new progressive listener is sent at once (burst-on-connect), from a frame
    /// boundary.
    pub burst_bytes: usize,
    /// Bytes a progressive listener may fall behind before it is cut off (and counted).
    pub listener_queue_bytes: usize,
    /// Progressive listeners this node serves at once, all mounts together; past it, 503.
    pub max_listeners: usize,
    /// Progressive listeners of one channel at once; 0: only `max_listeners` applies.
    pub max_listeners_per_channel: usize,
    /// Icecast-style URL authentication of a private channel's listeners who bring no token:
    /// a form POST (`action=listener_add`, `mount` with the query, `ip`, `agent`, …) whose
    /// `200` with `icecast-auth-user: 1` admits. Empty: off.
    pub listener_auth_url: String,
    /// A recorded live show longer than this goes on in a new recording (and track).
    pub record_max_seconds: u64,
    /// Listener statistics and song history older than this many days are deleted.
    pub stats_retention_days: u64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            source_timeout_seconds: 5.0,
            lead_seconds: 3.0,
            crossfade_seconds: 0.5,
            dvr_seconds: 300,
            renditions: vec!["aac-128".into(), "opus-128".into()],
            lease_seconds: 10,
            node_id: String::new(),
            consumer_queue_frames: 50,
            webrtc_udp: "0.0.0.0:8189".into(),
            webrtc_advertise: Vec::new(),
            max_webrtc_sessions: 2000,
            max_connecting_per_client: 16,
            max_connecting_per_credential: 4,
            ice_servers: Vec::new(),
            webrtc_connect_timeout_seconds: 10.0,
            webrtc_consent_timeout_seconds: 30.0,
            ingest_url: String::new(),
            mp3_bitrate_kbps: 128,
            burst_bytes: 64 << 10,
            listener_queue_bytes: 500 << 10,
            max_listeners: 20_000,
            max_listeners_per_channel: 0,
            listener_auth_url: String::new(),
            record_max_seconds: 6 * 3600,
            stats_retention_days: 400,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `veza_stream=debug,info`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// `[telemetry]`: OpenTelemetry traces over OTLP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// The OTLP receiver, such as `http://collector:4318` (HTTP) or `http://collector:4317`
    /// (gRPC); empty turns exporting off. Logs carry trace and span ids either way.
    pub otlp_endpoint: String,
    /// `http/protobuf` or `grpc`.
    pub otlp_protocol: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces recorded, in [0, 1]; a caller's sampling decision is followed.
    pub sample_ratio: f64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            otlp_endpoint: String::new(),
            otlp_protocol: "http/protobuf".into(),
            service_name: "veza-stream".into(),
            sample_ratio: 1.0,
        }
    }
}

/// `[redis]`: what several nodes share. Optional: a single node needs nothing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// `redis://[:password@]host:6379/0` (or `rediss://`); empty: every node decides alone.
    pub url: String,
    /// Prefix of every key and channel this server uses.
    pub prefix: String,
    /// How long a Redis call may take before the node decides alone (milliseconds).
    pub timeout_ms: u64,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: String::new(),
            prefix: "veza:".into(),
            timeout_ms: 100,
        }
    }
}

/// `[limits]`: request rates on the control API (`/v1`), as token buckets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests per minute per authenticated subject; 0 turns the limit off.
    pub per_subject_per_minute: u32,
    /// Requests per minute per client IP address; 0 turns the limit off.
    pub per_ip_per_minute: u32,
    /// Requests allowed at once above the steady rate.
    pub burst: u32,
    /// Wrong stream keys (Icecast sources, WHIP, `/admin/metadata`) a client address may send
    /// per minute; past it, the address is refused with 429 until its budget refills. 0 turns
    /// the limit off.
    pub stream_key_failures_per_minute: u32,
    /// Lifetime of idempotency keys.
    pub idempotency_ttl_seconds: u64,
    /// Lifetime of an unfinished resumable upload.
    pub upload_expiration_seconds: u64,
    /// Most channels an uploaded source may have (more are refused before decoding).
    pub max_channels: usize,
    /// Longest audio an uploaded source may declare or decode to, in seconds.
    pub max_duration_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_subject_per_minute: 6000,
            per_ip_per_minute: 12000,
            burst: 200,
            stream_key_failures_per_minute: 10,
            idempotency_ttl_seconds: 86400,
            upload_expiration_seconds: 86400,
            max_channels: 32,
            max_duration_seconds: 6.0 * 3600.0,
        }
    }
}

/// One webhook endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where events are POSTed.
    pub url: String,
    /// The HMAC-SHA256 secret the receiver verifies with (at least 16 bytes).
    pub secret: String,
}

/// `[events]`: where outbox events go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    /// Webhook endpoints.
    pub webhooks: Vec<Webhook>,
    /// AMQP 0-9-1 broker (RabbitMQ) URL, `amqp://user:pass@host:5672/vhost`; empty: none.
    pub amqp_url: String,
    /// Topic exchange the events are published to, with the event type as routing key.
    pub amqp_exchange: String,
    /// A durable queue declared and bound to every event type, so that events wait for a consumer
    /// that has never connected; empty: none.
    pub amqp_queue: String,
    /// Delivery attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// Backoff before the first retry, doubled for each further one.
    pub retry_backoff_ms: u64,
    /// Longest backoff.
    pub retry_backoff_max_ms: u64,
    /// Timeout of one webhook request.
    pub timeout_ms: u64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            webhooks: Vec::new(),
            amqp_url: String::new(),
            amqp_exchange: "veza.events".into(),
            amqp_queue: String::new(),
            max_attempts: 12,
            retry_backoff_ms: 1000,
            retry_backoff_max_ms: 300_000,
            timeout_ms: 10_000,
        }
    }
}

//! `config`: the server's configuration as plain data.
//!
//! One [`Config`] of nested sections. Every key has a default, so `veza-stream serve` runs with no
//! file at all; `config/default.toml` lists every key with its default. Values come from, in
//! increasing precedence: the defaults, the file given with `--config`, and environment variables
//! named `VEZA_<SECTION>__<KEY>` (for example `VEZA_SERVER__LISTEN=0.0.0.0:8080`). Environment
//! values are parsed as TOML values (numbers, booleans, arrays) and fall back to plain strings.
//!
//! [`Config::load`] validates everything once and names the offending key in its error.

mod sections;

pub use sections::*;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listener and request limits.
    pub server: Server,
    /// The metadata store.
    pub database: Database,
    /// Object storage for originals and packaged media.
    pub storage: Storage,
    /// API keys and playback-token keys.
    pub auth: Auth,
    /// Transcode workers.
    pub jobs: Jobs,
    /// What the workers produce.
    pub packaging: Packaging,
    /// HLS delivery.
    pub delivery: Delivery,
    /// Live channels.
    pub live: Live,
    /// Logging.
    pub log: Log,
    /// Traces.
    pub telemetry: Telemetry,
    /// What several nodes share.
    pub redis: Redis,
    /// `[limits]`
    pub limits: Limits,
    /// `[events]`
    pub events: Events,
}

/// A configuration error; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct Error(pub String);

impl Config {
    /// Builds the configuration from an optional TOML text and `VEZA_*` variables, then validates it.
    pub fn load(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Error> {
        let mut table: toml::Table = match file {
            Some(text) => text
                .parse()
                .map_err(|e: toml::de::Error| Error(e.to_string()))?,
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(path) = name.strip_prefix("VEZA_") else {
                continue;
            };
            let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            if keys.len() != 2 || keys.iter().any(|k| k.is_empty()) {
                return Err(Error(format!(
                    "{name}: expected VEZA_<SECTION>__<KEY>, for example VEZA_SERVER__LISTEN"
                )));
            }
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let section = table
                .entry(keys[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section {
                toml::Value::Table(t) => {
                    t.insert(keys[1].clone(), parsed);
                }
                _ => return Err(Error(format!("{}: not a section", keys[0]))),
            }
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| Error(format!("{}: {}", e.path(), e.inner())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error(format!("{key}: {why}")));
        if !["", "encoder-panic"].contains(&self.jobs.fault.as_str()) {
            return bad(
                "jobs.fault",
                "must be \"\" or \"encoder-panic\" (a test switch)",
            );
        }
        let live = &self.live;
        if !(live.source_timeout_seconds > 0.0 && live.source_timeout_seconds <= 3600.0) {
            return bad("live.source_timeout_seconds", "must be in (0, 3600]");
        }
        if !(live.lead_seconds >= 0.0 && live.lead_seconds <= 60.0) {
            return bad("live.lead_seconds", "must be in [0, 60]");
        }
        if !(0.0..=10.0).contains(&live.crossfade_seconds) {
            return bad("live.crossfade_seconds", "must be in [0, 10]");
        }
        if !(10..=86_400).contains(&live.dvr_seconds) {
            return bad("live.dvr_seconds", "must be in [10, 86400]");
        }
        if live.lease_seconds < 3 {
            return bad("live.lease_seconds", "must be at least 3");
        }
        if live.webrtc_udp.parse::<std::net::SocketAddr>().is_err() {
            return bad("live.webrtc_udp", "must be an IP:PORT address");
        }
        for a in &live.webrtc_advertise {
            if a.parse::<std::net::IpAddr>().is_err() && a.parse::<std::net::SocketAddr>().is_err()
            {
                return bad(
                    "live.webrtc_advertise",
                    "each entry must be an IP or IP:PORT",
                );
            }
        }
        if live.max_connecting_per_client == 0 {
            return bad("live.max_connecting_per_client", "must be positive");
        }
        if live.max_connecting_per_credential == 0 {
            return bad("live.max_connecting_per_credential", "must be positive");
        }
        if live.max_webrtc_sessions == 0 {
            return bad("live.max_webrtc_sessions", "must be positive");
        }
        if !(0.5..=300.0).contains(&live.webrtc_connect_timeout_seconds) {
            return bad(
                "live.webrtc_connect_timeout_seconds",
                "must be in [0.5, 300]",
            );
        }
        if !(1.0..=300.0).contains(&live.webrtc_consent_timeout_seconds) {
            return bad("live.webrtc_consent_timeout_seconds", "must be in [1, 300]");
        }
        for url in &live.ice_servers {
            let scheme = url.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns")
                || url.contains(['<', '>', '"', ','])
            {
                return bad(
                    "live.ice_servers",
                    "each entry must be a stun:, stuns:, turn: or turns: URL",
                );
            }
        }
        if live.consumer_queue_frames == 0 {
            return bad("live.consumer_queue_frames", "must be positive");
        }
        if live.renditions.is_empty() {
            return bad("live.renditions", "needs at least one rendition");
        }
        // Each name is checked against the live encoders when the server loads
        // (`Rendition::parse_live`), which this plain-data module does not depend on.
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad("server.public_url", "must start with http:// or https://");
        }
        if live.record_max_seconds < 5 {
            return bad("live.record_max_seconds", "must be at least 5");
        }
        if live.stats_retention_days == 0 {
            return bad("live.stats_retention_days", "must be at least 1");
        }
        let auth = &live.listener_auth_url;
        if !(auth.is_empty() || auth.starts_with("http://") || auth.starts_with("https://")) {
            return bad(
                "live.listener_auth_url",
                "must be empty or start with http:// or https://",
            );
        }
        if !veza_codecs::MP3_BITRATES.contains(&live.mp3_bitrate_kbps) {
            return bad(
                "live.mp3_bitrate_kbps",
                "must be an MPEG-1 Layer III bitrate: 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256 or 320",
            );
        }
        if live.listener_queue_bytes < 16 << 10 || live.burst_bytes > live.listener_queue_bytes {
            return bad(
                "live.listener_queue_bytes",
                "must be at least 16384, and at least live.burst_bytes",
            );
        }
        let url = &live.ingest_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return bad("live.ingest_url", "must start with http:// or https://");
        }
        if self.server.max_upload_bytes == 0 {
            return bad("server.max_upload_bytes", "must be positive");
        }
        if self.server.cors_origins.iter().any(|o| {
            o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')
        }) {
            return bad(
                "server.cors_origins",
                "each origin is \"*\" or scheme://host[:port] with no trailing slash",
            );
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return bad("database.url", "must start with sqlite: or postgres://");
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be positive");
        }
        match self.storage.backend.as_str() {
            "local" => {}
            "s3" => {
                if self.storage.s3_bucket.is_empty() {
                    return bad(
                        "storage.s3_bucket",
                        "is required when storage.backend = \"s3\"",
                    );
                }
            }
            _ => return bad("storage.backend", "must be \"local\" or \"s3\""),
        }
        if self.auth.api_keys.iter().any(|k| k.len() < 16) {
            return bad("auth.api_keys", "every key must be at least 16 characters");
        }
        for k in &self.auth.playback_keys {
            if k.id.is_empty()
                || !k
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return bad("auth.playback_keys.id", "use letters, digits, '_' and '-'");
            }
            if k.secret.len() < 32 {
                return bad("auth.playback_keys.secret", "must be at least 32 bytes");
            }
        }
        if !self.auth.playback_signing_key.is_empty()
            && !self
                .auth
                .playback_keys
                .iter()
                .any(|k| k.id == self.auth.playback_signing_key)
        {
            return bad(
                "auth.playback_signing_key",
                "names no key in auth.playback_keys",
            );
        }
        if self.auth.playback_ttl_seconds == 0 {
            return bad("auth.playback_ttl_seconds", "must be positive");
        }
        let server = &self.server;
        let (cert, key) = (
            !server.tls_cert_file.is_empty(),
            !server.tls_key_file.is_empty(),
        );
        if !["", "dev"].contains(&server.tls.as_str()) {
            return bad("server.tls", "must be \"\" or \"dev\"");
        }
        if cert != key {
            return bad(
                "server.tls_key_file",
                "tls_cert_file and tls_key_file go together",
            );
        }
        if server.tls == "dev" && cert {
            return bad(
                "server.tls",
                "\"dev\" makes its own certificate: leave tls_cert_file and tls_key_file empty",
            );
        }
        if self.server.max_concurrent_streams == 0 {
            return bad("server.max_concurrent_streams", "must be positive");
        }
        if self.server.max_header_bytes < 1024 {
            return bad("server.max_header_bytes", "must be at least 1024");
        }
        if self.auth.public_playback_ttl_seconds == 0 {
            return bad("auth.public_playback_ttl_seconds", "must be positive");
        }
        let jwt_sources = [
            &self.auth.jwt_public_key_file,
            &self.auth.jwt_jwks_file,
            &self.auth.jwt_jwks_url,
        ];
        if jwt_sources.iter().filter(|s| !s.is_empty()).count() > 1 {
            return bad(
                "auth.jwt_public_key_file",
                "set at most one of jwt_public_key_file, jwt_jwks_file and jwt_jwks_url",
            );
        }
        if !self.auth.jwt_hs256_secret.is_empty() && self.auth.jwt_hs256_secret.len() < 32 {
            return bad("auth.jwt_hs256_secret", "must be at least 32 bytes");
        }
        if !(self.auth.jwt_jwks_url.is_empty()
            || self.auth.jwt_jwks_url.starts_with("http://")
            || self.auth.jwt_jwks_url.starts_with("https://"))
        {
            return bad("auth.jwt_jwks_url", "must start with http:// or https://");
        }
        if !["", "open", "invite", "closed"].contains(&self.auth.registration.as_str()) {
            return bad("auth.registration", "must be open, invite or closed");
        }
        if !["listener", "artist"].contains(&self.auth.registration_role.as_str()) {
            return bad("auth.registration_role", "must be listener or artist");
        }
        if !self.auth.session_secret.is_empty() && self.auth.session_secret.len() < 32 {
            return bad("auth.session_secret", "must be at least 32 bytes");
        }
        if !(1..=3650).contains(&self.auth.session_days) {
            return bad("auth.session_days", "must be 1 to 3650");
        }
        if !(60..=86_400).contains(&self.auth.account_token_seconds) {
            return bad("auth.account_token_seconds", "must be 60 to 86400");
        }
        if !self.auth.oidc_issuer.is_empty() {
            if !(self.auth.oidc_issuer.starts_with("https://")
                || self.auth.oidc_issuer.starts_with("http://"))
            {
                return bad("auth.oidc_issuer", "must start with https:// (or http://)");
            }
            if self.auth.oidc_client_id.is_empty() {
                return bad("auth.oidc_client_id", "must be set with auth.oidc_issuer");
            }
            if !self
                .auth
                .oidc_scopes
                .split_whitespace()
                .any(|s| s == "openid")
            {
                return bad("auth.oidc_scopes", "must include openid");
            }
            if !["listener", "artist"].contains(&self.auth.oidc_default_role.as_str()) {
                return bad("auth.oidc_default_role", "must be listener or artist");
            }
        }
        if self.auth.jwt_role_claim.is_empty() {
            return bad("auth.jwt_role_claim", "must name a claim");
        }
        for w in &self.events.webhooks {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return bad("events.webhooks.url", "must start with http:// or https://");
            }
            if w.secret.len() < 16 {
                return bad("events.webhooks.secret", "must be at least 16 bytes");
            }
        }
        if !(self.events.amqp_url.is_empty()
            || self.events.amqp_url.starts_with("amqp://")
            || self.events.amqp_url.starts_with("amqps://"))
        {
            return bad("events.amqp_url", "must start with amqp:// or amqps://");
        }
        if self.events.max_attempts == 0 {
            return bad("events.max_attempts", "must be at least 1");
        }
        if self.events.retry_backoff_ms == 0 || self.events.timeout_ms == 0 {
            return bad(
                "events.retry_backoff_ms",
                "backoff and timeout must be positive",
            );
        }
        for (key, v) in [
            (
                "server.header_timeout_seconds",
                self.server.header_timeout_seconds,
            ),
            (
                "server.body_idle_timeout_seconds",
                self.server.body_idle_timeout_seconds,
            ),
            (
                "server.keepalive_idle_seconds",
                self.server.keepalive_idle_seconds,
            ),
        ] {
            if !(v > 0.0 && v <= 3600.0) {
                return bad(key, "must be more than 0 and at most 3600 seconds");
            }
        }
        if self.limits.burst == 0 {
            return bad("limits.burst", "must be at least 1");
        }
        if !(1..=255).contains(&self.limits.max_channels) {
            return bad("limits.max_channels", "must be between 1 and 255");
        }
        if !(self.limits.max_duration_seconds > 0.0 && self.limits.max_duration_seconds <= 86_400.0)
        {
            return bad(
                "limits.max_duration_seconds",
                "must be more than 0 and at most 86400 (24 hours)",
            );
        }
        if self.jobs.lease_seconds < 2 {
            return bad("jobs.lease_seconds", "must be at least 2");
        }
        if self.jobs.max_attempts == 0 {
            return bad("jobs.max_attempts", "must be at least 1");
        }
        if self.packaging.renditions.is_empty() {
            return bad("packaging.renditions", "must list at least one rendition");
        }
        for r in &self.packaging.renditions {
            if let Err(e) = r.parse::<crate::package::Rendition>() {
                return bad("packaging.renditions", &e);
            }
        }
        if !(0.32..=60.0).contains(&self.packaging.segment_seconds) {
            return bad("packaging.segment_seconds", "must be between 0.32 and 60");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format", "must be \"text\" or \"json\"");
        }
        let r = &self.redis;
        let scheme = |url: &str, schemes: &[&str]| schemes.iter().any(|s| url.starts_with(s));
        if !r.url.is_empty() && !scheme(&r.url, &["redis://", "rediss://"]) {
            return bad("redis.url", "must be a redis:// or rediss:// URL");
        }
        if !(1..=10_000).contains(&r.timeout_ms) {
            return bad("redis.timeout_ms", "must be in [1, 10000]");
        }
        let t = &self.telemetry;
        if !matches!(t.otlp_protocol.as_str(), "http/protobuf" | "grpc") {
            return bad(
                "telemetry.otlp_protocol",
                "must be \"http/protobuf\" or \"grpc\"",
            );
        }
        if !t.otlp_endpoint.is_empty() && !scheme(&t.otlp_endpoint, &["http://", "https://"]) {
            return bad(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL",
            );
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return bad("telemetry.sample_ratio", "must be in [0, 1]");
        }
        if t.service_name.is_empty() {
            return bad("telemetry.service_name", "must not be empty");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "is not a valid tracing filter");
        }
        Ok(())
    }

    /// The base URL used in playback URLs.
    pub fn public_url(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://./data/veza.db");
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
    }

    /// Every `section.key` of a TOML document (arrays of tables are one key).
    fn keys(v: &toml::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    keys(v, &path, out);
                } else {
                    out.insert(path);
                }
            }
        }
    }

    #[test]
    fn the_shipped_default_file_is_the_defaults() {
        let text = include_str!("../../config/default.toml");
        let c = Config::load(Some(text), env(&[])).unwrap();
        let defaults = Config::load(None, env(&[])).unwrap();
        assert_eq!(format!("{c:?}"), format!("{defaults:?}"));
        // It lists every key: a section or key the file leaves out fails here.
        let (mut want, mut have) = (Default::default(), Default::default());
        keys(&toml::Value::try_from(&defaults).unwrap(), "", &mut want);
        keys(
            &toml::Value::Table(toml::from_str(text).unwrap()),
            "",
            &mut have,
        );
        let missing: Vec<_> = want.difference(&have).collect();
        assert!(missing.is_empty(), "config/default.toml lacks {missing:?}");
    }

    #[test]
    fn the_production_example_is_valid() {
        let text = include_str!("../../config/production.example.toml");
        let c = Config::load(Some(text), env(&[])).unwrap();
        assert_eq!(c.storage.backend, "s3");
        assert_eq!(c.auth.playback_signing_key, "2026-11");
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::load(
            Some("[server]\nlisten = \"127.0.0.1:1\"\n"),
            env(&[
                ("VEZA_SERVER__LISTEN", "127.0.0.1:2"),
                ("VEZA_JOBS__WORKERS", "3"),
                ("HOME", "/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 2);
        assert_eq!(c.jobs.workers, 3);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::load(Some("[server]\nlisen = 1\n"), env(&[])).unwrap_err();
        assert!(e.0.contains("lisen"), "{e}");
        let e = Config::load(None, env(&[("VEZA_SERVER__LISTEN", "nowhere")])).unwrap_err();
        assert!(e.0.starts_with("server.listen"), "{e}");
        let e = Config::load(None, env(&[("VEZA_STORAGE__BACKEND", "ftp")])).unwrap_err();
        assert!(e.0.starts_with("storage.backend"), "{e}");
        let e =
            Config::load(None, env(&[("VEZA_PACKAGING__RENDITIONS", "[\"mp3-1\"]")])).unwrap_err();
        assert!(e.0.starts_with("packaging.renditions"), "{e}");
        let e = Config::load(None, env(&[("VEZA_NOPE", "1")])).unwrap_err();
        assert!(e.0.starts_with("VEZA_NOPE"), "{e}");
        for (key, value, named) in [
            ("VEZA_REDIS__URL", "http://redis:6379", "redis.url"),
            ("VEZA_REDIS__TIMEOUT_MS", "0", "redis.timeout_ms"),
            (
                "VEZA_TELEMETRY__OTLP_ENDPOINT",
                "collector:4318",
                "telemetry.otlp_endpoint",
            ),
            (
                "VEZA_TELEMETRY__OTLP_PROTOCOL",
                "http/json",
                "telemetry.otlp_protocol",
            ),
            (
                "VEZA_TELEMETRY__SAMPLE_RATIO",
                "1.5",
                "telemetry.sample_ratio",
            ),
            (
                "VEZA_TELEMETRY__SERVICE_NAME",
                "\"\"",
                "telemetry.service_name",
            ),
        ] {
            let e = Config::load(None, env(&[(key, value)])).unwrap_err();
            assert!(e.0.starts_with(named), "{key}={value}: {e}");
        }
        let c = Config::load(
            None,
            env(&[
                ("VEZA_REDIS__URL", "rediss://:secret@redis:6380/2"),
                ("VEZA_TELEMETRY__OTLP_ENDPOINT", "https://collector:4317"),
                ("VEZA_TELEMETRY__OTLP_PROTOCOL", "grpc"),
                ("VEZA_TELEMETRY__SAMPLE_RATIO", "0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.redis.prefix, "veza:");
        assert_eq!(c.telemetry.sample_ratio, 0.1);
    }
}

//! `auth`: who calls the control API (service API keys and JWTs, see [`jwt`]), and signed playback
//! tokens for delivery.
//!
//! # Playback tokens
//!
//! A token is six fields joined by `.`:
//!
//! ```text
//! v1.<kid>.<scope>.<exp>.<sid>.<sig>
//! ```
//!
//! - `kid`: the id of the key that signed it (letters, digits, `_`, `-`);
//! - `scope`: what it opens, `track_<uuid>` or `playlist_<uuid>`, the UUID in 32 lowercase hex
//!   digits. A playlist's stitched playlists name their tracks' files with the playlist's own
//!   token, which opens the files of the tracks it plays (the files' URLs are the tracks' own, so
//!   segments stay shared between tracks and playlists in a CDN);
//! - `exp`: expiry, Unix seconds, decimal;
//! - `sid`: the listener session, 16 random bytes in unpadded base64url (22 characters);
//! - `sig`: unpadded base64url of HMAC-SHA256(key, `v1.<kid>.<scope>.<exp>.<sid>`), that is, of
//!   everything before the last `.`.
//!
//! A CDN edge holding the keys verifies one with no call to us: split on `.`, look up `kid`, compare
//! the HMAC in constant time, check `exp` against the clock and `scope` against the path. Several
//! keys verify; one signs, so keys rotate without breaking tokens already handed out.

pub mod accounts;
pub mod jwt;
mod limits;
pub mod oidc;
mod refresh;

pub use jwt::{Identity, Jwt, JwtError, Role};
pub use limits::Limiters;
pub use refresh::jwks_refresher;

use crate::config;
use crate::store::{ChannelId, PlaylistId, TrackId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// The auth part of the server's state: who may call the control API, how often, and the keys
/// of playback tokens.
pub struct Auth {
    /// Playback-token keys.
    pub tokens: Tokens,
    /// Control API keys.
    pub api_keys: ApiKeys,
    /// JWT verification (its JWKS kept fresh by [`jwks_refresher`]).
    pub jwt: std::sync::Arc<Jwt>,
    /// Request-rate limits of the control API.
    pub limits: Limiters,
    /// Refuses password guessing.
    pub guard: accounts::Guard,
    /// Sign-in with OpenID Connect, when a provider is configured.
    pub oidc: Option<oidc::Oidc>,
}

/// A signed playback: one listener session's token, its expiry and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playback {
    /// The token.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires: u64,
    /// The delivery URL of the scope, without a trailing slash.
    pub base: String,
}

impl Playback {
    /// The signed URL of `file` under the scope.
    pub fn url(&self, file: &str) -> String {
        format!("{}/{file}?token={}", self.base, self.token)
    }
}

/// Why a playback token was refused. Every variant answers 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No `token` query parameter.
    #[error("a playback token is required")]
    Missing,
    /// Not six well-formed fields.
    #[error("the playback token is malformed")]
    Malformed,
    /// Signed by a key this server does not hold (unknown or retired).
    #[error("the playback token's key is unknown or retired")]
    UnknownKey,
    /// The signature does not match: the token was altered.
    #[error("the playback token's signature does not match")]
    BadSignature,
    /// Past its expiry.
    #[error("the playback token has expired")]
    Expired,
    /// Valid, but for something else.
    #[error("the playback token is for another track or playlist")]
    WrongScope,
}

/// What a playback token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One track's files.
    Track(TrackId),
    /// One playlist's stitched playlists.
    Playlist(PlaylistId),
    /// One live channel's playlists, parts and segments.
    Channel(ChannelId),
    /// One channel's progressive mounts only, for as long as a year: a listener token
    /// (`POST /v1/channels/{id}/listen-tokens`), which the store can revoke. Never valid for
    /// [`Scope::Channel`], so a revoked one opens nothing.
    Listen(ChannelId),
}

impl Scope {
    /// Where the scope's files are delivered, below the public URL.
    pub fn path(self) -> String {
        match self {
            Scope::Track(t) => crate::layout::track_hls(t),
            Scope::Playlist(p) => crate::layout::playlist_hls(p),
            Scope::Channel(c) => crate::layout::channel_hls(c),
            Scope::Listen(_) => "/listen".to_string(),
        }
    }

    fn parts(self) -> (&'static str, uuid::Uuid) {
        match self {
            Scope::Track(t) => ("track_", t.0),
            Scope::Playlist(p) => ("playlist_", p.0),
            Scope::Channel(c) => ("channel_", c.0),
            Scope::Listen(c) => ("listen_", c.0),
        }
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Expiry, Unix seconds.
    pub expires: u64,
    /// The listener session.
    pub session: u128,
}

struct Key {
    id: String,
    mac: HmacSha256,
}

/// Playback-token keys: all verify, one signs.
pub struct Tokens {
    keys: Vec<Key>,
    signer: usize,
}

impl Tokens {
    /// Builds the key set; `signing` names the signer (empty: the first key).
    pub fn new(keys: &[config::PlaybackKey], signing: &str) -> Tokens {
        let keys: Vec<Key> = keys
            .iter()
            .map(|k| Key {
                id: k.id.clone(),
                // HMAC takes keys of any length.
                mac: HmacSha256::new_from_slice(k.secret.as_bytes())
                    .expect("HMAC accepts any key length"),
            })
            .collect();
        let signer = keys.iter().position(|k| k.id == signing).unwrap_or(0);
        Tokens { keys, signer }
    }

    /// Signs a token for `scope` and listener `session`, valid until `expires` (Unix seconds).
    /// The same arguments always give the same token.
    pub fn sign(&self, scope: impl Into<Scope>, session: u128, expires: u64) -> String {
        let key = &self.keys[self.signer];
        let (kind, id) = scope.into().parts();
        let body = format!(
            "v1.{}.{kind}{}.{}.{}",
            key.id,
            id.simple(),
            expires,
            B64.encode(session.to_be_bytes())
        );
        let mut mac = key.mac.clone();
        mac.update(body.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// Signs a playback of `scope` for a new listener session, valid `ttl` seconds from `now`
    /// (Unix seconds), with its files under `public_url`. Tracks and playlists are played through
    /// this one function.
    pub fn playback(
        &self,
        public_url: &str,
        scope: impl Into<Scope>,
        now: u64,
        ttl: u64,
    ) -> Playback {
        let scope = scope.into();
        let expires = now + ttl;
        let session = u128::from_be_bytes(rand::random());
        Playback {
            token: self.sign(scope, session, expires),
            expires,
            base: format!("{public_url}{}", scope.path()),
        }
    }

    /// The scope a token names, unverified: which scope to verify it for when more than one
    /// would do (a playlist token opens the files of the playlist's tracks).
    pub fn scope_of(token: &str) -> Option<Scope> {
        let scope = token.split('.').nth(2)?;
        let (kind, hex) = scope.split_once('_')?;
        let id = uuid::Uuid::try_parse(hex).ok()?;
        match kind {
            "track" => Some(Scope::Track(TrackId(id))),
            "playlist" => Some(Scope::Playlist(PlaylistId(id))),
            "channel" => Some(Scope::Channel(ChannelId(id))),
            "listen" => Some(Scope::Listen(ChannelId(id))),
            _ => None,
        }
    }

    /// Verifies `token` for `scope` at `now` (Unix seconds). Allocates nothing.
    pub fn verify(
        &self,
        token: Option<&str>,
        scope: impl Into<Scope>,
        now: u64,
    ) -> Result<Grant, TokenError> {
        let (kind, id) = scope.into().parts();
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        if token.len() > 256 {
            return Err(TokenError::Malformed);
        }
        let (body, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut fields = body.split('.');
        let (Some("v1"), Some(kid), Some(scope), Some(exp), Some(sid), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut sig_bytes = [0u8; 32];
        match B64.decode_slice(sig, &mut sig_bytes) {
            Ok(32) => {}
            _ => return Err(TokenError::Malformed),
        }
        let mut mac = key.mac.clone();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig_bytes)
            .map_err(|_| TokenError::BadSignature)?;
        let expires: u64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        if expires <= now {
            return Err(TokenError::Expired);
        }
        let (scoped_kind, hex) = scope
            .split_once('_')
            .map(|(k, h)| (&scope[..k.len() + 1], h))
            .ok_or(TokenError::Malformed)?;
        let scoped = uuid::Uuid::try_parse(hex).map_err(|_| TokenError::Malformed)?;
        if scoped_kind != kind || scoped != id {
            return Err(TokenError::WrongScope);
        }
        let mut sid_bytes = [0u8; 16];
        match B64.decode_slice(sid, &mut sid_bytes) {
            Ok(16) => {}
            _ => return Err(TokenError::Malformed),
        }
        Ok(Grant {
            expires,
            session: u128::from_be_bytes(sid_bytes),
        })
    }
}

impl From<TrackId> for Scope {
    fn from(t: TrackId) -> Scope {
        Scope::Track(t)
    }
}

impl From<ChannelId> for Scope {
    fn from(c: ChannelId) -> Scope {
        Scope::Channel(c)
    }
}

impl From<PlaylistId> for Scope {
    fn from(p: PlaylistId) -> Scope {
        Scope::Playlist(p)
    }
}

/// Service API keys.
pub struct ApiKeys {
    /// Each key with its id: the first 12 hex digits of its SHA-256, which names the key in
    /// owner fields (`key:<id>`) and logs without revealing it.
    keys: Vec<(String, String)>,
}

impl ApiKeys {
    /// The accepted keys.
    pub fn new(keys: Vec<String>) -> ApiKeys {
        use sha2::Digest;
        let keys = keys
            .into_iter()
            .map(|k| {
                let digest = sha2::Sha256::digest(k.as_bytes());
                let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                (k, id)
            })
            .collect();
        ApiKeys { keys }
    }

    /// The id of the key an `Authorization` header value carries, if it carries a valid one.
    /// Compares with every key in constant time.
    pub fn check(&self, header: Option<&str>) -> Option<&str> {
        let given = header.and_then(bearer)?;
        let mut found = None;
        for (k, id) in &self.keys {
            if constant_time_eq(k.as_bytes(), given.as_bytes()) {
                found = Some(id.as_str());
            }
        }
        found
    }
}

/// The credentials of an `Authorization` header value with the `Bearer` scheme (RFC 6750 2.1),
/// whose name is case-insensitive (RFC 9110 11.1): `Bearer abc`, `bearer abc`.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Secrets generated for a configuration that gives none, kept in `data_dir/dev-secrets.toml` so
/// they survive restarts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DevSecrets {
    /// The development API key.
    pub api_key: String,
    /// The development playback-token secret.
    pub playback_secret: String,
    /// The development HS256 JWT secret (absent from files written by older versions).
    #[serde(default)]
    pub jwt_secret: String,
    /// The key of JWTs handed out at sign-in, when `auth.session_secret` is empty (absent from
    /// files written by older versions).
    #[serde(default)]
    pub session_secret: String,
}

impl DevSecrets {
    /// Loads the development JWT secret that `serve` keeps in `data_dir`, never creating one: a
    /// token signed with a fresh secret would be refused by the running server.
    ///
    /// # Errors
    /// A message naming the file looked for, and what to do instead.
    pub fn load_existing(data_dir: &Path) -> Result<DevSecrets, String> {
        let path = data_dir.join("dev-secrets.toml");
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "no development secrets at {} ({e}): run this in the directory `veza-stream serve` \
                 runs in, pass its --config (server.data_dir), or set auth.jwt_hs256_secret",
                shown.display()
            )
        })?;
        match toml::from_str::<DevSecrets>(&text) {
            Ok(s) if !s.jwt_secret.is_empty() => Ok(s),
            _ => Err(format!(
                "{} holds no jwt_secret: start `veza-stream serve` once to add it",
                shown.display()
            )),
        }
    }

    /// Loads the file, or creates it (mode 0600) with fresh random secrets.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<DevSecrets> {
        let path = data_dir.join("dev-secrets.toml");
        let s = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| toml::from_str::<DevSecrets>(&text).ok())
        {
            Some(s) if !s.jwt_secret.is_empty() && !s.session_secret.is_empty() => return Ok(s),
            // Keep the secrets a file already holds; add the missing ones.
            Some(s) => DevSecrets {
                jwt_secret: Some(s.jwt_secret)
                    .filter(|j| !j.is_empty())
                    .unwrap_or_else(|| random_b64(32)),
                session_secret: Some(s.session_secret)
                    .filter(|j| !j.is_empty())
                    .unwrap_or_else(|| random_b64(32)),
                ..s
            },
            None => DevSecrets {
                api_key: format!("dev_{}", random_b64(24)),
                playback_secret: random_b64(32),
                jwt_secret: random_b64(32),
                session_secret: random_b64(32),
            },
        };
        std::fs::create_dir_all(data_dir)?;
        let text = toml::to_string(&s).map_err(std::io::Error::other)?;
        crate::util::write_private(&path, text.as_bytes())?;
        Ok(s)
    }
}

/// `n` random bytes in unpadded base64url.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_whatever_the_schemes_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer(bad), None, "{bad:?}");
        }
    }

    fn keys(ids: &[&str]) -> Vec<config::PlaybackKey> {
        ids.iter()
            .map(|id| config::PlaybackKey {
                id: id.to_string(),
                secret: format!("{id}-secret-0123456789abcdefghijklmnop"),
            })
            .collect()
    }

    #[test]
    fn a_signed_token_verifies_for_its_track_only() {
        let t = Tokens::new(&keys(&["k1"]), "");
        let track = TrackId::new();
        let tok = t.sign(track, 42, 1000);
        let g = t.verify(Some(&tok), track, 999).unwrap();
        assert_eq!((g.session, g.expires), (42, 1000));
        assert_eq!(t.verify(Some(&tok), track, 1000), Err(TokenError::Expired));
        assert_eq!(
            t.verify(Some(&tok), TrackId::new(), 1),
            Err(TokenError::WrongScope)
        );
        assert_eq!(t.verify(None, track, 1), Err(TokenError::Missing));
        assert_eq!(
            t.verify(Some("v1.k1"), track, 1),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn any_altered_field_breaks_the_signature() {
        let t = Tokens::new(&keys(&["k1"]), "");
        let track = TrackId::new();
        let tok = t.sign(track, 7, 5000);
        let fields: Vec<&str> = tok.split('.').collect();
        let altered = format!("v1.k1.{}.9999.{}.{}", fields[2], fields[4], fields[5]);
        assert_eq!(
            t.verify(Some(&altered), track, 1),
            Err(TokenError::BadSignature)
        );
        let mut sig = fields[5].to_string();
        sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        let altered = format!("{}.{sig}", fields[..5].join("."));
        assert_eq!(
            t.verify(Some(&altered), track, 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn keys_rotate() {
        let old = Tokens::new(&keys(&["k1"]), "k1");
        let both = Tokens::new(&keys(&["k1", "k2"]), "k2");
        let new_only = Tokens::new(&keys(&["k2"]), "k2");
        let track = TrackId::new();
        let old_tok = old.sign(track, 1, 100);
        assert!(both.verify(Some(&old_tok), track, 1).is_ok());
        assert_eq!(
            new_only.verify(Some(&old_tok), track, 1),
            Err(TokenError::UnknownKey)
        );
        let new_tok = both.sign(track, 1, 100);
        assert!(new_tok.starts_with("v1.k2."));
        assert!(new_only.verify(Some(&new_tok), track, 1).is_ok());
    }

    #[test]
    fn api_keys_need_the_bearer_scheme() {
        let k = ApiKeys::new(vec!["0123456789abcdef".into()]);
        let id = k.check(Some("Bearer 0123456789abcdef"));
        // The first 12 hex digits of the key's SHA-256.
        assert_eq!(id, Some("9f9f5111f7b2"));
        assert_eq!(k.check(Some("0123456789abcdef")), None);
        assert_eq!(k.check(Some("Bearer 0123456789abcdeX")), None);
        assert_eq!(k.check(None), None);
    }
}

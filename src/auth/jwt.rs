//! JWT verification for the control API: who is calling, and in which [`Role`].
//!
//! Tokens come from the platform (HS256 with a shared secret) or from an OIDC provider such as
//! Keycloak (RS256/ES256 with a public key, a JWKS file or a JWKS URL). `exp` and `sub` are
//! required; `iss` and `aud` are checked when configured, and `exp`/`nbf` allow
//! `auth.jwt_leeway_seconds` of clock skew. The role is read from `auth.jwt_role_claim`, a dotted
//! path to a string or an array of strings; the strongest known role found wins.

use crate::config;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use std::sync::RwLock;

/// What a caller may do. Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads public playlists and plays ready tracks.
    Listener,
    /// Also uploads, and manages its own tracks and playlists.
    Artist,
    /// Anything. Service API keys act as admins.
    Admin,
}

impl Role {
    /// The name used in tokens and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Listener => "listener",
            Role::Artist => "artist",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "listener" => Some(Role::Listener),
            "artist" => Some(Role::Artist),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The owner namespace of service principals: `key:<key id>`.
pub const SERVICE_PREFIX: &str = "key:";

/// The owner namespace of local accounts: `acct:<account id>`, which only tokens this server
/// signs (at sign-in) may carry.
pub const ACCOUNT_PREFIX: &str = "acct:";

/// The `kid`, issuer and audience of the JWTs this server hands out at sign-in.
pub const LOCAL: &str = "veza-stream";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`, or `key:<key id>` for an API key (a namespace no JWT may take).
    pub subject: String,
    /// Its role.
    pub role: Role,
}

impl Identity {
    /// The identity of the service API key `key_id` (see [`crate::auth::ApiKeys`]).
    pub fn service(key_id: &str) -> Identity {
        Identity {
            subject: format!("{SERVICE_PREFIX}{key_id}"),
            role: Role::Admin,
        }
    }

    /// Whether this caller may manage what `owner` owns.
    pub fn manages(&self, owner: &str) -> bool {
        self.role == Role::Admin || (self.role == Role::Artist && self.subject == owner)
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a valid token for this server: bad signature, expired, wrong issuer or audience,
    /// unknown key. Answer 401.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Valid, but it carries no role this server knows. Answer 403.
    #[error("the token carries no role (admin, artist or listener) in claim {0}")]
    NoRole(String),
}

struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The configured JWT verifier.
pub struct Jwt {
    hs256: Option<DecodingKey>,
    public: RwLock<Vec<PublicKey>>,
    issuer: String,
    audience: String,
    leeway: u64,
    role_claim: Vec<String>,
    /// The key of the tokens this server signs at sign-in.
    local: Option<(DecodingKey, EncodingKey)>,
    /// Woken when a token names a key id the JWKS does not hold, so that the JWKS URL is fetched
    /// again before its next scheduled refresh.
    pub unknown_kid: tokio::sync::Notify,
}

impl Jwt {
    /// Builds the verifier from `[auth]`, reading a public-key or JWKS file if one is named.
    /// `hs256_secret` is the configured or development shared secret.
    pub fn new(auth: &config::Auth, hs256_secret: Option<&str>) -> Result<Jwt, String> {
        let jwt = Jwt {
            hs256: hs256_secret
                .filter(|s| !s.is_empty())
                .map(|s| DecodingKey::from_secret(s.as_bytes())),
            public: RwLock::new(Vec::new()),
            issuer: auth.jwt_issuer.clone(),
            audience: auth.jwt_audience.clone(),
            leeway: auth.jwt_leeway_seconds,
            role_claim: auth.jwt_role_claim.split('.').map(str::to_owned).collect(),
            local: None,
            unknown_kid: tokio::sync::Notify::new(),
        };
        if !auth.jwt_public_key_file.is_empty() {
            let pem = std::fs::read(&auth.jwt_public_key_file)
                .map_err(|e| format!("auth.jwt_public_key_file: {e}"))?;
            let key = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                PublicKey {
                    kid: None,
                    alg: Algorithm::RS256,
                    key: k,
                }
            } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                PublicKey {
                    kid: None,
                    alg: Algorithm::ES256,
                    key: k,
                }
            } else {
                return Err(
                    "auth.jwt_public_key_file: not an RSA or EC public key in PEM".to_string(),
                );
            };
            jwt.public
                .write()
                .expect("lock poisoned only by a panic")
                .push(key);
        }
        if !auth.jwt_jwks_file.is_empty() {
            let text = std::fs::read_to_string(&auth.jwt_jwks_file)
                .map_err(|e| format!("auth.jwt_jwks_file: {e}"))?;
            jwt.set_jwks(&text)
                .map_err(|e| format!("auth.jwt_jwks_file: {e}"))?;
        }
        Ok(jwt)
    }

    /// Also accepts, and signs, the tokens handed out at sign-in, with HS256 key `secret`.
    pub fn with_local(mut self, secret: &str) -> Jwt {
        self.local = Some((
            DecodingKey::from_secret(secret.as_bytes()),
            EncodingKey::from_secret(secret.as_bytes()),
        ));
        self
    }

    /// Signs a token for a local account's `subject` and `role`, valid `ttl` seconds from `now`.
    pub fn mint_local(&self, subject: &str, role: Role, ttl: u64, now: u64) -> Option<String> {
        let (_, key) = self.local.as_ref()?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(LOCAL.into());
        let claims = serde_json::json!({
            "sub": subject, "role": role.as_str(), "iss": LOCAL, "aud": LOCAL,
            "iat": now, "exp": now + ttl, "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, key).ok()
    }

    /// Verifies a token this server signed at sign-in.
    fn verify_local(&self, token: &str) -> Result<Identity, JwtError> {
        let (key, _) = self
            .local
            .as_ref()
            .ok_or_else(|| JwtError::Invalid("local accounts are not enabled".into()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = self.leeway;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[LOCAL]);
        validation.set_audience(&[LOCAL]);
        let claims: Value = jsonwebtoken::decode(token, key, &validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?
            .claims;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| s.starts_with(ACCOUNT_PREFIX))
            .ok_or_else(|| JwtError::Invalid("not an account's token".into()))?;
        let role = claims
            .get("role")
            .and_then(Value::as_str)
            .and_then(Role::parse)
            .ok_or_else(|| JwtError::NoRole("role".into()))?;
        Ok(Identity {
            subject: subject.to_owned(),
            role,
        })
    }

    /// Replaces the public keys with those of a JWKS document. Keys of other algorithms are
    /// skipped. Returns how many were kept.
    pub fn set_jwks(&self, text: &str) -> Result<usize, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
                (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
                (Some(_), _) => continue,
                (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                (None, _) => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.push(PublicKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        let n = keys.len();
        *self.public.write().expect("lock poisoned only by a panic") = keys;
        Ok(n)
    }

    /// Verifies a token and maps it to an identity.
    pub fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        let invalid = |e: jsonwebtoken::errors::Error| JwtError::Invalid(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        if header.kid.as_deref() == Some(LOCAL) {
            return self.verify_local(token);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        // A token used before its `nbf` is refused, with the same leeway as `exp`.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if !self.issuer.is_empty() {
            validation.set_issuer(&[&self.issuer]);
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&self.audience]);
        }
        let claims: Value = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or_else(|| JwtError::Invalid("HS256 tokens are not accepted".into()))?;
                jsonwebtoken::decode(token, key, &validation)
                    .map_err(invalid)?
                    .claims
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let keys = self.public.read().expect("lock poisoned only by a panic");
                let key = keys
                    .iter()
                    .find(|k| {
                        k.alg == header.alg
                            && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
                    })
                    .ok_or_else(|| {
                        self.unknown_kid.notify_one();
                        JwtError::Invalid(format!(
                            "no {:?} key{} is configured",
                            header.alg,
                            header
                                .kid
                                .as_deref()
                                .map(|k| format!(" with kid {k}"))
                                .unwrap_or_default()
                        ))
                    })?;
                jsonwebtoken::decode(token, &key.key, &validation)
                    .map_err(invalid)?
                    .claims
            }
            other => return Err(JwtError::Invalid(format!("{other:?} is not accepted"))),
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control))
            .ok_or_else(|| {
                JwtError::Invalid(
                    "sub must be a string of 1 to 255 bytes without control characters".into(),
                )
            })?
            .to_owned();
        if subject.starts_with(SERVICE_PREFIX) || subject.starts_with(ACCOUNT_PREFIX) {
            return Err(JwtError::Invalid(format!(
                "sub may not start with {SERVICE_PREFIX:?} or {ACCOUNT_PREFIX:?}: those namespaces \
                 belong to API keys and local accounts"
            )));
        }
        let role = role_at(&claims, &self.role_claim)
            .ok_or_else(|| JwtError::NoRole(self.role_claim.join(".")))?;
        Ok(Identity { subject, role })
    }
}

/// The `jti` and `exp` claims of a token, read without verifying it: call it on a token
/// [`Jwt::verify`] accepted.
pub fn claims_of(token: &str) -> Option<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `jti` claim of a token (see [`claims_of`]).
pub fn jti(token: &str) -> Option<String> {
    claims_of(token)?
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .map(str::to_owned)
}

/// The role a token's claims name at the dotted `path` (split into its parts): a string, or
/// the strongest known one of an array of strings.
pub fn role_at(claims: &Value, path: &[String]) -> Option<Role> {
    let mut at = claims;
    for part in path {
        at = at.get(part).unwrap_or(&Value::Null);
    }
    match at {
        Value::String(s) => Role::parse(s),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(Role::parse)
            .max(),
        _ => None,
    }
}

/// Mints an HS256 token (for `veza-stream token create` and tests).
pub fn mint(
    secret: &str,
    subject: &str,
    role: Role,
    ttl_seconds: u64,
    auth: &config::Auth,
    now: u64,
) -> Result<String, String> {
    // A `jti`, so that the token can be revoked (`POST /v1/tokens/revoke`).
    let mut claims = serde_json::json!({
        "sub": subject,
        "role": role.as_str(),
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if !auth.jwt_issuer.is_empty() {
        claims["iss"] = Value::String(auth.jwt_issuer.clone());
    }
    if !auth.jwt_audience.is_empty() {
        claims["aud"] = Value::String(auth.jwt_audience.clone());
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth() -> config::Auth {
        config::Auth {
            jwt_issuer: "https://id.example".into(),
            jwt_audience: "veza".into(),
            ..config::Auth::default()
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn sign_in_tokens_verify_and_no_other_token_is_an_account() {
        let local = "a-session-key-of-at-least-32-bytes!!";
        let jwt = Jwt::new(&auth(), Some(SECRET)).unwrap().with_local(local);
        let t = jwt
            .mint_local("acct:0190-x", Role::Artist, 60, now())
            .unwrap();
        assert_eq!(
            jwt.verify(&t).unwrap(),
            Identity {
                subject: "acct:0190-x".into(),
                role: Role::Artist
            }
        );
        // Signed with the platform's secret but claiming to be ours: refused.
        let forged = Jwt::new(&auth(), Some(SECRET))
            .unwrap()
            .with_local(SECRET)
            .mint_local("acct:0190-x", Role::Admin, 60, now())
            .unwrap();
        assert!(jwt.verify(&forged).is_err());
        // A platform token may not take an account's subject.
        let platform = mint(SECRET, "acct:0190-x", Role::Admin, 60, &auth(), now()).unwrap();
        assert!(matches!(jwt.verify(&platform), Err(JwtError::Invalid(_))));
    }

    #[test]
    fn a_minted_token_verifies_with_its_role() {
        let jwt = Jwt::new(&auth(), Some(SECRET)).unwrap();
        let t = mint(SECRET, "alice", Role::Artist, 60, &auth(), now()).unwrap();
        assert_eq!(
            jwt.verify(&t).unwrap(),
            Identity {
                subject: "alice".into(),
                role: Role::Artist
            }
        );
    }

    #[test]
    fn issuer_audience_expiry_and_secret_are_checked() {
        let jwt = Jwt::new(&auth(), Some(SECRET)).unwrap();
        let other_iss = config::Auth {
            jwt_issuer: "https://evil.example".into(),
            ..auth()
        };
        let t = mint(SECRET, "a", Role::Admin, 60, &other_iss, now()).unwrap();
        assert!(matches!(jwt.verify(&t), Err(JwtError::Invalid(_))));
        let other_aud = config::Auth {
            jwt_audience: "else".into(),
            ..auth()
        };
        let t = mint(SECRET, "a", Role::Admin, 60, &other_aud, now()).unwrap();
        assert!(matches!(jwt.verify(&t), Err(JwtError::Invalid(_))));
        // Expired 2 minutes ago: past the 60 s leeway.
        let t = mint(SECRET, "a", Role::Admin, 60, &auth(), now() - 180).unwrap();
        assert!(matches!(jwt.verify(&t), Err(JwtError::Invalid(_))));
        // Expired 30 s ago: within the leeway.
        let t = mint(SECRET, "a", Role::Admin, 60, &auth(), now() - 90).unwrap();
        assert!(jwt.verify(&t).is_ok());
        let t = mint(
            "another-secret-another-secret-00",
            "a",
            Role::Admin,
            60,
            &auth(),
            now(),
        )
        .unwrap();
        assert!(matches!(jwt.verify(&t), Err(JwtError::Invalid(_))));
        let no_hs = Jwt::new(&auth(), None).unwrap();
        let t = mint(SECRET, "a", Role::Admin, 60, &auth(), now()).unwrap();
        assert!(matches!(no_hs.verify(&t), Err(JwtError::Invalid(_))));
    }

    #[test]
    fn keycloak_style_role_arrays_pick_the_strongest_known_role() {
        let a = config::Auth {
            jwt_role_claim: "realm_access.roles".into(),
            ..config::Auth::default()
        };
        let jwt = Jwt::new(&a, Some(SECRET)).unwrap();
        let claims = serde_json::json!({
            "sub": "bob", "exp": now() + 60,
            "realm_access": {"roles": ["offline_access", "listener", "artist"]},
        });
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(jwt.verify(&t).unwrap().role, Role::Artist);
        let claims = serde_json::json!({"sub": "bob", "exp": now() + 60, "role": "artist"});
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(jwt.verify(&t), Err(JwtError::NoRole(_))));
    }

    #[test]
    fn only_admins_and_owning_artists_manage() {
        let artist = Identity {
            subject: "alice".into(),
            role: Role::Artist,
        };
        assert!(artist.manages("alice"));
        assert!(!artist.manages("bob"));
        let listener = Identity {
            subject: "alice".into(),
            role: Role::Listener,
        };
        assert!(!listener.manages("alice"));
        assert!(Identity::service("0123abcd").manages("anyone"));
        assert_eq!(Identity::service("0123abcd").subject, "key:0123abcd");
    }

    fn sign(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn not_before_is_enforced_with_the_leeway() {
        let jwt = Jwt::new(&auth(), Some(SECRET)).unwrap();
        let at = |nbf: u64| {
            sign(&serde_json::json!({"sub": "a", "role": "admin", "exp": now() + 600, "nbf": nbf}))
        };
        // Valid from 2 minutes on: past the 60 s leeway, refused.
        assert!(matches!(
            jwt.verify(&at(now() + 120)),
            Err(JwtError::Invalid(m)) if m.contains("ImmatureSignature")
        ));
        // Valid from 30 s on: within the leeway.
        assert!(jwt.verify(&at(now() + 30)).is_ok());
        assert!(jwt.verify(&at(now() - 30)).is_ok());
    }

    #[test]
    fn no_token_takes_the_api_key_namespace() {
        let jwt = Jwt::new(&auth(), Some(SECRET)).unwrap();
        let t =
            sign(&serde_json::json!({"sub": "key:0123abcd", "role": "admin", "exp": now() + 60}));
        assert!(matches!(jwt.verify(&t), Err(JwtError::Invalid(m)) if m.contains("API keys")));
        // The subject the API keys used to share is an ordinary name now.
        let t = sign(&serde_json::json!({"sub": "service", "role": "artist", "exp": now() + 60}));
        let who = jwt.verify(&t).unwrap();
        assert!(!who.manages("key:0123abcd"));
    }
}

//! Sign-in with OpenID Connect (OpenID Connect Core 1.0): the authorization code flow with PKCE
//! (RFC 7636, S256) against any provider (Keycloak, Google, Authentik), found by its issuer's
//! discovery document. The state, the nonce and the PKCE verifier travel in a short-lived
//! `HttpOnly` cookie signed with the session key, so any node can finish a sign-in another
//! began. The ID token is verified against the provider's JWKS: signature, issuer, audience,
//! expiry and nonce.

use super::jwt::Role;
use crate::config;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// The cookie carrying a sign-in in progress.
pub const COOKIE: &str = "veza_oidc";

/// How long a sign-in may take at the provider.
const FLOW_SECONDS: u64 = 600;

/// How long the provider's discovery document and keys are kept.
const REFRESH: Duration = Duration::from_secs(3600);

/// Why a sign-in did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No provider is configured: 404.
    #[error("sign-in with OpenID Connect is not configured")]
    Off,
    /// The provider could not be reached or answered nonsense: 502, try again later.
    #[error("the identity provider failed: {0}")]
    Provider(String),
    /// The answer does not belong to a sign-in this browser began, or its token is not valid:
    /// start again.
    #[error("{0}")]
    Refused(String),
}

/// Who signed in, as the provider says.
#[derive(Debug, Clone)]
pub struct Person {
    /// The provider's issuer.
    pub issuer: String,
    /// Its subject: stable for this person at this provider.
    pub subject: String,
    /// Their email, when the provider shares it.
    pub email: Option<String>,
    /// Whether the provider verified that email.
    pub email_verified: bool,
    /// Their name.
    pub name: Option<String>,
    /// The role the token names, or the configured default.
    pub role: Role,
}

/// A sign-in begun: where to send the browser, and the cookie to set.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL with this sign-in's parameters.
    pub url: String,
    /// The signed cookie value (state, nonce, verifier, expiry).
    pub cookie: String,
}

struct Discovered {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    keys: JwkSet,
    at: Instant,
}

/// The configured provider.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: String,
    scopes: String,
    role_claim: Vec<String>,
    default_role: Role,
    /// The button's words.
    pub name: String,
    key: Hmac<Sha256>,
    http: reqwest::Client,
    found: tokio::sync::Mutex<Option<Discovered>>,
}

fn provider(e: impl std::fmt::Display) -> Error {
    Error::Provider(e.to_string())
}

impl Oidc {
    /// The provider of `[auth]`, if one is configured; `key` signs the flow's cookie.
    pub fn new(auth: &config::Auth, key: &str) -> Option<Oidc> {
        if auth.oidc_issuer.is_empty() {
            return None;
        }
        Some(Oidc {
            issuer: auth.oidc_issuer.trim_end_matches('/').to_owned(),
            client_id: auth.oidc_client_id.clone(),
            client_secret: auth.oidc_client_secret.clone(),
            scopes: auth.oidc_scopes.clone(),
            role_claim: auth.oidc_role_claim.split('.').map(str::to_owned).collect(),
            default_role: Role::parse(&auth.oidc_default_role).unwrap_or(Role::Listener),
            name: auth.oidc_name.clone(),
            key: Hmac::new_from_slice(key.as_bytes()).expect("HMAC takes any key length"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain HTTP client builds"),
            found: tokio::sync::Mutex::new(None),
        })
    }

    /// The discovery document and keys, fetched again after an hour or when a token names a key
    /// they do not hold (`fresh`).
    async fn discovered<T>(
        &self,
        fresh: bool,
        read: impl FnOnce(&Discovered) -> T,
    ) -> Result<T, Error> {
        let mut found = self.found.lock().await;
        let stale = found
            .as_ref()
            .is_none_or(|d| fresh || d.at.elapsed() > REFRESH);
        if stale {
            let url = format!("{}/.well-known/openid-configuration", self.issuer);
            let doc: Value = self.get_json(&url).await?;
            let field = |k: &str| {
                doc.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Provider(format!("its discovery document has no {k}")))
            };
            let issuer = field("issuer")?;
            if issuer.trim_end_matches('/') != self.issuer {
                return Err(Error::Provider(format!(
                    "its discovery document names issuer {issuer}, not {}",
                    self.issuer
                )));
            }
            let jwks_uri = field("jwks_uri")?;
            let keys: JwkSet = self.get_json(&jwks_uri).await?;
            *found = Some(Discovered {
                issuer,
                authorization_endpoint: field("authorization_endpoint")?,
                token_endpoint: field("token_endpoint")?,
                keys,
                at: Instant::now(),
            });
        }
        Ok(read(found.as_ref().expect("filled above")))
    }

    /// A JSON document of the provider's.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(provider)?
            .json()
            .await
            .map_err(provider)
    }

    fn sign(&self, body: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(body.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// Begins a sign-in that comes back to `redirect_uri`, at `now` (Unix seconds).
    ///
    /// # Errors
    /// [`Error::Provider`] when the provider's discovery document cannot be read.
    pub async fn begin(&self, redirect_uri: &str, now: u64) -> Result<Begun, Error> {
        let authorize = self
            .discovered(false, |d| d.authorization_endpoint.clone())
            .await?;
        let state = super::random_b64(16);
        let nonce = super::random_b64(16);
        let verifier = super::random_b64(32);
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        let body = format!("{state}.{nonce}.{verifier}.{}", now + FLOW_SECONDS);
        let cookie = format!("{body}.{}", self.sign(&body));
        let q = |s: &str| crate::util::percent_encode(s);
        let sep = if authorize.contains('?') { '&' } else { '?' };
        let url = format!(
            "{authorize}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}\
             &nonce={}&code_challenge={}&code_challenge_method=S256",
            q(&self.client_id),
            q(redirect_uri),
            q(&self.scopes),
            q(&state),
            q(&nonce),
            q(&challenge)
        );
        Ok(Begun { url, cookie })
    }

    /// Finishes the sign-in `cookie` began: the `state` must be its own, the `code` is
    /// exchanged (with the PKCE verifier) and the ID token verified.
    ///
    /// # Errors
    /// [`Error::Refused`] for an answer to another sign-in, an expired one, or a token that is
    /// not valid; [`Error::Provider`] when the provider fails.
    pub async fn finish(
        &self,
        cookie: Option<&str>,
        state: &str,
        code: &str,
        redirect_uri: &str,
        now: u64,
    ) -> Result<Person, Error> {
        let cookie = cookie.ok_or_else(|| {
            Error::Refused("this sign-in was not begun in this browser, or took too long".into())
        })?;
        let (body, sig) = cookie
            .rsplit_once('.')
            .ok_or_else(|| Error::Refused("the sign-in cookie is damaged".into()))?;
        if !super::constant_time_eq(self.sign(body).as_bytes(), sig.as_bytes()) {
            return Err(Error::Refused("the sign-in cookie is damaged".into()));
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [expected, nonce, verifier, exp] = parts[..] else {
            return Err(Error::Refused("the sign-in cookie is damaged".into()));
        };
        if exp.parse::<u64>().map_or(true, |e| e <= now) {
            return Err(Error::Refused(
                "the sign-in took too long: start again".into(),
            ));
        }
        if !super::constant_time_eq(expected.as_bytes(), state.as_bytes()) {
            return Err(Error::Refused(
                "the provider's answer is for another sign-in: start again".into(),
            ));
        }
        let token_endpoint = self.discovered(false, |d| d.token_endpoint.clone()).await?;
        let r = self
            .http
            .post(&token_endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(provider)?;
        let status = r.status();
        let answer: Value = r.json().await.map_err(provider)?;
        if !status.is_success() {
            // The provider refuses the code: used, expired, or not this client's.
            return Err(Error::Refused(format!(
                "the provider refused the sign-in: {}",
                answer
                    .get("error_description")
                    .or_else(|| answer.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            )));
        }
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Provider("its token answer has no id_token".into()))?;
        let claims = self.verify(id_token, nonce).await?;
        self.person(&claims)
    }

    async fn verify(&self, token: &str, nonce: &str) -> Result<Value, Error> {
        let refused = |e: jsonwebtoken::errors::Error| Error::Refused(format!("the ID token: {e}"));
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        let pick = |d: &Discovered| {
            d.keys
                .keys
                .iter()
                .find(|k| header.kid.is_none() || k.common.key_id == header.kid)
                .and_then(|k| DecodingKey::from_jwk(k).ok())
                .map(|k| (k, d.issuer.clone()))
        };
        let found = match self.discovered(false, pick).await? {
            Some(k) => Some(k),
            // A key the provider rotated in since the keys were read.
            None => self.discovered(true, pick).await?,
        };
        let (key, issuer) =
            found.ok_or_else(|| Error::Refused("the ID token's key is unknown".into()))?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&issuer]);
        v.set_audience(&[&self.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        let claims: Value = jsonwebtoken::decode(token, &key, &v)
            .map_err(refused)?
            .claims;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(Error::Refused(
                "the ID token is not for this sign-in (nonce)".into(),
            ));
        }
        Ok(claims)
    }

    fn person(&self, claims: &Value) -> Result<Person, Error> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub")
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| Error::Refused("the ID token has no subject".into()))?;
        let role = super::jwt::role_at(claims, &self.role_claim).unwrap_or(self.default_role);
        Ok(Person {
            issuer: self.issuer.clone(),
            subject,
            email: text("email"),
            email_verified: claims
                .get("email_verified")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            name: text("name").or_else(|| text("preferred_username")),
            role,
        })
    }
}

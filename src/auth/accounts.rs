//! Local accounts: their passwords, sign-in sessions and the refusal of password guessing.
//!
//! - Passwords are hashed with Argon2id (RFC 9106) at the `argon2` crate's defaults, OWASP's
//!   recommendation (19 MiB, 2 passes, 1 lane), and stored as PHC strings, so the parameters can
//!   rise later without invalidating old hashes.
//! - A session is a random 32-byte secret in an `HttpOnly; Secure; SameSite=Lax` cookie. The
//!   store keeps only its SHA-256, so a leaked table opens nothing.
//! - A state-changing request authenticated by that cookie must also carry `X-CSRF-Token`: the
//!   SHA-256 of `csrf:` and the cookie's secret, which the page learns from the sign-in answer or
//!   `GET /v1/me` and another site cannot read or compute (the double-submit pattern, keyed by a
//!   secret only the cookie holds).
//! - Guessing is refused per account and per client address ([`Guard`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "veza_session";

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Hashes a password with Argon2id and a fresh salt (about 20 ms of one core).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .expect("16 bytes is a valid salt length");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("the default Argon2id parameters are valid")
        .to_string()
}

/// Whether `password` matches `hash`. With no hash (no such account, or one that signs in only
/// by OIDC) a fixed hash is checked instead, so the answer takes the same time either way.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password("no account has this password"));
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// A new session's secret, for the cookie.
pub fn new_secret() -> String {
    super::random_b64(32)
}

/// The SHA-256 (hex) of a secret: how the store finds sessions and invitations.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CSRF token of a session.
pub fn csrf(secret: &str) -> String {
    B64.encode(Sha256::digest(format!("csrf:{secret}").as_bytes()))
}

/// The `Set-Cookie` value that starts a session lasting `max_age` seconds.
pub fn set_cookie(secret: &str, max_age: u64) -> String {
    format!("{COOKIE}={secret}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// The session secret in a request's `Cookie` headers (RFC 6265 5.4), if one is there and well
/// formed (43 base64url characters).
pub fn cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether an email address is plausible: one `@`, a local part and a dotted domain, no spaces
/// or control characters, at most 254 bytes (RFC 5321 4.5.3.1). Whether it receives mail is not
/// known here.
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A handle made from a display name: lowercase letters and digits joined by `-`, accents
/// dropped, at most 30 characters; `artist` when nothing is left.
pub fn handle_from(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(fold) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 30 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "artist".into()
    } else {
        out
    }
}

/// A Latin letter without its accent (the common ones), or the character itself.
pub fn fold(c: char) -> impl Iterator<Item = char> {
    let folded: &str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => "A",
        'æ' => "ae",
        'Æ' => "AE",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ő' => "O",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ś' | 'š' | 'ş' => "s",
        'Ś' | 'Š' | 'Ş' => "S",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ł' => "l",
        'Ł' => "L",
        'ř' => "r",
        'Ř' => "R",
        'ß' => "ss",
        _ => "",
    };
    let own = folded.is_empty().then_some(c);
    folded.chars().chain(own)
}

/// Refuses password guessing: after `per_account` failed sign-ins for one email, or
/// `per_address` from one client address, further attempts are refused (429) until the bucket
/// refills, one attempt a minute for an account and one every 15 s for an address. A refused
/// attempt is refused before its password is checked, right or wrong.
pub struct Guard {
    account: DefaultKeyedRateLimiter<String>,
    address: DefaultKeyedRateLimiter<IpAddr>,
    blocked: dashmap::DashMap<String, Instant>,
}

impl Guard {
    /// A guard allowing `per_account` and `per_address` failures in a burst.
    pub fn new(per_account: u32, per_address: u32) -> Guard {
        let burst = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Guard {
            account: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::MIN).allow_burst(burst(per_account)),
            ),
            address: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(15))
                    .expect("15 s is not zero")
                    .allow_burst(burst(per_address)),
            ),
            blocked: dashmap::DashMap::new(),
        }
    }

    /// The keys failures are counted under: the account's and the address's.
    pub fn keys(email_key: &str, ip: IpAddr) -> [String; 2] {
        [format!("a:{email_key}"), format!("i:{ip}")]
    }

    /// How long attempts for this account or from this address are still refused, if they are.
    pub fn refused(&self, email_key: &str, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        Self::keys(email_key, ip)
            .iter()
            .filter_map(|k| self.blocked.get(k).map(|until| *until))
            .map(|until| until.saturating_duration_since(now))
            .filter(|left| !left.is_zero())
            .max()
    }

    /// Counts a failed sign-in; past a limit, says how long the account or address is refused.
    pub fn failed(&self, email_key: &str, ip: IpAddr) -> Option<Duration> {
        let clock = DefaultClock::default();
        let [account, address] = Self::keys(email_key, ip);
        let by_account = self
            .account
            .check_key(&email_key.to_owned())
            .err()
            .map(|n| (account, n.wait_time_from(clock.now())));
        let by_address = self
            .address
            .check_key(&ip)
            .err()
            .map(|n| (address, n.wait_time_from(clock.now())));
        let mut longest = None;
        for (key, wait) in by_account.into_iter().chain(by_address) {
            self.blocked.insert(key, Instant::now() + wait);
            longest = longest.max(Some(wait));
        }
        longest
    }

    /// Forgets what is over, so the maps stay as small as the active guessers.
    pub fn sweep(&self) {
        self.account.retain_recent();
        self.address.retain_recent();
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(Some(&h), "correct horse battery"));
        assert!(!verify_password(Some(&h), "correct horse battery "));
        assert!(!verify_password(None, "no account has this password"));
        assert!(!verify_password(Some("not a hash"), "x"));
        assert_ne!(h, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let secret = new_secret();
        let mut h = axum::http::HeaderMap::new();
        h.append(
            "cookie",
            format!("a=1; {COOKIE}={secret}; b=2").parse().unwrap(),
        );
        assert_eq!(cookie(&h), Some(secret.as_str()));
        let mut bad = axum::http::HeaderMap::new();
        bad.append("cookie", format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie(&bad), None);
        assert_ne!(csrf(&secret), csrf(&new_secret()));
        assert!(set_cookie(&secret, 60).contains("HttpOnly; Secure; SameSite=Lax"));
    }

    #[test]
    fn emails_and_handles() {
        for ok in ["a@b.co", "Ann.Lee+x@example.org"] {
            assert!(plausible_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a b@c.d", "a@.b", "a@b.", "a@b\n.co",
        ] {
            assert!(!plausible_email(bad), "{bad:?}");
        }
        assert_eq!(handle_from("Zoë Keating"), "zoe-keating");
        assert_eq!(handle_from("  DJ  Ñandú!! "), "dj-nandu");
        assert_eq!(handle_from("東京"), "artist");
        assert!(handle_from(&"x".repeat(100)).len() <= 30);
    }

    #[test]
    fn guessing_is_refused_per_account_and_per_address() {
        let g = Guard::new(3, 5);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(g.failed("a@x", ip), None);
        assert_eq!(g.failed("a@x", ip), None);
        assert_eq!(g.failed("a@x", ip), None);
        assert!(g.refused("a@x", ip).is_none());
        assert!(g.failed("a@x", ip).is_some(), "the fourth failure");
        assert!(g.refused("a@x", ip).is_some());
        // Another address is refused for that account too.
        assert!(g.refused("a@x", "192.0.2.2".parse().unwrap()).is_some());
        // The first address has one failure left for other accounts, then is refused whatever
        // the account.
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(g.refused("b@x", other).is_none());
        assert_eq!(g.failed("b@x", ip), None, "the address's fifth failure");
        assert!(g.failed("c@x", ip).is_some(), "the address's sixth failure");
        assert!(g.refused("d@x", ip).is_some());
        assert!(g.refused("d@x", other).is_none());
    }
}

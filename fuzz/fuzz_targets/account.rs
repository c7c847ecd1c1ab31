//! What accounts and covers take from strangers: any bytes as an uploaded cover (decoded with
//! bounded allocations, re-encoded, or refused), and as the names, emails and cookies the
//! account routes read. Checks that a cover that passes is a bounded JPEG named by its digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veza_stream::auth::accounts;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = veza_stream::cover::normalise(data) {
        assert!(c.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!(c.digest.len(), 64);
    }
    let text = String::from_utf8_lossy(data);
    let handle = accounts::handle_from(&text);
    assert!(!handle.is_empty() && handle.len() <= 30);
    assert!(handle.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    let _ = accounts::plausible_email(&text);
    let mut h = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_bytes(data) {
        h.insert(axum::http::header::COOKIE, v);
        if let Some(secret) = accounts::cookie(&h) {
            assert_eq!(secret.len(), 43);
        }
    }
});

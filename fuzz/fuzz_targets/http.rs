//! Untrusted request text through the server's parsers: playback tokens, JWTs, Range,
//! If-None-Match, the playlist token rewrite and the stitcher's media-playlist reader. Checks the
//! invariants each promises.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use veza_stream::auth::Tokens;
use veza_stream::config::PlaybackKey;
use veza_stream::http::semantics::{none_match, range, with_token};
use veza_stream::store::TrackId;

fuzz_target!(|input: (&str, &[u8], u16, &str)| {
    let (text, header_bytes, len, playlist) = input;
    let keys = [PlaybackKey {
        id: "k1".into(),
        secret: "fuzz-secret-0123456789abcdefghijklmnop".into(),
    }];
    let tokens = Tokens::new(&keys, "k1");
    let track = TrackId(uuid::Uuid::nil());
    // Arbitrary text never verifies (it would need the HMAC), and never panics.
    assert!(tokens.verify(Some(text), track, 0).is_err());
    let signed = tokens.sign(track, 7, 100);
    assert!(tokens.verify(Some(&signed), track, 99).is_ok());

    if let Ok(v) = HeaderValue::from_bytes(header_bytes) {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.clone());
        h.insert(header::IF_NONE_MATCH, v);
        let len = u64::from(len);
        if let Some(Ok((start, end))) = range(&h, len) {
            assert!(start <= end && end < len, "{start}-{end}/{len}");
        }
        let _ = none_match(&h, "\"abc\"");
    }

    let out = with_token(playlist, "T");
    assert_eq!(out.lines().count(), playlist.lines().count());

    // A JWT made of arbitrary text never verifies, and never panics.
    let auth = veza_stream::config::Auth::default();
    let jwt = veza_stream::auth::Jwt::new(&auth, Some("fuzz-secret-0123456789abcdefghijkl")).unwrap();
    assert!(jwt.verify(text).is_err());

    // What the stitcher reads back renders to a playlist it reads the same way.
    if let Some(p) = veza_hls::parse_media(playlist) {
        let again = veza_hls::parse_media(&veza_hls::render_media(&p)).expect("round trip");
        assert_eq!(again.segments.len(), p.segments.len());
        assert_eq!(again.map_uri, p.map_uri);
    }
});

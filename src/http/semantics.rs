//! HTTP semantics shared by delivery routes, kept apart as plain functions over headers and text
//! so that they are unit tested and fuzzed (`fuzz/fuzz_targets/http.rs`) without a server.

use axum::http::{header, HeaderMap};

/// Appends `token=` to every URI in a playlist: URI lines and `URI="…"` attributes
/// (RFC 8216 §4.2 attribute lists: EXT-X-MAP, EXT-X-MEDIA and the rest).
pub fn with_token(text: &str, token: &str) -> String {
    veza_hls::UriSlots::new(text).fill(&format!("token={token}"))
}

/// Whether an `If-None-Match` list matches `tag` (weak comparison, RFC 9110 §13.1.2).
pub fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

/// A single byte range, RFC 9110 §14.1.2: `None` serves the whole body (no Range, several ranges,
/// or a syntax error, which the RFC says to ignore); `Some(Err(()))` is unsatisfiable.
pub fn range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.trim().split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len.saturating_sub(n), len - 1)));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= len {
        return Some(Err(()));
    }
    Some(Ok((start, end.min(len - 1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |v: &str| range(&h(header::RANGE, v), 100);
        assert_eq!(r("bytes=0-9"), Some(Ok((0, 9))));
        assert_eq!(r("bytes=90-"), Some(Ok((90, 99))));
        assert_eq!(r("bytes=90-500"), Some(Ok((90, 99))));
        assert_eq!(r("bytes=-10"), Some(Ok((90, 99))));
        assert_eq!(r("bytes=-1000"), Some(Ok((0, 99))));
        assert_eq!(r("bytes=100-"), Some(Err(())));
        assert_eq!(r("bytes=-0"), Some(Err(())));
        assert_eq!(r("bytes=5-1"), None);
        assert_eq!(r("bytes=0-1,5-6"), None);
        assert_eq!(r("items=0-1"), None);
        assert_eq!(range(&HeaderMap::new(), 100), None);
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        assert!(none_match(
            &h(header::IF_NONE_MATCH, r#""a", "b""#),
            r#""b""#
        ));
        assert!(none_match(&h(header::IF_NONE_MATCH, r#"W/"b""#), r#""b""#));
        assert!(none_match(&h(header::IF_NONE_MATCH, "*"), r#""b""#));
        assert!(!none_match(&h(header::IF_NONE_MATCH, r#""a""#), r#""b""#));
    }

    #[test]
    fn every_playlist_uri_gets_the_token() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.0,\nseg_00000.m4s\n#EXT-X-STREAM-INF:BANDWIDTH=1\naac-128/index.m3u8\n";
        let out = with_token(text, "T");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?token=T\"\n#EXTINF:6.0,\nseg_00000.m4s?token=T\n#EXT-X-STREAM-INF:BANDWIDTH=1\naac-128/index.m3u8?token=T\n"
        );
    }
}

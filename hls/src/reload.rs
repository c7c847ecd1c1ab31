//! Blocking playlist reload (draft-pantos-hls-rfc8216bis 6.2.5.2): what a server does with a
//! request carrying `_HLS_msn` and `_HLS_part`, decided from the playlist's live edge alone.
//!
//! The channel owns the edge and the waiting; this module only says whether the request is
//! malformed (400), already satisfied, or has to wait for a given part, so the rules are tested
//! on numbers.

/// Where a rendition's playlist stands: the last part published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// Media sequence number of the segment holding the last part.
    pub msn: u64,
    /// Index of the last part within that segment.
    pub part: u32,
}

/// What a playlist request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    /// `_HLS_msn`.
    pub msn: Option<u64>,
    /// `_HLS_part`.
    pub part: Option<u32>,
}

/// The answer to a playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer now with the current playlist.
    Now,
    /// Hold the request until the edge reaches this part, then answer.
    Wait(Edge),
    /// Answer 400: the request is malformed or asks too far ahead.
    BadRequest(&'static str),
}

/// Decides a request against the current `edge`, for segments of `parts_per_segment` parts
/// and an Advance Part Limit of `advance_parts`.
///
/// - `_HLS_part` without `_HLS_msn` is malformed (6.2.5.2).
/// - `_HLS_msn` more than two past the last segment, or a part more than the Advance Part Limit
///   past the last part, is refused with 400 (6.2.5.2).
/// - A part index past the last part of its segment means part 0 of the next segment.
/// - A request for a segment without a part waits for that whole segment: its last part.
/// - Anything already published answers at once, however old.
pub fn decide(
    edge: Option<Edge>,
    req: Request,
    parts_per_segment: u32,
    advance_parts: u64,
) -> Decision {
    let Some(msn) = req.msn else {
        return if req.part.is_some() {
            Decision::BadRequest("_HLS_part requires _HLS_msn")
        } else {
            Decision::Now
        };
    };
    let pps = parts_per_segment.max(1);
    // A segment asked for as a whole is complete when its last part is out.
    let want = match req.part {
        Some(p) if p >= pps => Edge {
            msn: msn.saturating_add(u64::from(p / pps)),
            part: p % pps,
        },
        Some(p) => Edge { msn, part: p },
        None => Edge { msn, part: pps - 1 },
    };
    let edge_msn = edge.map_or(0, |e| e.msn);
    if msn > edge_msn.saturating_add(2) {
        return Decision::BadRequest("_HLS_msn is more than two segments past the live edge");
    }
    let index = |e: Edge| {
        e.msn
            .saturating_mul(u64::from(pps))
            .saturating_add(u64::from(e.part))
    };
    let have = edge.map(index);
    if req.part.is_some() && index(want) > have.map_or(0, |h| h.saturating_add(advance_parts)) {
        return Decision::BadRequest("_HLS_part is past the Advance Part Limit");
    }
    match have {
        Some(h) if h >= index(want) => Decision::Now,
        _ => Decision::Wait(want),
    }
}

/// The Advance Part Limit (6.2.5.2): three part targets' worth of parts, or three parts when a
/// part is a second or longer.
pub fn advance_parts(part_target_seconds: f64) -> u64 {
    if part_target_seconds < 1.0 && part_target_seconds > 0.0 {
        (3.0 / part_target_seconds).floor() as u64
    } else {
        3
    }
}

/// Parses the delivery directives of a playlist URL's query (6.2.5): `_HLS_msn`, `_HLS_part`
/// and `_HLS_skip` (`YES` or `v2`). Other parameters (a token) are ignored. Numbers must be
/// canonical decimals.
pub fn parse_query(query: &str) -> Result<(Request, bool), &'static str> {
    let mut req = Request::default();
    let mut skip = false;
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "_HLS_msn" => req.msn = Some(number(v).ok_or("_HLS_msn is not a decimal integer")?),
            "_HLS_part" => {
                let p = number(v).ok_or("_HLS_part is not a decimal integer")?;
                req.part = Some(u32::try_from(p).map_err(|_| "_HLS_part is too large")?);
            }
            "_HLS_skip" => match v {
                "YES" | "v2" => skip = true,
                _ => return Err("_HLS_skip is YES or v2"),
            },
            _ => {}
        }
    }
    Ok((req, skip))
}

fn number(v: &str) -> Option<u64> {
    if v.is_empty()
        || v.len() > 19
        || !v.bytes().all(|b| b.is_ascii_digit())
        || (v.len() > 1 && v.starts_with('0'))
    {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse_and_junk_is_refused() {
        let (r, skip) = parse_query("token=abc&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES").unwrap();
        assert_eq!(
            r,
            Request {
                msn: Some(12),
                part: Some(3)
            }
        );
        assert!(skip);
        assert_eq!(parse_query("token=x").unwrap(), (Request::default(), false));
        for bad in [
            "_HLS_msn=-1",
            "_HLS_msn=01",
            "_HLS_msn=",
            "_HLS_part=99999999999",
            "_HLS_skip=no",
            "_HLS_msn=1e3",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }

    const E: Edge = Edge { msn: 10, part: 2 };

    fn d(msn: Option<u64>, part: Option<u32>) -> Decision {
        decide(Some(E), Request { msn, part }, 6, advance_parts(0.32))
    }

    #[test]
    fn plain_requests_answer_now() {
        assert_eq!(d(None, None), Decision::Now);
    }

    #[test]
    fn a_part_without_msn_is_malformed() {
        assert!(matches!(d(None, Some(1)), Decision::BadRequest(_)));
    }

    #[test]
    fn published_parts_answer_now_however_old() {
        assert_eq!(d(Some(10), Some(2)), Decision::Now);
        assert_eq!(d(Some(3), Some(0)), Decision::Now);
        assert_eq!(d(Some(9), None), Decision::Now);
    }

    #[test]
    fn the_next_part_waits() {
        assert_eq!(
            d(Some(10), Some(3)),
            Decision::Wait(Edge { msn: 10, part: 3 })
        );
        // A whole segment waits for its last part.
        assert_eq!(d(Some(10), None), Decision::Wait(Edge { msn: 10, part: 5 }));
        // Past the last part of a segment: part 0 of the next.
        assert_eq!(
            d(Some(10), Some(6)),
            Decision::Wait(Edge { msn: 11, part: 0 })
        );
    }

    #[test]
    fn too_far_ahead_is_refused() {
        assert_eq!(advance_parts(0.32), 9);
        assert!(matches!(d(Some(13), None), Decision::BadRequest(_)));
        assert!(matches!(d(Some(12), Some(0)), Decision::BadRequest(_)));
        // 9 parts ahead is the limit: edge index 62, want 71 = (11, 5).
        assert_eq!(
            d(Some(11), Some(5)),
            Decision::Wait(Edge { msn: 11, part: 5 })
        );
        assert!(matches!(d(Some(12), Some(0)), Decision::BadRequest(_)));
        assert_eq!(d(Some(12), None), Decision::Wait(Edge { msn: 12, part: 5 }));
    }

    #[test]
    fn before_anything_is_published_the_first_parts_wait() {
        let r = decide(
            None,
            Request {
                msn: Some(0),
                part: Some(0),
            },
            6,
            9,
        );
        assert_eq!(r, Decision::Wait(Edge { msn: 0, part: 0 }));
        assert!(matches!(
            decide(
                None,
                Request {
                    msn: Some(3),
                    part: None
                },
                6,
                9
            ),
            Decision::BadRequest(_)
        ));
    }
}

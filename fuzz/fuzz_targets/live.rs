//! Untrusted live input through its parsers: an Icecast source request head (with the sniffing
//! the accept loop does and a chunked body), and the LL-HLS delivery directives of a playlist
//! URL with the blocking-reload decision they lead to. Checks the invariants each promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veza_hls::{advance_parts, decide, parse_query, Decision, Edge};
use veza_stream::icecast::head::{parse, sniff, Dechunk, MAX_HEAD};

fuzz_target!(|input: (&[u8], &str, u64, u32, &[u8])| {
    let (head, query, msn, part, body) = input;
    // Sniffing decides on a prefix and never claims what parse would not see as a source.
    if let Some(true) = sniff(head) {
        assert!(head.starts_with(b"SOURCE ") || head.starts_with(b"PUT /ingest/"));
    }
    if let Ok(h) = parse(head) {
        assert!(h.len <= head.len() && h.len <= MAX_HEAD);
        assert!(!h.channel.is_empty() && !h.channel.contains('/'));
        assert!(h.user_agent.chars().count() <= 256);
    }
    // A chunked body split anywhere decodes the same.
    let (mut a, mut b) = (Dechunk::default(), Dechunk::default());
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    let whole = a.push(body, &mut out_a);
    let cut = body.len() / 2;
    let split = b
        .push(&body[..cut], &mut out_b)
        .and_then(|_| b.push(&body[cut..], &mut out_b));
    if whole.is_ok() && split.is_ok() {
        assert_eq!(out_a, out_b);
    }
    assert!(out_a.len() <= body.len());

    if let Ok((req, _skip)) = parse_query(query) {
        let edge = Edge {
            msn: msn % (1 << 40),
            part: part % 6,
        };
        match decide(Some(edge), req, 6, advance_parts(0.32)) {
            Decision::Now => {}
            Decision::Wait(w) => {
                assert!(w > edge);
                assert!(w.part < 6);
                assert!(w.msn <= edge.msn + 3);
            }
            Decision::BadRequest(why) => assert!(!why.is_empty()),
        }
    }
});

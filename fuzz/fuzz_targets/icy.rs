//! Arbitrary titles, chunk sizes and metadata intervals through the ICY writer, arbitrary bytes
//! through the relay's ICY reader, and arbitrary AudioSpecificConfigs and access units through
//! the ADTS framer. Nothing may panic; a reader that strips the metadata as a player does gets
//! exactly the audio bytes back, and every block it meets is well formed (its length byte times
//! 16 bytes, holding `StreamTitle='…';`); the relay's reader, fed the same stream cut anywhere,
//! gets the same audio; fed garbage, it never gives more audio than it was given.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use veza_hls::{icy_block, stream_title, Adts, IcyReader, IcyWriter};

#[derive(Debug, Arbitrary)]
struct Input {
    metaint: u16,
    chunks: Vec<(Vec<u8>, bool)>,
    titles: Vec<String>,
    asc: Vec<u8>,
    unit: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let metaint = usize::from(input.metaint.max(1));
    let mut w = IcyWriter::new(metaint);
    let mut out = Vec::new();
    let mut audio = Vec::new();
    let mut version = 0u64;
    let titles = input.titles;
    for (i, (chunk, change)) in input.chunks.iter().enumerate() {
        if *change {
            version += 1;
        }
        let title = titles
            .get(i % titles.len().max(1))
            .cloned()
            .unwrap_or_default();
        let v = version;
        w.write(chunk, &|| (v, title.clone()), &mut out);
        audio.extend_from_slice(chunk);
    }
    // Strip the metadata as a player does.
    let mut got = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let n = metaint.min(out.len() - at);
        got.extend_from_slice(&out[at..at + n]);
        at += n;
        if at < out.len() {
            let len = usize::from(out[at]) * 16;
            let block = &out[at + 1..at + 1 + len];
            if len > 0 {
                assert!(block.starts_with(b"StreamTitle='"));
                let text = block.split(|&b| b == 0).next().unwrap();
                assert!(text.ends_with(b"';"));
            }
            at += 1 + len;
        }
    }
    assert_eq!(got, audio);
    // The relay's reader, the stream cut at arbitrary points.
    let mut reader = IcyReader::new(metaint);
    let mut relayed = Vec::new();
    let mut rest = &out[..];
    for (chunk, _) in &input.chunks {
        let n = (chunk.len() % 97 + 1).min(rest.len());
        reader.push(&rest[..n], &mut relayed);
        rest = &rest[n..];
    }
    reader.push(rest, &mut relayed);
    assert_eq!(relayed, audio);
    // Garbage: bounded, never a panic.
    let mut garbage = IcyReader::new(usize::from(input.metaint));
    let mut g = Vec::new();
    garbage.push(&input.unit, &mut g);
    assert!(g.len() <= input.unit.len());
    let _ = stream_title(&input.asc);
    for t in &titles {
        let b = icy_block(t);
        assert_eq!(b.len(), 1 + usize::from(b[0]) * 16);
    }
    if let Ok(a) = Adts::new(&input.asc) {
        if let Ok(f) = a.frame(&input.unit) {
            assert_eq!(f.len(), input.unit.len() + 7);
            let len = ((usize::from(f[3]) & 3) << 11)
                | (usize::from(f[4]) << 3)
                | (usize::from(f[5]) >> 5);
            assert_eq!(len, f.len());
        }
    }
});

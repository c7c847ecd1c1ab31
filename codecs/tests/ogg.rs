//! Chained Ogg streams, as an Icecast source sends them when the title changes: every link's
//! comment header gives its title, pushed in uneven pieces, and the audio of every link decodes.

use std::path::PathBuf;
use veza_codecs::{Limits, OggTitles, PushDecoder};

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/audio")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn titles(chain: &[u8], piece: usize) -> Vec<(Option<String>, Option<String>)> {
    let mut w = OggTitles::new();
    chain
        .chunks(piece)
        .flat_map(|c| w.push(c))
        .map(|t| (t.artist, t.title))
        .collect()
}

#[test]
fn every_link_of_a_real_chain_gives_its_title() {
    for (a, b) in [
        (
            "formats/ogg_vorbis_q5_stereo_44k.ogg",
            "third_party/beets/full.ogg",
        ),
        (
            "formats/opus_96k_stereo_48k.opus",
            "third_party/beets/full.opus",
        ),
    ] {
        let mut chain = fixture(a);
        chain.extend(fixture(b));
        chain.extend(fixture(a));
        let expected = vec![
            (
                Some("Fixture Generator".into()),
                Some("Fixture Clip".into()),
            ),
            (Some("the artist".into()), Some("full".into())),
            (
                Some("Fixture Generator".into()),
                Some("Fixture Clip".into()),
            ),
        ];
        for piece in [1, 517, 4096, chain.len()] {
            assert_eq!(
                titles(&chain, piece),
                expected,
                "{a} + {b} in pieces of {piece}"
            );
        }
    }
}

#[test]
fn a_link_without_comments_gives_nothing() {
    // bear_vorbis.ogg carries a comment header with no title or artist.
    let found = titles(&fixture("third_party/androidx-media/bear_vorbis.ogg"), 1000);
    assert_eq!(found, vec![(None, None)]);
}

/// Frames decoded by a push decoder fed `bytes` in pieces of `piece`: before the end, and in all.
fn push_frames(bytes: &[u8], piece: usize) -> (usize, usize) {
    let mut d = PushDecoder::new(Some("ogg"), Limits::default());
    let mut before_end = 0;
    for c in bytes.chunks(piece) {
        before_end += d.push(c).unwrap().iter().map(|p| p.frames()).sum::<usize>();
    }
    let rest: usize = d.finish().unwrap().iter().map(|p| p.frames()).sum();
    (before_end, before_end + rest)
}

#[test]
fn the_push_decoder_plays_every_link_and_holds_back_pages_not_the_reserve() {
    for (file, rate) in [
        ("formats/ogg_vorbis_q5_stereo_44k.ogg", 44_100),
        ("formats/opus_96k_stereo_48k.opus", 48_000),
    ] {
        let one = fixture(file);
        let (_, single) = push_frames(&one, 1000);
        let chain: Vec<u8> = one.iter().chain(&one).chain(&one).copied().collect();
        let (before_end, all) = push_frames(&chain, 1000);
        assert_eq!(all, 3 * single, "{file}: every link decodes");
        // What waits for more bytes is the last page or two (measured: 0.59 s of the Vorbis
        // fixture's 0.3 s pages, 1.99 s of opusenc's 1 s ones), not the 68 KiB reserve (4.5 s
        // of the Vorbis fixture).
        let held = (all - before_end) as f64 / rate as f64;
        assert!(held <= 2.5, "{file}: {held:.2} s held back");
    }
}

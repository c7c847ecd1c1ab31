//! Untrusted WebRTC input through its parsers: SDP offers (for WHEP and WHIP), trickle-ICE
//! fragments, the datagram classifier and the STUN `USERNAME` reader of the shared UDP port, and
//! the In-band Ogg title watcher fed by a live source. Checks the invariants each promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veza_codecs::OggTitles;
use veza_stream::webrtc::wire::{
    check_offer, classify, parse_fragment, stun_local_ufrag, Datagram, Direction, MAX_SDP,
};

fuzz_target!(|input: (&str, &str, &[u8], &[u8])| {
    let (sdp, frag, datagram, ogg) = input;
    for want in [Direction::Recv, Direction::Send] {
        if let Ok(o) = check_offer(sdp, want) {
            assert!(sdp.len() <= MAX_SDP);
            assert!(!o.audio_directions.is_empty());
            assert!(sdp.contains(&format!("a=ice-ufrag:{}", o.ufrag)));
        }
    }
    if let Ok(f) = parse_fragment(frag) {
        assert!(f.candidates.iter().all(|c| c.starts_with("candidate:")));
    }
    if let Some(ufrag) = stun_local_ufrag(datagram) {
        assert_eq!(classify(datagram), Datagram::Stun);
        assert!(!ufrag.contains(':'));
    }
    // Titles come out the same whether the stream arrives whole or in two pieces.
    let whole = OggTitles::new().push(ogg);
    let mut split = OggTitles::new();
    let cut = ogg.len() / 3;
    let mut pieces = split.push(&ogg[..cut]);
    pieces.extend(split.push(&ogg[cut..]));
    assert_eq!(whole, pieces);
});

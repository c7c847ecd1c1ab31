//! The pure checks of what reaches the WebRTC front: SDP offers before they are negotiated,
//! trickle-ICE fragments, and the datagrams on the shared UDP port. No I/O, no clock: fuzzed
//! (`fuzz/fuzz_targets/webrtc.rs`).

/// Largest SDP offer or fragment accepted. Browser offers are 3–8 KiB.
pub const MAX_SDP: usize = 32 << 10;

/// Why an offer is refused before negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferError {
    /// Not SDP at all (400).
    Malformed(&'static str),
    /// SDP without what we need (422).
    Unsupported(&'static str),
}

impl OfferError {
    /// The detail of the problem document.
    pub fn detail(&self) -> &'static str {
        match self {
            OfferError::Malformed(d) | OfferError::Unsupported(d) => d,
        }
    }
}

/// What an offer asks for, as far as the checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The audio sections' directions (`sendrecv` when unsaid).
    pub audio_directions: Vec<String>,
    /// The offerer's ICE ufrag (the first one given).
    pub ufrag: String,
}

/// Checks an SDP offer (RFC 8866 lines) for WHEP or WHIP: an audio section that carries Opus at
/// 48 kHz, ICE credentials and a DTLS fingerprint. `want` is the direction the audio must allow
/// from the offerer's side: `recv` for a WHEP listener, `send` for a WHIP publisher.
pub fn check_offer(sdp: &str, want: Direction) -> Result<Offer, OfferError> {
    if sdp.len() > MAX_SDP {
        return Err(OfferError::Malformed("the offer is larger than 32 KiB"));
    }
    if !sdp.starts_with("v=0") {
        return Err(OfferError::Malformed("an SDP offer starts with v=0"));
    }
    let mut audio = Vec::new();
    let mut section: Option<Section> = None;
    let mut ufrag: Option<String> = None;
    let mut fingerprint = false;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(OfferError::Malformed("every SDP line is <letter>=<value>"));
        }
        if let Some(m) = line.strip_prefix("m=") {
            if let Some(s) = section.take() {
                audio.extend(s.finish());
            }
            let mut f = m.split(' ');
            let kind = f.next().unwrap_or_default();
            section = Some(Section {
                audio: kind == "audio",
                opus: false,
                direction: "sendrecv".into(),
                rejected: f.next() == Some("0"),
            });
            continue;
        }
        if let Some(u) = line.strip_prefix("a=ice-ufrag:") {
            ufrag.get_or_insert_with(|| u.to_string());
        }
        fingerprint |= line.starts_with("a=fingerprint:");
        let Some(s) = section.as_mut() else { continue };
        if let Some(map) = line.strip_prefix("a=rtpmap:") {
            let codec = map.split_once(' ').map_or("", |(_, c)| c);
            s.opus |= codec.to_ascii_lowercase().starts_with("opus/48000");
        } else if let Some(d) = line
            .strip_prefix("a=")
            .filter(|d| matches!(*d, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
        {
            s.direction = d.to_string();
        }
    }
    if let Some(s) = section.take() {
        audio.extend(s.finish());
    }
    if audio.is_empty() {
        return Err(OfferError::Unsupported("the offer has no audio section"));
    }
    if !audio.iter().any(|(opus, _)| *opus) {
        return Err(OfferError::Unsupported(
            "the offer's audio does not include Opus at 48 kHz",
        ));
    }
    let Some(ufrag) = ufrag.filter(|_| fingerprint) else {
        return Err(OfferError::Unsupported(
            "the offer lacks ICE credentials or a DTLS fingerprint (DTLS-SRTP is required)",
        ));
    };
    let usable = audio.iter().any(|(opus, d)| *opus && want.allows(d));
    if !usable {
        return Err(OfferError::Unsupported(match want {
            Direction::Recv => "the offer's audio cannot receive (WHEP needs recvonly or sendrecv)",
            Direction::Send => "the offer's audio does not send (WHIP needs sendonly or sendrecv)",
        }));
    }
    Ok(Offer {
        audio_directions: audio.into_iter().map(|(_, d)| d).collect(),
        ufrag,
    })
}

/// One media section while it is read.
struct Section {
    audio: bool,
    opus: bool,
    direction: String,
    rejected: bool,
}

impl Section {
    fn finish(self) -> Option<(bool, String)> {
        (self.audio && !self.rejected).then_some((self.opus, self.direction))
    }
}

/// The direction the offerer's audio must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The offerer receives (WHEP).
    Recv,
    /// The offerer sends (WHIP).
    Send,
}

impl Direction {
    fn allows(self, d: &str) -> bool {
        match self {
            Direction::Recv => matches!(d, "recvonly" | "sendrecv"),
            Direction::Send => matches!(d, "sendonly" | "sendrecv"),
        }
    }
}

/// What a trickle-ICE PATCH body (RFC 8840 `application/trickle-ice-sdpfrag`) holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The `a=ice-ufrag` it names, if any.
    pub ufrag: Option<String>,
    /// The `a=ice-pwd` it names, if any.
    pub pwd: Option<String>,
    /// `candidate:…` values (without `a=`).
    pub candidates: Vec<String>,
    /// Whether it says `a=end-of-candidates`.
    pub end: bool,
}

/// Reads a trickle-ICE fragment.
pub fn parse_fragment(body: &str) -> Result<Fragment, &'static str> {
    if body.len() > MAX_SDP {
        return Err("the fragment is larger than 32 KiB");
    }
    let mut f = Fragment::default();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if !line.is_char_boundary(2) || line.as_bytes()[1] != b'=' {
            return Err("every line of a fragment is <letter>=<value>");
        }
        if let Some(u) = line.strip_prefix("a=ice-ufrag:") {
            f.ufrag = Some(u.to_string());
        } else if let Some(p) = line.strip_prefix("a=ice-pwd:") {
            f.pwd = Some(p.to_string());
        } else if let Some(c) = line.strip_prefix("a=candidate:") {
            f.candidates.push(format!("candidate:{c}"));
        } else if line == "a=end-of-candidates" {
            f.end = true;
        }
    }
    Ok(f)
}

/// What a datagram on the shared port is, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// STUN (ICE checks and consent).
    Stun,
    /// DTLS.
    Dtls,
    /// RTP or RTCP (SRTP).
    Rtp,
    /// Nothing WebRTC sends.
    Other,
}

/// Classifies a datagram (RFC 7983 §7: 0–3 STUN, 20–63 DTLS, 128–191 RTP/RTCP).
pub fn classify(d: &[u8]) -> Datagram {
    match d.first() {
        Some(0..=3) if d.len() >= 20 => Datagram::Stun,
        Some(20..=63) => Datagram::Dtls,
        Some(128..=191) if d.len() >= 12 => Datagram::Rtp,
        _ => Datagram::Other,
    }
}

/// The receiver's ufrag in a STUN Binding request's `USERNAME` (RFC 8445 §7.2.2:
/// `receiver:sender`), which tells which session a first check belongs to.
pub fn stun_local_ufrag(d: &[u8]) -> Option<&str> {
    // RFC 5389 §6: type, length, magic cookie, transaction id; then attributes.
    if d.len() < 20 || d[0] & 0xC0 != 0 || d[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let len = u16::from_be_bytes([d[2], d[3]]) as usize;
    let body = d.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let n = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + n)?;
        if kind == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split_once(':').map(|(local, _)| local);
        }
        at += 4 + n.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_RECV: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
        a=fingerprint:sha-256 AA:BB\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
        c=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn a_browser_listener_offer_passes() {
        let o = check_offer(CHROME_RECV, Direction::Recv).unwrap();
        assert_eq!(o.audio_directions, ["recvonly"]);
        assert_eq!(o.ufrag, "abcd");
        // The same offer cannot publish.
        assert!(matches!(
            check_offer(CHROME_RECV, Direction::Send),
            Err(OfferError::Unsupported(_))
        ));
    }

    #[test]
    fn offers_without_audio_or_opus_or_dtls_are_unsupported() {
        let video = CHROME_RECV.replace("m=audio", "m=video");
        assert_eq!(
            check_offer(&video, Direction::Recv),
            Err(OfferError::Unsupported("the offer has no audio section"))
        );
        let pcmu = CHROME_RECV.replace("a=rtpmap:111 opus/48000/2\r\n", "");
        assert!(check_offer(&pcmu, Direction::Recv)
            .unwrap_err()
            .detail()
            .contains("Opus"));
        let plain = CHROME_RECV.replace("a=fingerprint:sha-256 AA:BB\r\n", "");
        assert!(check_offer(&plain, Direction::Recv)
            .unwrap_err()
            .detail()
            .contains("DTLS"));
        let rejected = CHROME_RECV.replace("m=audio 9", "m=audio 0");
        assert!(check_offer(&rejected, Direction::Recv).is_err());
    }

    #[test]
    fn garbage_and_oversized_offers_are_malformed() {
        for bad in ["", "hello", "v=0\r\nnot a line\r\n", "v=0\r\n\u{e9}=x\r\n"] {
            assert!(
                matches!(
                    check_offer(bad, Direction::Recv),
                    Err(OfferError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        let big = format!("{CHROME_RECV}{}", "a=x\r\n".repeat(8000));
        assert_eq!(
            check_offer(&big, Direction::Recv),
            Err(OfferError::Malformed("the offer is larger than 32 KiB"))
        );
    }

    #[test]
    fn fragments_give_candidates_and_credentials() {
        let f = parse_fragment(
            "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\n\
             a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n\
             a=end-of-candidates\r\n",
        )
        .unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(
            f.candidates,
            ["candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"]
        );
        assert!(f.end);
        assert!(parse_fragment("x").is_err());
        assert!(parse_fragment("\u{e9}x").is_err());
    }

    #[test]
    fn datagrams_are_told_apart_and_stun_names_its_session() {
        // A Binding request with USERNAME "srv1:cli2" (9 bytes, padded to 12).
        let mut d = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42];
        d.extend_from_slice(&[7; 12]);
        d.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        d.extend_from_slice(b"srv1:cli2\0\0\0");
        assert_eq!(classify(&d), Datagram::Stun);
        assert_eq!(stun_local_ufrag(&d), Some("srv1"));
        // Truncated or without the cookie: nothing.
        assert_eq!(stun_local_ufrag(&d[..30]), None);
        let mut no_cookie = d.clone();
        no_cookie[4] = 0;
        assert_eq!(stun_local_ufrag(&no_cookie), None);
        assert_eq!(classify(&[22, 254, 253]), Datagram::Dtls);
        assert_eq!(classify(&[0x80; 12]), Datagram::Rtp);
        assert_eq!(classify(b"GET / HTTP/1.1"), Datagram::Other);
        assert_eq!(classify(&[]), Datagram::Other);
    }
}

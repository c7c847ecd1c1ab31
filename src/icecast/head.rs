//! The request head of an Icecast source client, parsed without I/O so it can be tested and
//! fuzzed on bytes.
//!
//! Icecast sources speak HTTP's request syntax but not its framing: `SOURCE /mount HTTP/1.0`
//! (libshout before 2.4, BUTT, older Mixxx) or `PUT /mount HTTP/1.1` (Icecast 2.4 and later,
//! ffmpeg, Liquidsoap), then audio bytes until the connection closes, usually with neither
//! `Content-Length` nor chunked encoding. So the server reads the head here and the body itself.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The longest head accepted.
pub const MAX_HEAD: usize = 16 << 10;

/// The source methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `PUT` (Icecast 2.4).
    Put,
    /// `SOURCE` (legacy).
    Source,
}

/// What a source declares about itself (`ice-*` headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ice {
    /// `ice-name`.
    pub name: Option<String>,
    /// `ice-description`.
    pub description: Option<String>,
    /// `ice-genre`.
    pub genre: Option<String>,
    /// `ice-public`: `1` or `0`.
    pub public: Option<bool>,
}

/// A parsed source request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `PUT` or `SOURCE`.
    pub method: Method,
    /// The mount's channel id, as written in the path (`/ingest/{id}`).
    pub channel: String,
    /// Basic credentials: user and password.
    pub credentials: Option<(String, String)>,
    /// `Content-Type`, lower-cased, without parameters.
    pub content_type: Option<String>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `User-Agent`.
    pub user_agent: String,
    /// The `ice-*` headers.
    pub ice: Ice,
    /// Bytes of the head, including the blank line.
    pub len: usize,
}

/// Why a head was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Incomplete,
    /// Over [`MAX_HEAD`] bytes.
    TooLarge,
    /// Over [`MAX_FIELDS`] header fields.
    TooManyFields,
    /// Not a request line and headers.
    Malformed(&'static str),
    /// Another method: 405.
    Method,
    /// Not under `/ingest/`: 404.
    NotFound,
}

/// Whether a connection's first bytes are a source request: `Some(true)` for `SOURCE ` or
/// `PUT /ingest/`, `Some(false)` for anything else, `None` while they are a prefix of one.
pub fn sniff(first: &[u8]) -> Option<bool> {
    const PATTERNS: [&[u8]; 2] = [b"SOURCE ", b"PUT /ingest/"];
    let mut undecided = false;
    for p in PATTERNS {
        let n = first.len().min(p.len());
        if first[..n] == p[..n] {
            if n == p.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

/// The codec family a source content type carries, as the decoder's extension hint:
/// `mp3`, `aac` (ADTS), `ogg` (Vorbis, Opus or FLAC in Ogg) or `flac`. `None`: unsupported.
pub fn format_of(content_type: &str) -> Option<&'static str> {
    match content_type {
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg" => Some("mp3"),
        "audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/x-hx-aac-adts" => Some("aac"),
        "application/ogg" | "audio/ogg" | "audio/x-ogg" | "audio/opus" | "audio/vorbis"
        | "audio/x-vorbis" | "audio/x-vorbis+ogg" | "audio/x-opus+ogg" => Some("ogg"),
        "audio/flac" | "audio/x-flac" => Some("flac"),
        _ => None,
    }
}

/// Header fields a head may have. Sources send many `ice-*` fields (BUTT and libshout send a
/// dozen, some encoders several dozen); the 16 KiB head bounds what they cost.
pub const MAX_FIELDS: usize = 256;

/// The protocol libshout's legacy `SOURCE` requests name: `SOURCE /mount ICE/1.0`.
const ICE_VERSION: &[u8] = b" ICE/1.0";

/// Parses a head from the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Head, HeadError> {
    // httparse knows only HTTP versions: an ICE/1.0 request line is read as HTTP/1.0, and the
    // head's length given back in the client's bytes.
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    let ice = line_end.filter(|&e| buf[..e].ends_with(ICE_VERSION));
    let patched;
    let (bytes, shift) = match ice {
        Some(e) => {
            let mut v = Vec::with_capacity(buf.len() + 1);
            v.extend_from_slice(&buf[..e - ICE_VERSION.len()]);
            v.extend_from_slice(b" HTTP/1.0");
            v.extend_from_slice(&buf[e..]);
            patched = v;
            (patched.as_slice(), 1)
        }
        None => (buf, 0),
    };
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n - shift,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Err(HeadError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(_) => return Err(HeadError::Malformed("not an HTTP request head")),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let method = match req.method {
        Some("PUT") => Method::Put,
        Some("SOURCE") => Method::Source,
        _ => return Err(HeadError::Method),
    };
    let path = req.path.unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let channel = path
        .strip_prefix("/ingest/")
        .filter(|c| !c.is_empty() && !c.contains('/') && c.len() <= 64)
        .ok_or(HeadError::NotFound)?
        .to_string();
    let mut head = Head {
        method,
        channel,
        credentials: None,
        content_type: None,
        expect_continue: false,
        chunked: false,
        user_agent: String::new(),
        ice: Ice::default(),
        len,
    };
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HeadError::Malformed("a header is not UTF-8"))?
            .trim();
        let text = || Some(crate::util::clean_text(value, 256)).filter(|t| !t.is_empty());
        match h.name.to_ascii_lowercase().as_str() {
            "authorization" => head.credentials = basic(value),
            "content-type" => {
                head.content_type = value
                    .split(';')
                    .next()
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty())
            }
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "transfer-encoding" => head.chunked = value.eq_ignore_ascii_case("chunked"),
            "user-agent" => head.user_agent = crate::util::clean_text(value, 256),
            "ice-name" => head.ice.name = text(),
            "ice-description" => head.ice.description = text(),
            "ice-genre" => head.ice.genre = text(),
            "ice-public" => {
                head.ice.public = Some(value == "1" || value.eq_ignore_ascii_case("yes"))
            }
            _ => {}
        }
    }
    Ok(head)
}

/// Basic credentials (RFC 7617): user and password.
pub fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = B64.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Undoes `Transfer-Encoding: chunked` on a stream of pieces (RFC 9112 7.1), keeping its state
/// between pieces.
#[derive(Debug, Default)]
pub struct Dechunk {
    /// Bytes of data left in the current chunk.
    left: u64,
    /// The size line being read.
    line: Vec<u8>,
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data,
    DataEnd,
    Done,
}

impl Dechunk {
    /// Appends the data in `input` to `out`. Errors on a malformed size line.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 1024 {
                            return Err("a chunk size line is too long");
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let line = std::str::from_utf8(&self.line).map_err(|_| "bad chunk size")?;
                    let size = line.split(';').next().unwrap_or_default().trim();
                    self.left = u64::from_str_radix(size, 16).map_err(|_| "bad chunk size")?;
                    self.line.clear();
                    self.state = if self.left == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data
                    };
                }
                ChunkState::Data => {
                    let n = (self.left.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.left -= n as u64;
                    if self.left == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    // The CRLF after the data.
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        self.state = ChunkState::Size;
                    } else if b != b'\r' {
                        return Err("chunk data is not followed by CRLF");
                    }
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether the last chunk has been read.
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUT: &[u8] = b"PUT /ingest/0190a0a0-0000-7000-8000-000000000001 HTTP/1.1\r\n\
        Host: localhost\r\nAuthorization: Basic c291cmNlOmsxMjM=\r\n\
        Content-Type: audio/mpeg; charset=x\r\nExpect: 100-continue\r\nUser-Agent: Lavf/60\r\n\
        Ice-Name: My Show\r\nice-public: 1\r\nice-genre: Jazz\r\n\r\nAUDIO";

    #[test]
    fn an_icecast_put_is_parsed() {
        let h = parse(PUT).unwrap();
        assert_eq!(h.method, Method::Put);
        assert_eq!(h.channel, "0190a0a0-0000-7000-8000-000000000001");
        assert_eq!(h.credentials, Some(("source".into(), "k123".into())));
        assert_eq!(h.content_type.as_deref(), Some("audio/mpeg"));
        assert!(h.expect_continue && !h.chunked);
        assert_eq!(h.user_agent, "Lavf/60");
        assert_eq!(h.ice.name.as_deref(), Some("My Show"));
        assert_eq!(h.ice.public, Some(true));
        assert_eq!(h.ice.genre.as_deref(), Some("Jazz"));
        assert_eq!(&PUT[h.len..], b"AUDIO");
    }

    #[test]
    fn a_legacy_source_is_parsed() {
        let h = parse(b"SOURCE /ingest/abc HTTP/1.0\r\nAuthorization: Basic c291cmNlOng=\r\n\r\n")
            .unwrap();
        assert_eq!(h.method, Method::Source);
        assert_eq!(h.content_type, None);
        assert_eq!(h.credentials, Some(("source".into(), "x".into())));
    }

    #[test]
    fn libshout_s_ice_request_line_and_many_ice_fields_are_taken() {
        let mut raw = b"SOURCE /ingest/abc ICE/1.0\r\nAuthorization: Basic c291cmNlOng=\r\n\
            content-type: audio/mpeg\r\nice-name: Show\r\n"
            .to_vec();
        for i in 0..60 {
            raw.extend_from_slice(format!("ice-x-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        }
        raw.extend_from_slice(b"\r\nAUDIO");
        let h = parse(&raw).unwrap();
        assert_eq!(h.method, Method::Source);
        assert_eq!(h.credentials, Some(("source".into(), "x".into())));
        assert_eq!(h.ice.name.as_deref(), Some("Show"));
        assert_eq!(&raw[h.len..], b"AUDIO");
        // Past the field cap: its own error, not "too large".
        let mut many = b"PUT /ingest/a HTTP/1.1\r\n".to_vec();
        for _ in 0..MAX_FIELDS + 1 {
            many.extend_from_slice(b"a: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(HeadError::TooManyFields));
        // Titles and names lose bidirectional overrides and line separators.
        let h = parse(b"PUT /ingest/a HTTP/1.1\r\nice-name: A\xe2\x80\xaeB\xe2\x80\xa8C\r\n\r\n")
            .unwrap();
        assert_eq!(h.ice.name.as_deref(), Some("ABC"));
    }

    #[test]
    fn bad_heads_are_told_apart() {
        assert_eq!(
            parse(b"PUT /ingest/abc HTTP/1.1\r\nHost"),
            Err(HeadError::Incomplete)
        );
        assert_eq!(
            parse(b"GET /ingest/abc HTTP/1.1\r\n\r\n"),
            Err(HeadError::Method)
        );
        assert_eq!(
            parse(b"PUT /other HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotFound)
        );
        assert_eq!(
            parse(b"PUT /ingest/ HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotFound)
        );
        assert!(matches!(
            parse(b"\x00\x01 junk\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let mut big = b"PUT /ingest/a HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn sniffing_decides_on_the_first_bytes() {
        assert_eq!(sniff(b"SOURCE /x"), Some(true));
        assert_eq!(sniff(b"PUT /ingest/x"), Some(true));
        assert_eq!(sniff(b"PU"), None);
        assert_eq!(sniff(b"PUT /v1/x"), Some(false));
        assert_eq!(sniff(b"GET / HTTP/1.1"), Some(false));
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn content_types_map_to_formats() {
        assert_eq!(format_of("audio/mpeg"), Some("mp3"));
        assert_eq!(format_of("audio/aac"), Some("aac"));
        assert_eq!(format_of("application/ogg"), Some("ogg"));
        assert_eq!(format_of("audio/flac"), Some("flac"));
        assert_eq!(format_of("video/mp4"), None);
    }

    #[test]
    fn chunked_bodies_are_undone_across_pieces() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut d = Dechunk::default();
            let mut out = Vec::new();
            d.push(&body[..split], &mut out).unwrap();
            d.push(&body[split..], &mut out).unwrap();
            assert_eq!(out, b"Wikipedia");
            assert!(d.done());
        }
        let mut d = Dechunk::default();
        assert!(d.push(b"zz\r\n", &mut Vec::new()).is_err());
    }
}

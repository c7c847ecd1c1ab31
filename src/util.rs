//! `util`: the small helpers every layer shares and none owns: the wall clock in Unix units,
//! RFC 3339 timestamps, lowercase hex and client text made safe to show. It imports nothing of
//! the crate.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds now: the time unit of every row in the metadata store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 with millisecond precision, in UTC (`2026-12-02T09:41:10.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Text a client sent for others to read (a title, a stream's name), made safe to show: control
/// characters, bidirectional overrides and isolates (which reorder what follows them, RFC 9839
/// "problematic" code points), line and paragraph separators and byte-order marks are dropped,
/// and at most `max` characters are kept. Joiners stay: emoji sequences need them.
pub fn clean_text(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(
                    c,
                    '\u{061C}'
                        | '\u{200E}'
                        | '\u{200F}'
                        | '\u{202A}'..='\u{202E}'
                        | '\u{2066}'..='\u{2069}'
                        | '\u{2028}'
                        | '\u{2029}'
                        | '\u{FEFF}'
                )
        })
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// `s` percent-encoded for a URL's query (RFC 3986 2.3: everything but the unreserved
/// characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes a secret to `path` whole or not at all (a temporary file renamed over it), readable by
/// its owner only.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

/// Kernel buffer asked for on a UDP socket, each way (the kernel caps it at
/// `net.core.rmem_max`/`wmem_max`). With the default (about 208 KiB) a burst of datagrams, a
/// QUIC send window or many WebRTC handshakes at once, overflows it and is dropped.
pub const UDP_BUFFER: usize = 4 << 20;

/// Binds a non-blocking UDP socket with [`UDP_BUFFER`] kernel buffers.
pub fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// An RFC 9457 problem document: the body of every error answer, whichever code writes the
/// response (the HTTP handlers' `Problem`, the Icecast source port, the accept loop's refusal).
/// `kind` becomes the problem `type`, `https://veza.stream/problems/<kind>`.
pub fn problem_json(kind: &str, title: &str, status: u16, detail: &str) -> String {
    serde_json::json!({
        "type": format!("https://veza.stream/problems/{kind}"),
        "title": title,
        "status": status,
        "detail": detail,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shown_text_loses_what_reorders_or_breaks_lines() {
        assert_eq!(
            super::clean_text("Artist \u{202E}gnoS\u{202C} - Title\u{2028}x\u{2069}", 100),
            "Artist gnoS - Titlex"
        );
        assert_eq!(super::clean_text("\u{FEFF}a\tb\r\nc", 100), "abc");
        assert_eq!(super::clean_text("👨\u{200D}👩 ok", 100), "👨\u{200D}👩 ok");
        assert_eq!(super::clean_text("abcdef", 3), "abc");
    }

    #[test]
    fn timestamps_and_hex_have_one_spelling() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(super::rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::hex(&[0, 0xab, 0x10]), "00ab10");
    }
}

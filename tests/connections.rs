//! Connections that try to hold the server: slowloris heads, a body that stalls, idle keep-alives,
//! 20 000 idle connections from one address, a client that half-closes, HTTP/2's floods
//! (CONTINUATION frames without end, rapid reset) and QUIC's (handshakes left half-done, more
//! connections than an address may hold). Raw sockets on loopback; `/healthz` must keep answering
//! throughout.

mod common;

use common::server::{Db, Server};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn addr(s: &Server) -> SocketAddr {
    s.url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}

/// Reads until the server closes the connection (or resets it); returns what it sent. Bounded:
/// a connection the server never closes fails the test after `within`.
async fn until_closed(c: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all)
        .await
        .expect("the server closes the connection");
    got
}

async fn healthz(s: &Server) -> u16 {
    s.client()
        .get(format!("{}/healthz", s.url))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn short_timeouts() -> Server {
    Server::start(
        Db::Sqlite,
        &[
            ("VEZA_SERVER__HEADER_TIMEOUT_SECONDS", "1"),
            ("VEZA_SERVER__BODY_IDLE_TIMEOUT_SECONDS", "1"),
            ("VEZA_SERVER__KEEPALIVE_IDLE_SECONDS", "1.5"),
        ],
    )
    .await
}

#[tokio::test]
async fn slowloris_heads_are_cut_and_health_still_answers() {
    let s = short_timeouts().await;
    let mut conns = Vec::new();
    for _ in 0..200 {
        let mut c = TcpStream::connect(addr(&s)).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        conns.push(c);
    }
    // One more byte a while later on each: trickling does not extend the head's deadline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &mut conns {
        let _ = c.write_all(b"X").await;
    }
    assert_eq!(healthz(&s).await, 200);
    for c in &mut conns {
        let got = until_closed(c, Duration::from_secs(20)).await;
        assert!(got.is_empty(), "a half-sent head got an answer");
    }
    assert_eq!(healthz(&s).await, 200);
}

/// With every default (`header_timeout_seconds` 10, `keepalive_idle_seconds` 60), a head that
/// stalls or trickles is cut at the header timeout: on a new connection and on a kept-alive one
/// that already served a request. hyper's own limit would close them at 30 s; the watcher must
/// see the head start, not keep the deadline it computed while the connection was idle.
#[tokio::test]
async fn heads_are_cut_at_the_header_timeout_with_the_default_keep_alive() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let started = std::time::Instant::now();
    let mut stalled = TcpStream::connect(addr(&s)).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut kept = TcpStream::connect(addr(&s)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let trickle = async {
        // One byte of a new head every second on the kept-alive connection.
        for b in b"GET /healthz HTTP/1.1\r\nHost: x".iter().cycle().take(40) {
            if kept.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let ((), got) = tokio::join!(trickle, until_closed(&mut stalled, Duration::from_secs(25)));
    assert!(got.is_empty(), "a half-sent head got an answer");
    let closed = started.elapsed();
    let got = until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(got.is_empty());
    assert!(
        closed < Duration::from_secs(20),
        "closed after {closed:?}: the 10 s header timeout was not applied"
    );
    assert_eq!(healthz(&s).await, 200);
}

#[tokio::test]
async fn a_stalled_body_ends_the_request_and_leaves_nothing() {
    let s = short_timeouts().await;
    let mut c = TcpStream::connect(addr(&s)).await.unwrap();
    let head = format!(
        "POST /v1/tracks?title=Slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: audio/flac\r\nContent-Length: 1000000\r\n\r\n",
        s.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(b"fLaC\0\0\0\x22").await.unwrap();
    // Then nothing: the body idles past its timeout.
    let got = until_closed(&mut c, Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 4"),
        "a stalled body gets a client error: {text}"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM tracks").await,
        0,
        "no track row"
    );
    assert!(s.objects().await.is_empty(), "no partial object");
    assert_eq!(healthz(&s).await, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_is_closed() {
    let s = short_timeouts().await;
    let mut c = TcpStream::connect(addr(&s)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The connection stays open for the next request, then closes once idle past its timeout.
    let rest = until_closed(&mut c, Duration::from_secs(20)).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_half_closed_client_still_gets_its_answer() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let mut c = TcpStream::connect(addr(&s)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    c.shutdown().await.unwrap();
    let got = until_closed(&mut c, Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn twenty_thousand_idle_connections_from_one_address_do_not_starve_others() {
    // The server may hold 4096 descriptors here (its caps are sized from that); the flood comes
    // from 127.0.0.2 and the health checks from 127.0.0.1.
    let mut s = Server::configure(Db::Sqlite, &[]).await;
    s.spawn_under(&["prlimit", "--nofile=4096:4096"]);
    let target = addr(&s);
    let mut held = std::collections::VecDeque::new();
    let mut refused = 0usize;
    for i in 0..20_000 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        match socket.connect(target).await {
            Ok(c) => held.push_back(c),
            Err(_) => refused += 1,
        }
        // This test process may hold 20 000 descriptors itself: let go of the oldest, which
        // the server has long closed to make room.
        if held.len() > 12_000 {
            held.pop_front();
        }
        if i % 2_000 == 1_999 {
            assert_eq!(healthz(&s).await, 200, "after {} connections", i + 1);
        }
    }
    assert_eq!(refused, 0, "accepting never stops");
    assert_eq!(healthz(&s).await, 200);
    // The newest connections are served; the oldest were closed to make room.
    let mut newest = held.pop_back().unwrap();
    newest
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut newest, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    let mut oldest = held.pop_front().unwrap();
    let got = until_closed(&mut oldest, Duration::from_secs(20)).await;
    assert!(got.is_empty(), "the oldest idle connection was closed");
    assert!(!s.log().contains("Too many open files"), "{}", s.log());
}

/// One HTTP/2 frame: length, type, flags, stream and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The frames the server sent: (type, error code for GOAWAY and RST_STREAM, else 0).
fn h2_frame_types(mut bytes: &[u8]) -> Vec<(u8, u32)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len =
            (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2]);
        let payload = &bytes[9..(9 + len).min(bytes.len())];
        let code = |at: usize| {
            payload
                .get(at..at + 4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        frames.push(match bytes[3] {
            0x7 => (0x7, code(4)),
            0x3 => (0x3, code(0)),
            t => (t, 0),
        });
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    frames
}

#[tokio::test]
async fn an_http2_continuation_flood_is_cut_off() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let rss = || {
        std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let mut c = TcpStream::connect(addr(&s)).await.unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    c.write_all(&h2_frame(0x4, 0, 0, &[])).await.unwrap();
    // A request whose header block never ends: HEADERS without END_HEADERS, then CONTINUATION
    // frames of indexed fields (`:method: GET`, 42 bytes of header list each) until 16 MiB.
    c.write_all(&h2_frame(0x1, 0x1, 1, &[0x82, 0x84, 0x86]))
        .await
        .unwrap();
    let continuation = h2_frame(0x9, 0, 1, &[0x82; 16_384]);
    let mut sent = 0;
    for _ in 0..1024 {
        let wrote = tokio::time::timeout(Duration::from_secs(5), c.write_all(&continuation)).await;
        if !matches!(wrote, Ok(Ok(()))) {
            break;
        }
        sent += 1;
    }
    let answer = until_closed(&mut c, Duration::from_secs(30)).await;
    let types = h2_frame_types(&answer);
    // The server answered GOAWAY (PROTOCOL_ERROR, 1, from h2's header-block cap) and closed the
    // connection, long before the 16 MiB were sent, holding no more than its header limit.
    assert!(
        types.contains(&(0x7, 1)),
        "frames {types:?} after {sent} CONTINUATION frames"
    );
    assert!(sent < 1024, "all {sent} CONTINUATION frames were taken");
    assert!(
        rss() < before + 64 * 1024,
        "RSS {} kB, {before} kB before",
        rss()
    );
    assert_eq!(healthz(&s).await, 200);
}

#[tokio::test]
async fn http2_streams_reset_at_once_do_not_pile_up() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let mut c = TcpStream::connect(addr(&s)).await.unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    c.write_all(&h2_frame(0x4, 0, 0, &[])).await.unwrap();
    // Rapid reset (CVE-2023-44487): 20 000 requests, each cancelled as soon as it is sent.
    let mut burst = Vec::new();
    for n in 0..20_000u32 {
        let stream = 2 * n + 1;
        burst.extend(h2_frame(0x1, 0x5, stream, &[0x82, 0x84, 0x86]));
        burst.extend(h2_frame(0x3, 0, stream, &8u32.to_be_bytes()));
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), c.write_all(&burst)).await;
    let answer = until_closed(&mut c, Duration::from_secs(30)).await;
    let types = h2_frame_types(&answer);
    // GOAWAY with ENHANCE_YOUR_CALM (11): the connection is dropped, the server goes on.
    assert!(types.contains(&(0x7, 11)), "frames {types:?}");
    assert_eq!(healthz(&s).await, 200);
}

/// QUIC floods against the HTTP/3 endpoint, with real quinn clients. Some go through a UDP relay
/// that can leave handshakes half-done, as a flood of spoofed Initials would, and that counts the
/// stateless Retry packets the server answers with.
#[cfg(feature = "http3")]
mod quic {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::net::UdpSocket;
    use veza_stream::http3::client::{endpoint, H3};

    /// A long-header packet's connection ids: (destination, source).
    fn long_header_ids(d: &[u8]) -> Option<(&[u8], &[u8])> {
        if d.first()? & 0x80 == 0 {
            return None;
        }
        let dlen = *d.get(5)? as usize;
        let dcid = d.get(6..6 + dlen)?;
        let slen = *d.get(6 + dlen)? as usize;
        let scid = d.get(7 + dlen..7 + dlen + slen)?;
        Some((dcid, scid))
    }

    /// A UDP relay in front of the server. With `stall`, a client's datagrams addressed to a
    /// connection id the server chose are dropped: its first Initial goes through, the rest of
    /// the handshake never does, and the server holds a handshake that will not finish.
    struct Relay {
        addr: SocketAddr,
        /// Retry packets the server sent through the relay.
        retries: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Relay {
        async fn start(server: SocketAddr, stall: bool) -> Relay {
            // Kernel buffers large enough for a burst of 400 Initials.
            let bind = || {
                let std = veza_stream::util::bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
                Arc::new(UdpSocket::from_std(std).unwrap())
            };
            let front = bind();
            let addr = front.local_addr().unwrap();
            let retries = Arc::new(AtomicUsize::new(0));
            let server_ids: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
            let counted = retries.clone();
            let task = tokio::spawn(async move {
                let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
                let mut buf = vec![0u8; 65_536];
                let mut answers = tokio::task::JoinSet::new();
                loop {
                    let Ok((n, client)) = front.recv_from(&mut buf).await else {
                        return;
                    };
                    let d = &buf[..n];
                    if stall {
                        let chosen = match long_header_ids(d) {
                            Some((dcid, _)) => server_ids.lock().unwrap().contains(dcid),
                            None => true,
                        };
                        if chosen {
                            continue;
                        }
                    }
                    let back = match backs.get(&client) {
                        Some(b) => b.clone(),
                        None => {
                            let b = bind();
                            b.connect(server).await.unwrap();
                            let (b2, front, ids, retries) = (
                                b.clone(),
                                front.clone(),
                                server_ids.clone(),
                                counted.clone(),
                            );
                            answers.spawn(async move {
                                let mut buf = vec![0u8; 65_536];
                                while let Ok(n) = b2.recv(&mut buf).await {
                                    let d = &buf[..n];
                                    if let Some((_, scid)) = long_header_ids(d) {
                                        ids.lock().unwrap().insert(scid.to_vec());
                                    }
                                    // Long header, fixed bit, type 3: Retry.
                                    if d[0] & 0xf0 == 0xf0 {
                                        retries.fetch_add(1, Ordering::SeqCst);
                                    }
                                    let _ = front.send_to(d, client).await;
                                }
                            });
                            backs.insert(client, b.clone());
                            b
                        }
                    };
                    let _ = back.send(d).await;
                }
            });
            Relay {
                addr,
                retries,
                task,
            }
        }

        fn retries(&self) -> usize {
            self.retries.load(Ordering::SeqCst)
        }
    }

    /// A GET /healthz over HTTP/3 through `relay`, on a new connection.
    async fn h3_healthz(s: &Server, relay: &Relay) -> Result<u16, String> {
        let ep = endpoint(&s.dev_cert(), false)?;
        let connecting = ep
            .connect(relay.addr, "localhost")
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let mut h3 = H3::over(conn, ep, s.tls_addr().port()).await?;
        Ok(h3.get("/healthz", &[]).await?.status)
    }

    #[tokio::test]
    async fn a_quic_handshake_flood_gets_stateless_retries_and_the_server_goes_on() {
        let s = Server::start_dev_tls(&[
            ("VEZA_SERVER__HEADER_TIMEOUT_SECONDS", "3"),
            ("VEZA_SERVER__MAX_CONNECTIONS", "4096"),
            ("VEZA_SERVER__MAX_CONNECTIONS_PER_IP", "4096"),
        ])
        .await;
        let probe = Relay::start(s.tls_addr(), false).await;
        assert_eq!(h3_healthz(&s, &probe).await, Ok(200));
        assert_eq!(probe.retries(), 0, "no Retry while handshakes are few");

        // 400 handshakes that never finish, as fast as one client can start them.
        let stall = Relay::start(s.tls_addr(), true).await;
        let flood = endpoint(&s.dev_cert(), false).unwrap();
        let pending: Vec<_> = (0..400)
            .map(|_| flood.connect(stall.addr, "localhost").unwrap())
            .collect();
        let held = veza_stream::http3::UNVALIDATED;
        let start = std::time::Instant::now();
        while stall.retries() < 400 - held {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} Retry packets for 400 stalled handshakes",
                stall.retries()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Past the pending-handshake cap every new client proves its address first (the server
        // keeps no state for it until then), and is then served.
        assert_eq!(h3_healthz(&s, &probe).await, Ok(200));
        assert_eq!(probe.retries(), 1, "the probe was asked to retry once");
        assert_eq!(healthz(&s).await, 200, "TCP answers too");

        // The stalled handshakes time out (server.header_timeout_seconds) and give their places
        // back: a new client is served without a Retry again.
        drop(pending);
        flood.close(0u32.into(), b"done");
        let start = std::time::Instant::now();
        loop {
            let before = probe.retries();
            assert_eq!(h3_healthz(&s, &probe).await, Ok(200));
            if probe.retries() == before {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "stalled handshakes never released"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            stall.retries() <= 400,
            "{} Retry packets for 400 handshakes",
            stall.retries()
        );
    }

    #[tokio::test]
    async fn quic_connections_past_the_per_address_cap_are_refused() {
        let s = Server::start_dev_tls(&[("VEZA_SERVER__MAX_CONNECTIONS_PER_IP", "8")]).await;
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut h3 = H3::connect(s.tls_addr(), &s.dev_cert()).await.unwrap();
            assert_eq!(h3.get("/healthz", &[]).await.unwrap().status, 200);
            held.push(h3);
        }
        let refused = H3::connect(s.tls_addr(), &s.dev_cert()).await.err();
        let refused = refused.expect("a ninth connection from one address is refused");
        assert!(refused.contains("refuse"), "{refused}");
        // TCP has its own places; it still answers.
        assert_eq!(healthz(&s).await, 200);
        // A connection that ends gives its place back.
        held.pop().unwrap().close();
        let start = std::time::Instant::now();
        let mut again = loop {
            match H3::connect(s.tls_addr(), &s.dev_cert()).await {
                Ok(h3) => break h3,
                Err(e) => assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the place never came back: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(again.get("/healthz", &[]).await.unwrap().status, 200);
    }
}

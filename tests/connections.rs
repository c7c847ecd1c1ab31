//! Connections that try to hold the server: slowloris heads, a body that stalls, idle keep-alives,
//! 20 000 idle connections from one address, and a client that half-closes. Raw sockets on
//! loopback; `/healthz` must keep answering throughout.

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

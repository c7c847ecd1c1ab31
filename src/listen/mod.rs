//! `listen`: the accept loop, and what bounds each connection.
//!
//! hyper serves each connection: HTTP/1.1 and HTTP/2 by prior knowledge on the plain listener,
//! and over TLS (rustls, ALPN `h2` and `http/1.1`) on the HTTPS one. Around it, this module owns
//! what hyper leaves to the server:
//!
//! - **Timeouts.** A request's head must arrive within `server.header_timeout_seconds` of its
//!   first byte (slowloris); a connection with no request in flight closes after
//!   `server.keepalive_idle_seconds` without a byte; a request body that sends nothing for
//!   `server.body_idle_timeout_seconds` ends in an error for its handler (tower-http's
//!   per-frame body timeout, see `http::router`).
//! - **Caps.** At most `server.max_connections` connections, and `server.max_connections_per_ip`
//!   from one address. Past a cap the oldest idle connection (no request in flight: a keep-alive
//!   or a half-sent head) is closed to make room; only when none is idle does the new connection
//!   get `503` at once. Accepting never stops, even when the process runs out of descriptors: the
//!   oldest idle connection is closed then too.
//! - **HTTP/2.** At most `server.max_concurrent_streams` streams per connection and
//!   `server.max_header_bytes` of header fields per request (the CONTINUATION flood is bounded by
//!   it); streams a client resets before they are answered are capped (rapid reset, CVE-2023-44487),
//!   as are streams the server resets for the client's errors; a PING every 20 s finds dead peers.
//! - **TLS.** The handshake counts as the head of the first request: it must end within
//!   `server.header_timeout_seconds`. Responses advertise HTTP/3 (`Alt-Svc`) when it is on.
//! - **Half-close.** A client that shuts down its sending side after its request still gets the
//!   answer.
//! - **Shutdown.** Accepting stops; connections finish their requests (hyper's graceful shutdown).

use axum::extract::ConnectInfo;
use axum::Router;
use dashmap::DashMap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

mod streams;

pub use streams::Io;
use streams::{Guarded, InFlight, Rewind, Tracked};

/// The connection a request came on, for a handler whose response streams without end (a
/// progressive listener): it can bound the kernel's send buffer, so that a client that stops
/// reading is seen falling behind within a bounded number of bytes, and close the connection,
/// whose response body hyper no longer polls then. In every request's extensions (HTTP/1.1,
/// HTTP/2, over TLS too).
#[derive(Clone)]
pub struct Closer(Arc<Conn>);

impl Closer {
    /// Cancelled to close the connection.
    pub fn token(&self) -> CancellationToken {
        self.0.close.clone()
    }

    /// Sets the connection's kernel send buffer (`SO_SNDBUF`) before its next write.
    pub fn limit_send_buffer(&self, bytes: usize) {
        self.0.send_buffer.store(bytes, Ordering::Release);
    }
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Closer({})", self.0.ip)
    }
}

/// The bounds of every connection (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte to its complete head.
    pub header: Duration,
    /// Without a byte while no request is in flight.
    pub keepalive: Duration,
    /// Connections at once.
    pub max: usize,
    /// Connections at once from one address.
    pub per_ip: usize,
    /// Concurrent HTTP/2 streams on one connection.
    pub streams: u32,
    /// Largest HTTP/2 header field section.
    pub header_bytes: u32,
}

impl Limits {
    /// Defaults sized from the descriptor limit: all but a reserve for files, the metadata store
    /// and storage (a tenth, at least 256), and half of that for one address.
    pub fn sized_for(nofile: u64) -> (usize, usize) {
        let reserve = (nofile / 10).max(256);
        let max = nofile.saturating_sub(reserve).max(64) as usize;
        (max, (max / 2).max(32))
    }
}

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
pub fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// One open connection, as the accept loop and its own task see it.
struct Conn {
    ip: IpAddr,
    /// Requests in flight, including a response body still being sent.
    inflight: AtomicUsize,
    /// Milliseconds since the registry's epoch: the last byte read or written, and the first
    /// byte of a request whose head is not complete yet (0: none).
    last_io: AtomicU64,
    head_started: AtomicU64,
    /// Woken when a head starts, so that the watcher moves its deadline from the keep-alive
    /// timeout to the header timeout.
    head_begun: tokio::sync::Notify,
    close: CancellationToken,
    /// A kernel send buffer size to set before the next write (0: none).
    send_buffer: AtomicUsize,
}

impl Conn {
    fn idle(&self) -> bool {
        self.inflight.load(Ordering::Acquire) == 0
    }
}

/// Every open connection, oldest first.
struct Registry {
    epoch: Instant,
    order: Mutex<VecDeque<Weak<Conn>>>,
    open: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Closes the oldest idle connection (from `ip` only, when given); whether there was one.
    fn evict_oldest_idle(&self, ip: Option<IpAddr>) -> bool {
        let mut order = self.order.lock();
        while order.front().is_some_and(|w| w.strong_count() == 0) {
            order.pop_front();
        }
        let found = order.iter().enumerate().find_map(|(i, w)| {
            let c = w.upgrade()?;
            (c.idle() && !c.close.is_cancelled() && ip.is_none_or(|ip| c.ip == ip))
                .then_some((i, c))
        });
        match found {
            Some((i, c)) => {
                order.remove(i);
                c.close.cancel();
                true
            }
            None => false,
        }
    }

    fn count_ip(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).map_or(0, |n| *n)
    }
}

/// TCP connections open on every listener of this process, for `veza_open_connections`.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// TCP connections open on every HTTP and HTTPS listener of this process.
pub fn open_connections() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// Removes a connection from the counts when its task ends.
struct Admitted {
    registry: Arc<Registry>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.open.fetch_sub(1, Ordering::AcqRel);
        OPEN.fetch_sub(1, Ordering::Relaxed);
        let gone = match self.registry.per_ip.get_mut(&self.ip) {
            Some(mut n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if gone {
            self.registry.per_ip.remove_if(&self.ip, |_, n| *n == 0);
        }
    }
}

/// Serves a connection a [`Takeover`] claimed, to its end.
pub type Serve =
    Arc<dyn Fn(Box<dyn Io>, SocketAddr) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// A protocol that starts like an HTTP request but is not framed like one (the Icecast source
/// protocol: a head, then bytes until the connection closes). Connections whose first bytes it
/// claims are handed to it whole, instead of to hyper.
#[derive(Clone)]
pub struct Takeover {
    /// Whether the first bytes belong to this protocol; `None` while undecided.
    pub sniff: fn(&[u8]) -> Option<bool>,
    /// Serves a claimed connection to its end.
    pub serve: Serve,
}

/// What the HTTPS listener adds: the TLS handshake, and the `Alt-Svc` header of its responses.
#[derive(Clone)]
pub struct Tls {
    /// rustls, offering `h2` and `http/1.1`.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `h3=":PORT"; ma=86400` while HTTP/3 is served.
    pub alt_svc: Option<axum::http::HeaderValue>,
    /// A protocol sniffed from the first decrypted bytes of an HTTP/1.1 connection (Icecast
    /// sources over TLS).
    pub takeover: Option<Takeover>,
}

/// What a listener speaks besides plain HTTP: the Icecast source protocol sniffed from the first
/// bytes (the plain listener), or TLS (the HTTPS one).
#[derive(Clone)]
pub enum Extra {
    /// Plain HTTP only.
    None,
    /// Plain HTTP, and connections `Takeover` claims.
    Takeover(Takeover),
    /// HTTPS.
    Tls(Tls),
}

/// Accepts until `shutdown`, then lets the open connections finish their requests for at most
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    extra: Extra,
    limits: Limits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        order: Mutex::new(VecDeque::new()),
        open: AtomicUsize::new(0),
        per_ip: DashMap::new(),
    });
    let tasks = accept_loop(listener, router, extra, limits, shutdown, registry).await;
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("in-flight requests outlived the grace period");
    }
}

/// Accepts until `shutdown`; returns the connections' tasks, closed to new ones.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    extra: Extra,
    limits: Limits,
    shutdown: CancellationToken,
    registry: Arc<Registry>,
) -> TaskTracker {
    let tasks = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept: make
                // room and go on accepting.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, open = registry.open.load(Ordering::Relaxed), "accept failed; closing the oldest idle connection");
                    last_warning = Some(Instant::now());
                }
                registry.evict_oldest_idle(None);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let ip = addr.ip();
        let mut refuse = false;
        if registry.count_ip(ip) >= limits.per_ip && !registry.evict_oldest_idle(Some(ip)) {
            refuse = true;
        }
        if !refuse
            && registry.open.load(Ordering::Acquire) >= limits.max
            && !registry.evict_oldest_idle(None)
        {
            refuse = true;
        }
        if refuse {
            tasks.spawn(refuse_busy(tcp));
            continue;
        }
        registry.open.fetch_add(1, Ordering::AcqRel);
        OPEN.fetch_add(1, Ordering::Relaxed);
        *registry.per_ip.entry(ip).or_insert(0) += 1;
        let admitted = Admitted {
            registry: registry.clone(),
            ip,
        };
        let conn = Arc::new(Conn {
            ip,
            inflight: AtomicUsize::new(0),
            last_io: AtomicU64::new(registry.now_ms()),
            head_started: AtomicU64::new(0),
            head_begun: tokio::sync::Notify::new(),
            close: CancellationToken::new(),
            send_buffer: AtomicUsize::new(0),
        });
        {
            // Ended connections leave dead entries behind; drop them as they reach the front,
            // and compact the rest when they outnumber the open ones, so a stream of short
            // connections does not grow the list.
            let mut order = registry.order.lock();
            while order.front().is_some_and(|w| w.strong_count() == 0) {
                order.pop_front();
            }
            if order.len() > 2 * registry.open.load(Ordering::Relaxed) + 1024 {
                order.retain(|w| w.strong_count() > 0);
            }
            order.push_back(Arc::downgrade(&conn));
        }
        tasks.spawn(connection(
            tcp,
            addr,
            conn,
            admitted,
            router.clone(),
            extra.clone(),
            limits,
            shutdown.clone(),
        ));
    }
    tasks.close();
    tasks
}

/// `503` with a problem document, for a connection past every cap with nothing idle to close.
async fn refuse_busy(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = crate::util::problem_json(
        "unavailable",
        "Service Unavailable",
        503,
        "too many connections: try again shortly",
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(response.as_bytes())).await;
}

// The accept loop's whole context, passed once per connection.
#[allow(clippy::too_many_arguments)]
async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    conn: Arc<Conn>,
    admitted: Admitted,
    router: Router,
    extra: Extra,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    if let Extra::Takeover(t) = &extra {
        // Until its first bytes arrive the connection is idle like any other: the caps may
        // close it to make room.
        let claim = tokio::select! {
            c = claimed(&tcp, t.sniff, limits.header) => c,
            _ = conn.close.cancelled() => false,
            _ = shutdown.cancelled() => false,
        };
        if conn.close.is_cancelled() || shutdown.is_cancelled() {
            drop(admitted);
            return;
        }
        if claim {
            hold_back(&tcp);
            return hand_over(t, Box::new(tcp), addr, &conn, admitted).await;
        }
    }
    let registry = admitted.registry.clone();
    let tracked = Tracked {
        inner: tcp,
        conn: conn.clone(),
        registry: registry.clone(),
    };
    let (io, alt_svc): (Box<dyn Io>, _) = match &extra {
        Extra::Tls(tls) => {
            let handshake = tokio::select! {
                h = tokio::time::timeout(limits.header, tls.acceptor.accept(tracked)) => h,
                _ = conn.close.cancelled() => return,
                _ = shutdown.cancelled() => return,
            };
            let Ok(Ok(stream)) = handshake else {
                return;
            };
            // A connection opened ahead of its first request (a browser's preconnect) is idle,
            // not a head being sent.
            conn.head_started.store(0, Ordering::Release);
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let io: Box<dyn Io> = match tls.takeover.as_ref().filter(|_| !h2) {
                None => Box::new(stream),
                Some(t) => {
                    let sniffed = tokio::select! {
                        s = sniffed(stream, t.sniff, limits.header) => s,
                        _ = conn.close.cancelled() => return,
                        _ = shutdown.cancelled() => return,
                    };
                    let Some((claim, stream)) = sniffed else {
                        return;
                    };
                    if claim {
                        hold_back(&stream.inner.get_ref().0.inner);
                        return hand_over(t, Box::new(stream), addr, &conn, admitted).await;
                    }
                    Box::new(stream)
                }
            };
            (io, tls.alt_svc.clone())
        }
        _ => (Box::new(tracked), None),
    };
    let io = TokioIo::new(io);
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // The head is complete: the request is in flight until its response body ends.
            conn.head_started.store(0, Ordering::Release);
            conn.inflight.fetch_add(1, Ordering::AcqRel);
            let guard = InFlight(conn.clone());
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(Closer(conn.clone()));
            let router = router.clone();
            let alt_svc = alt_svc.clone();
            async move {
                let response = router
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                let mut response =
                    response.map(|body| axum::body::Body::new(Guarded { body, guard }));
                if let Some(v) = alt_svc {
                    response
                        .headers_mut()
                        .insert(axum::http::header::ALT_SVC, v);
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().half_close(true).timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.streams)
        .max_header_list_size(limits.header_bytes)
        .max_pending_accept_reset_streams(Some(50))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    let mut draining = false;
    loop {
        let deadline = deadline(&conn, &registry, limits);
        tokio::select! {
            _ = served.as_mut() => break,
            _ = conn.close.cancelled() => break,
            // A head started: its deadline is the header timeout, not the keep-alive one.
            _ = conn.head_begun.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                if expired(&conn, &registry, limits) {
                    break;
                }
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
    conn.close.cancel();
    drop(admitted);
}

/// Serves a connection `t` claimed to its end. A live source is never idle: the caps do not
/// close it.
/// Kernel receive buffer of a claimed connection (a live source). A fixed size turns off
/// autotuning, which would let a source that sends ahead of real time park megabytes in the
/// kernel once the server stops reading it: what is held back stays a few seconds of audio.
const CLAIMED_RECV_BUFFER: usize = 64 << 10;

fn hold_back(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_recv_buffer_size(CLAIMED_RECV_BUFFER);
}

async fn hand_over(
    t: &Takeover,
    io: Box<dyn Io>,
    addr: SocketAddr,
    conn: &Conn,
    admitted: Admitted,
) {
    conn.inflight.fetch_add(1, Ordering::AcqRel);
    (t.serve)(io, addr).await;
    conn.inflight.fetch_sub(1, Ordering::AcqRel);
    drop(admitted);
}

/// Whether a TLS connection's first bytes are claimed by `sniff`: it reads until `sniff` decides
/// or `wait` passes, and gives the stream back with what it read still to be read. `None`: the
/// peer closed or failed before sending anything.
async fn sniffed<S: Io>(
    mut stream: S,
    sniff: fn(&[u8]) -> Option<bool>,
    wait: Duration,
) -> Option<(bool, Rewind<S>)> {
    use tokio::io::AsyncReadExt;
    let mut first = Vec::with_capacity(16);
    let deadline = Instant::now() + wait;
    let claim = loop {
        if let Some(claim) = sniff(&first) {
            break claim;
        }
        let mut byte = [0u8; 16];
        let room = 16 - first.len();
        match tokio::time::timeout_at(deadline, stream.read(&mut byte[..room])).await {
            // Nothing decided in time: an idle connection, for hyper to time out.
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) if first.is_empty() => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break false,
            Ok(Ok(n)) => first.extend_from_slice(&byte[..n]),
        }
    };
    Some((
        claim,
        Rewind {
            first,
            at: 0,
            inner: stream,
        },
    ))
}

/// Whether the connection's first bytes are claimed by `sniff`, peeking (not reading) until it
/// decides or `wait` passes.
async fn claimed(tcp: &TcpStream, sniff: fn(&[u8]) -> Option<bool>, wait: Duration) -> bool {
    let mut first = [0u8; 16];
    let deadline = Instant::now() + wait;
    let mut seen = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await;
        let n = match peeked {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        match sniff(&first[..n]) {
            Some(claim) => return claim,
            // The peer closed before deciding, or sent nothing new: leave it to hyper.
            None if n == 0 || n == seen => {
                if n == 0 {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                if Instant::now() >= deadline {
                    return false;
                }
            }
            None => {}
        }
        seen = n;
    }
}

/// When the connection's current state next needs a look.
fn deadline(conn: &Conn, registry: &Registry, limits: Limits) -> Instant {
    let at = |ms: u64, d: Duration| registry.epoch + Duration::from_millis(ms) + d;
    let head = conn.head_started.load(Ordering::Acquire);
    if head != 0 {
        return at(head, limits.header);
    }
    if !conn.idle() {
        // A request in flight: look again later (the keep-alive clock starts when it ends).
        return Instant::now() + limits.keepalive;
    }
    at(conn.last_io.load(Ordering::Acquire), limits.keepalive)
}

/// Whether a timeout has passed: a head not complete in time, or idle for too long.
fn expired(conn: &Conn, registry: &Registry, limits: Limits) -> bool {
    let now = registry.now_ms();
    let head = conn.head_started.load(Ordering::Acquire);
    if head != 0 {
        return now.saturating_sub(head) >= limits.header.as_millis() as u64;
    }
    conn.idle()
        && now.saturating_sub(conn.last_io.load(Ordering::Acquire))
            >= limits.keepalive.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ended_connections_do_not_pile_up_in_the_registry() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let limits = Limits {
            header: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            max: 100,
            per_ip: 100,
            streams: 100,
            header_bytes: 64 << 10,
        };
        let registry = Arc::new(Registry {
            epoch: Instant::now(),
            order: Mutex::new(VecDeque::new()),
            open: AtomicUsize::new(0),
            per_ip: DashMap::new(),
        });
        let served = tokio::spawn(accept_loop(
            listener,
            Router::new(),
            Extra::None,
            limits,
            shutdown.clone(),
            registry.clone(),
        ));
        for _ in 0..3000 {
            drop(TcpStream::connect(addr).await.unwrap());
        }
        // Wait until the server has seen every connection end.
        while registry.open.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(TcpStream::connect(addr).await.unwrap());
        assert!(registry.order.lock().len() <= 2 * 100 + 1024 + 1);
        shutdown.cancel();
        let _ = served.await;
    }

    #[test]
    fn caps_leave_room_for_files_and_one_address_gets_half() {
        assert_eq!(Limits::sized_for(20_000), (18_000, 9_000));
        assert_eq!(Limits::sized_for(1024), (768, 384));
        assert_eq!(Limits::sized_for(100), (64, 32));
    }
}

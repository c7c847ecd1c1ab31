//! HTTP/3: QUIC (quinn) and h3 on the HTTPS listener's port, over UDP, serving the same router as
//! TCP: delivery, live (blocking reloads, parts, Range), the control API and the web app.
//!
//! The limits of TCP hold here too:
//! - connections at once, overall and per address (`server.max_connections`,
//!   `server.max_connections_per_ip`): past them a new connection is refused;
//! - a QUIC connection flood is answered with address validation: while more than
//!   [`UNVALIDATED`] handshakes are pending, a client that has not proven its address gets a
//!   stateless Retry first, which costs the server no state;
//! - concurrent requests per connection (`server.max_concurrent_streams`, QUIC's bidirectional
//!   stream credit) and the size of a request's field section (`server.max_header_bytes`);
//! - a connection with nothing to say for `server.keepalive_idle_seconds` closes (QUIC's idle
//!   timeout);
//! - on shutdown, accepting stops, connections are told to go away (GOAWAY), and requests in
//!   flight get the grace period.

pub mod client;

use crate::listen::Limits;
use crate::tls::{Certs, ALPN_H3};
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::{Buf, Bytes};
use dashmap::DashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Pending handshakes past which new clients must validate their address first.
pub const UNVALIDATED: usize = 256;

/// A bound HTTP/3 endpoint, not serving yet.
pub struct Endpoint {
    endpoint: quinn::Endpoint,
}

impl Endpoint {
    /// Binds UDP `addr` with the certificate of `certs`.
    pub fn bind(addr: SocketAddr, certs: &Arc<Certs>, limits: Limits) -> anyhow::Result<Endpoint> {
        let mut tls = certs.server_config(&[ALPN_H3]);
        // No 0-RTT: replayable requests are not worth a round trip here.
        tls.max_early_data_size = 0;
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(limits.streams.into())
            // The client's control stream and its two QPACK streams, with room to spare.
            .max_concurrent_uni_streams(8u32.into())
            .max_idle_timeout(Some(limits.keepalive.try_into()?));
        config.transport_config(Arc::new(transport));
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            crate::util::bind_udp(addr)?,
            Arc::new(quinn::TokioRuntime),
        )?;
        Ok(Endpoint { endpoint })
    }

    /// The UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serves until `shutdown`, then lets requests in flight finish for at most `grace`.
    pub async fn serve(
        self,
        router: Router,
        limits: Limits,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        let counts = Arc::new(Counts::default());
        let tasks = TaskTracker::new();
        loop {
            let incoming = tokio::select! {
                i = self.endpoint.accept() => i,
                _ = shutdown.cancelled() => break,
            };
            let Some(incoming) = incoming else { break };
            let ip = incoming.remote_address().ip();
            if counts.open.load(Ordering::Acquire) >= limits.max || counts.of(ip) >= limits.per_ip {
                incoming.refuse();
                continue;
            }
            if !incoming.remote_address_validated()
                && counts.handshaking.load(Ordering::Acquire) >= UNVALIDATED
            {
                let _ = incoming.retry();
                continue;
            }
            let seat = Seat::take(&counts, ip);
            tasks.spawn(connection(
                incoming,
                seat,
                router.clone(),
                limits,
                shutdown.clone(),
                tasks.clone(),
            ));
        }
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!("HTTP/3 requests outlived the grace period");
        }
        self.endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// Connections by state and address.
#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    handshaking: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

impl Counts {
    fn of(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).map_or(0, |n| *n)
    }
}

/// One open connection's place in the counts, given back when it is dropped.
struct Seat {
    counts: Arc<Counts>,
    ip: IpAddr,
    handshaking: bool,
}

impl Seat {
    fn take(counts: &Arc<Counts>, ip: IpAddr) -> Seat {
        counts.open.fetch_add(1, Ordering::AcqRel);
        counts.handshaking.fetch_add(1, Ordering::AcqRel);
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Seat {
            counts: counts.clone(),
            ip,
            handshaking: true,
        }
    }

    fn established(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.counts.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.established();
        self.counts.open.fetch_sub(1, Ordering::AcqRel);
        if let dashmap::Entry::Occupied(mut e) = self.counts.per_ip.entry(self.ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

async fn connection(
    incoming: quinn::Incoming,
    mut seat: Seat,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let handshake = tokio::select! {
        c = tokio::time::timeout(limits.header, incoming) => c,
        _ = shutdown.cancelled() => return,
    };
    let Ok(Ok(quic)) = handshake else { return };
    seat.established();
    let addr = quic.remote_address();
    let built = h3::server::builder()
        .max_field_section_size(limits.header_bytes.into())
        .build::<_, Bytes>(h3_quinn::Connection::new(quic))
        .await;
    let Ok(mut h3) = built else { return };
    let mut leaving = false;
    loop {
        let next = tokio::select! {
            n = h3.accept() => n,
            _ = shutdown.cancelled(), if !leaving => {
                leaving = true;
                // GOAWAY: no new requests; those already accepted run on.
                let _ = h3.shutdown(0).await;
                continue;
            }
        };
        match next {
            Ok(Some(resolver)) => {
                tasks.spawn(request(resolver, router.clone(), addr));
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(seat);
}

type Resolver = h3::server::RequestResolver<h3_quinn::Connection, Bytes>;

/// One request: its head and body into the router, the response back onto the stream.
async fn request(resolver: Resolver, router: Router, addr: SocketAddr) {
    let Ok((req, stream)) = resolver.resolve_request().await else {
        return;
    };
    let (mut send, recv) = stream.split();
    let body = futures::stream::unfold(recv, |mut recv| async move {
        match recv.recv_data().await {
            Ok(Some(mut chunk)) => {
                let bytes = chunk.copy_to_bytes(chunk.remaining());
                Some((Ok::<_, std::io::Error>(bytes), recv))
            }
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), recv)),
        }
    });
    let mut req = req.map(|()| axum::body::Body::from_stream(body));
    req.extensions_mut().insert(ConnectInfo(addr));
    let response = router
        .oneshot(req)
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, mut body) = response.into_parts();
    if send
        .send_response(axum::http::Response::from_parts(parts, ()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let frame =
            futures::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                .await;
        match frame {
            None => break,
            Some(Err(_)) => return,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if !data.is_empty() && send.send_data(data).await.is_err() {
                        return;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = send.send_trailers(trailers).await;
                    }
                }
            },
        }
    }
    let _ = send.finish().await;
}

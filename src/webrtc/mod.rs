//! `webrtc`: WHEP listeners and WHIP publishers on live channels, over one UDP port.
//!
//! Every session (ICE, DTLS-SRTP, RTP and RTCP) shares the socket bound at `live.webrtc_udp`, so
//! an operator opens one port. The server is ICE-lite: it answers the peer's checks and never
//! checks itself, so its host candidates (`live.webrtc_advertise`, or every interface address)
//! are all it announces.
//!
//! The WebRTC machinery is str0m's sans-IO `Rtc`, one per session, owned by that session's task
//! (`session`). This module owns the socket: `recv_loop` reads every datagram and hands it
//! to the session that owns its source address, or, for a first ICE check, to the session whose
//! ufrag its `USERNAME` names; anything else is counted and dropped. Sessions send on the same
//! socket.
//!
//! Media: each WHEP session is a push consumer of its channel ([`Channel::consume`]): it gets
//! the channel's one Opus encoder output, the same frames LL-HLS packages, and packetises them
//! itself (RTP timestamps are the frames' sample counts, RTCP sender reports from str0m). A
//! listener joining mid-stream starts with the next frame; nothing restarts. A WHIP publisher is
//! a source of its channel, as an Icecast source is: its Opus packets are decoded (losses
//! concealed) into the channel's PCM, with the same takeover, auto-DJ fallback and one-source
//! rule.

mod session;
mod socket;
pub mod wire;

use crate::config;
use crate::live::{Attached, Channel};
use crate::metrics::Metrics;
use crate::store::ChannelId;
use dashmap::DashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::crypto::dtls::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wire::Datagram;

/// A session's id: 128 random bits, the last part of its URL.
pub type SessionId = u128;

/// Datagrams a session may have queued before more are dropped (as the network would).
const INBOX: usize = 256;

/// How long a new session waits for its peer's first ICE check before it is freed: a real peer
/// checks within a round trip of reading the answer.
const FIRST_CHECK: Duration = Duration::from_secs(5);

/// Who asks for a session: the offer's ICE ufrag, the credential it was authorised with, and the
/// client's address.
pub struct Peer<'a> {
    /// The ICE ufrag of the offer (from [`wire::check_offer`]).
    pub ufrag: String,
    /// The playback token or stream key that authorised it.
    pub credential: &'a str,
    /// The HTTP client's address.
    pub client: IpAddr,
}

/// Why a session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// `live.max_webrtc_sessions` are open, or a quarter of them are still connecting: connected
    /// listeners keep the rest.
    Full,
    /// This client address or credential has as many sessions connecting as it may
    /// (`live.max_connecting_per_client`, `live.max_connecting_per_credential`): retry later.
    TooManyConnecting,
    /// The offer could not be negotiated.
    Offer(String),
}

/// What a new session gives the HTTP side.
pub struct Opened {
    /// The session's id, for its URL.
    pub id: SessionId,
    /// The SDP answer.
    pub answer: String,
    /// The session's ETag (its ICE ufrag: it changes with an ICE restart).
    pub etag: String,
}

/// The handle of one open session, shared by the socket loop and the HTTP side.
struct Handle {
    kind: &'static str,
    channel: ChannelId,
    ufrag: String,
    remote_ufrag: String,
    inbox: mpsc::Sender<session::Inbound>,
    candidates: mpsc::Sender<Candidate>,
    stop: CancellationToken,
    /// The peer addresses mapped to this session in `by_addr`, removed with it.
    addrs: parking_lot::Mutex<Vec<SocketAddr>>,
    /// SHA-256 of the credential the session was opened with (the listener's playback token,
    /// the publisher's stream key): its PATCH and DELETE must carry the same.
    credential: [u8; 32],
}

/// Peer addresses one session may have mapped (ICE candidates it checks from).
const MAX_ADDRS: usize = 8;

/// Where WebRTC sessions live on this node.
pub struct WebRtc {
    socket: Arc<socket::Socket>,
    local: SocketAddr,
    advertised: Vec<SocketAddr>,
    sessions: DashMap<SessionId, Handle>,
    by_ufrag: DashMap<String, SessionId>,
    by_addr: DashMap<SocketAddr, SessionId>,
    open: AtomicUsize,
    /// Sessions connecting, in all, per client address and per credential digest.
    connecting: Arc<Connecting>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    config: config::Live,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl WebRtc {
    /// Binds `live.webrtc_udp` and works out the addresses to announce.
    pub async fn bind(
        config: config::Live,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<WebRtc>> {
        let addr: SocketAddr = config.webrtc_udp.parse()?;
        let socket = socket::Socket::bind(addr)
            .map_err(|e| anyhow::anyhow!("binding live.webrtc_udp {addr}: {e}"))?;
        let local = socket.local_addr();
        let advertised = advertised(&config.webrtc_advertise, local);
        if advertised.is_empty() {
            anyhow::bail!("no address to announce for WebRTC: set live.webrtc_advertise");
        }
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| anyhow::anyhow!("generating the DTLS certificate failed"))?;
        tracing::info!(%local, advertised = ?advertised, "WebRTC listening");
        let w = Arc::new(WebRtc {
            socket: Arc::new(socket),
            local,
            advertised,
            sessions: DashMap::new(),
            by_ufrag: DashMap::new(),
            by_addr: DashMap::new(),
            open: AtomicUsize::new(0),
            connecting: Default::default(),
            crypto,
            cert,
            config,
            metrics,
            shutdown,
        });
        tokio::spawn(recv_loop(w.clone()));
        Ok(w)
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The STUN/TURN servers to announce.
    pub fn ice_servers(&self) -> &[String] {
        &self.config.ice_servers
    }

    /// Opens a WHEP session on `channel`: negotiates `offer` (already checked by
    /// [`wire::check_offer`], which read the listener's `remote_ufrag`) and starts the session's
    /// task, which ends at `expires` at the latest.
    pub fn open_whep(
        self: &Arc<Self>,
        channel: Arc<Channel>,
        offer: &str,
        peer: Peer<'_>,
        expires: Instant,
    ) -> Result<Opened, OpenError> {
        let frames = channel.consume(self.config.consumer_queue_frames);
        self.open(
            "whep",
            channel,
            offer,
            peer,
            session::Role::Whep { frames, expires },
        )
    }

    /// Opens a WHIP session: `channel`'s source `source` (attached by the caller, with its PCM
    /// sender and drop token) is the publisher that offered `offer`. On any failure the source
    /// is detached again.
    pub fn open_whip(
        self: &Arc<Self>,
        channel: Arc<Channel>,
        offer: &str,
        peer: Peer<'_>,
        (source, pcm, drop): Attached,
    ) -> Result<Opened, OpenError> {
        let decoder = match veza_codecs::OpusPackets::new() {
            Ok(d) => d,
            Err(e) => {
                channel.detach(source);
                return Err(OpenError::Offer(e.to_string()));
            }
        };
        let role = session::Role::Whip {
            source,
            pcm,
            drop,
            decoder,
            next: None,
        };
        let opened = self.open("whip", channel.clone(), offer, peer, role);
        if opened.is_err() {
            channel.detach(source);
        }
        opened
    }

    fn open(
        self: &Arc<Self>,
        kind: &'static str,
        channel: Arc<Channel>,
        offer: &str,
        peer: Peer<'_>,
        role: session::Role,
    ) -> Result<Opened, OpenError> {
        let credential = digest(peer.credential);
        let connecting = Connecting::admit(
            &self.connecting,
            (peer.client, credential),
            Caps {
                all: (self.config.max_webrtc_sessions / 4).max(16),
                per_client: self.config.max_connecting_per_client,
                per_credential: self.config.max_connecting_per_credential,
            },
        )?;
        // Reserve a slot first, so racing POSTs cannot overshoot the cap.
        let cap = self.config.max_webrtc_sessions;
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_err()
        {
            return Err(OpenError::Full);
        }
        let (rtc, answer, creds) = match self.negotiate(offer) {
            Ok(n) => n,
            Err(e) => {
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(OpenError::Offer(e));
            }
        };
        let id: SessionId = rand::random();
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let (cand_tx, cand_rx) = mpsc::channel(16);
        let stop = self.shutdown.child_token();
        self.by_ufrag.insert(creds.ufrag.clone(), id);
        self.sessions.insert(
            id,
            Handle {
                kind,
                channel: channel.id,
                ufrag: creds.ufrag.clone(),
                remote_ufrag: peer.ufrag,
                inbox: inbox_tx,
                candidates: cand_tx,
                stop: stop.clone(),
                addrs: Default::default(),
                credential,
            },
        );
        self.count();
        let task = session::Session {
            id,
            rtc,
            role,
            channel,
            inbox: inbox_rx,
            candidates: cand_rx,
            stop,
            connecting: Some(connecting),
            first_check: FIRST_CHECK,
            connect_timeout: Duration::from_secs_f64(self.config.webrtc_connect_timeout_seconds),
            consent_timeout: Duration::from_secs_f64(self.config.webrtc_consent_timeout_seconds),
            socket: self.socket.clone(),
            metrics: self.metrics.clone(),
        };
        let w = self.clone();
        tokio::spawn(async move {
            let outcome = task.run().await;
            tracing::info!(session = %format!("{id:032x}"), kind, outcome, "WebRTC session ended");
            w.metrics
                .webrtc_sessions
                .with_label_values(&[kind, outcome])
                .inc();
            w.forget(id);
        });
        Ok(Opened {
            id,
            answer,
            etag: format!("\"{}\"", creds.ufrag),
        })
    }

    /// Answers `offer` with our codec (Opus stereo) and host candidates. The direction follows
    /// the offer: a listener's recvonly audio is answered sendonly, a publisher's sendonly
    /// recvonly.
    fn negotiate(&self, offer: &str) -> Result<(Rtc, String, IceCreds), String> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| e.to_string())?;
        let creds = IceCreds::new();
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_local_ice_credentials(creds.clone())
            .clear_codecs();
        config.codec_config().add_config(
            111.into(),
            None,
            str0m::format::Codec::Opus,
            str0m::media::Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            str0m::format::FormatParams {
                min_p_time: Some(10),
                use_inband_fec: Some(true),
                stereo: Some(true),
                sprop_stereo: Some(true),
                ..Default::default()
            },
        );
        let mut rtc = config.build(Instant::now());
        for addr in &self.advertised {
            let c = Candidate::host(*addr, "udp").map_err(|e| e.to_string())?;
            rtc.add_local_candidate(c);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| e.to_string())?;
        Ok((rtc, answer.to_sdp_string(), creds))
    }

    /// The kind (`whep`, `whip`) and channel of a session, if it is open.
    pub fn owner(&self, id: SessionId) -> Option<(&'static str, ChannelId)> {
        self.sessions.get(&id).map(|h| (h.kind, h.channel))
    }

    /// Whether `credential` is the one session `id` was opened with (false when it is not open).
    pub fn opened_with(&self, id: SessionId, credential: &str) -> bool {
        self.sessions
            .get(&id)
            .is_some_and(|h| h.credential == digest(credential))
    }

    /// The session's ETag, if it is open.
    pub fn etag_of(&self, id: SessionId) -> Option<String> {
        self.sessions.get(&id).map(|h| format!("\"{}\"", h.ufrag))
    }

    /// The listener's ICE ufrag, from its offer, if the session is open.
    pub fn remote_ufrag_of(&self, id: SessionId) -> Option<String> {
        self.sessions.get(&id).map(|h| h.remote_ufrag.clone())
    }

    /// Adds trickled remote candidates to a session. False when it is not open.
    pub fn trickle(&self, id: SessionId, candidates: Vec<Candidate>) -> bool {
        let Some(h) = self.sessions.get(&id) else {
            return false;
        };
        for c in candidates {
            // A full queue means the listener trickles faster than anyone needs: drop.
            let _ = h.candidates.try_send(c);
        }
        true
    }

    /// Ends a session (DELETE). False when it is not open.
    pub fn close(&self, id: SessionId) -> bool {
        match self.sessions.get(&id) {
            Some(h) => {
                h.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Removes every trace of an ended session.
    fn forget(&self, id: SessionId) {
        if let Some((_, h)) = self.sessions.remove(&id) {
            self.by_ufrag.remove(&h.ufrag);
            for a in h.addrs.lock().drain(..) {
                self.by_addr.remove_if(&a, |_, s| *s == id);
            }
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        self.count();
    }

    /// Publishes the maps' sizes (`veza_webrtc_entries`), which the leak tests read.
    fn count(&self) {
        let g = &self.metrics.webrtc_entries;
        g.with_label_values(&["sessions"])
            .set(self.sessions.len() as i64);
        g.with_label_values(&["ufrags"])
            .set(self.by_ufrag.len() as i64);
        g.with_label_values(&["addresses"])
            .set(self.by_addr.len() as i64);
    }
}

/// Sessions connecting: in all, per client address and per credential digest.
#[derive(Default)]
struct Connecting {
    all: AtomicUsize,
    by_client: DashMap<IpAddr, usize>,
    by_credential: DashMap<[u8; 32], usize>,
}

impl Connecting {
    /// Counts a new session as connecting, unless a cap is reached.
    fn admit(
        this: &Arc<Connecting>,
        (client, credential): (IpAddr, [u8; 32]),
        caps: Caps,
    ) -> Result<ConnectingGuard, OpenError> {
        if this
            .all
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < caps.all).then_some(n + 1)
            })
            .is_err()
        {
            return Err(OpenError::Full);
        }
        let guard = ConnectingGuard {
            of: this.clone(),
            client,
            credential,
        };
        // Each entry is counted under its shard's lock; the guard takes back exactly this.
        let mut ok = true;
        this.by_client
            .entry(client)
            .and_modify(|n| {
                ok &= *n < caps.per_client;
                *n += 1
            })
            .or_insert(1);
        this.by_credential
            .entry(credential)
            .and_modify(|n| {
                ok &= *n < caps.per_credential;
                *n += 1
            })
            .or_insert(1);
        if ok {
            Ok(guard)
        } else {
            Err(OpenError::TooManyConnecting)
        }
    }
}

/// How many sessions may be connecting: in all, per client address, per credential.
#[derive(Clone, Copy)]
struct Caps {
    all: usize,
    per_client: usize,
    per_credential: usize,
}

/// A session counted as connecting until it connects or ends.
pub(crate) struct ConnectingGuard {
    of: Arc<Connecting>,
    client: IpAddr,
    credential: [u8; 32],
}

impl Drop for ConnectingGuard {
    fn drop(&mut self) {
        self.of.all.fetch_sub(1, Ordering::AcqRel);
        self.of.by_client.remove_if_mut(&self.client, |_, n| {
            *n -= 1;
            *n == 0
        });
        self.of
            .by_credential
            .remove_if_mut(&self.credential, |_, n| {
                *n -= 1;
                *n == 0
            });
    }
}

/// SHA-256 of a credential: sessions keep no secret, only what a later request is compared with.
fn digest(credential: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(credential.as_bytes()).into()
}

/// The host candidates: the configured addresses (on the bound port unless they name one), or
/// every interface address when the socket is bound to the unspecified address.
fn advertised(configured: &[String], local: SocketAddr) -> Vec<SocketAddr> {
    if !configured.is_empty() {
        return configured
            .iter()
            .filter_map(|a| {
                a.parse::<SocketAddr>().ok().or_else(|| {
                    a.parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, local.port()))
                })
            })
            .collect();
    }
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let want_v6 = local.is_ipv6();
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() || want_v6)
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .map(|ip| SocketAddr::new(ip, local.port()))
        .collect()
}

/// Reads the shared socket until shutdown, handing each datagram to its session.
async fn recv_loop(w: Arc<WebRtc>) {
    let mut buf = vec![0u8; w.socket.buffer_len()];
    let mut got = Vec::new();
    loop {
        got.clear();
        tokio::select! {
            r = w.socket.recv(&mut buf, &mut got) => if let Err(e) = r {
                // ICMP port-unreachable from a gone peer surfaces here on Linux: keep going.
                tracing::debug!(error = %e, "WebRTC socket receive error");
                continue;
            },
            _ = w.shutdown.cancelled() => return,
        }
        for r in &got {
            route(&w, r.from, r.to, &buf[r.range.clone()]);
        }
    }
}

/// Hands one datagram from `from`, sent to our `to`, to the session it belongs to.
fn route(w: &WebRtc, from: SocketAddr, to: SocketAddr, d: &[u8]) {
    let kind = wire::classify(d);
    let (id, learned) = match w.by_addr.get(&from).map(|s| *s) {
        Some(id) => (Some(id), false),
        None if kind == Datagram::Stun => (
            wire::stun_local_ufrag(d).and_then(|u| w.by_ufrag.get(u).map(|s| *s)),
            true,
        ),
        None => (None, false),
    };
    let inbox = id.and_then(|id| {
        let h = w.sessions.get(&id)?;
        if learned {
            // Mapped under the session's own lock, so that `forget` (which removes the
            // session first) either sees the address or leaves nothing to remove.
            let mut addrs = h.addrs.lock();
            if addrs.len() < MAX_ADDRS {
                addrs.push(from);
                w.by_addr.insert(from, id);
            }
        }
        Some(h.inbox.clone())
    });
    if learned && inbox.is_some() {
        w.count();
    }
    let delivered = kind != Datagram::Other
        && inbox.is_some_and(|i| {
            i.try_send(session::Inbound {
                at: Instant::now(),
                from,
                to,
                bytes: d.to_vec(),
            })
            .is_ok()
        });
    if !delivered {
        w.metrics.webrtc_stray.inc();
    }
}

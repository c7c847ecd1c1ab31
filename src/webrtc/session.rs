//! One WebRTC session's task: it owns the session's `Rtc`, feeds it the datagrams the socket
//! loop routes here and the clock, and sends what it produces. A WHEP listener also feeds it the
//! channel's Opus frames; a WHIP publisher's Opus packets come out of it, are decoded and go to
//! the channel like any source's PCM.
//!
//! A session ends, and its task returns why, when:
//! - the peer sends DELETE, or the server shuts down (`deleted`);
//! - the peer sent no ICE check within 5 s, or ICE and DTLS have not completed within
//!   `live.webrtc_connect_timeout_seconds` (`timeout`);
//! - no ICE consent check arrived for `live.webrtc_consent_timeout_seconds` (`consent`, RFC 7675);
//! - a listener's playback token expires (`expired`);
//! - the channel stops, or drops a listener for falling behind, or drops a publisher (its key
//!   rotated, the channel deleted) (`channel`);
//! - str0m reports an error or the ICE state `disconnected` (`failed`).

use crate::live::{Channel, Frame, Pcm48, Protocol};
use crate::metrics::Metrics;
use crate::webrtc::socket::Socket;
use crate::webrtc::wire::{self, Datagram};
use crate::webrtc::SessionId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::{MediaData, MediaTime, Mid, Pt};
use str0m::net::{Protocol as NetProtocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veza_codecs::OpusPackets;

/// How often a connected listener is marked seen in the channel's session map.
const SEEN_EVERY: Duration = Duration::from_secs(2);

/// Longest gap a publisher's lost packets are concealed over; a longer one is silence the
/// channel's clock fills.
const MAX_CONCEAL: u64 = 9_600;

/// A datagram for a session: when it arrived, from which peer, to which of our addresses.
pub(super) struct Inbound {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the session does with the channel.
pub(super) enum Role {
    /// A listener: the channel's Opus frames out.
    Whep {
        frames: mpsc::Receiver<Frame>,
        expires: Instant,
    },
    /// A publisher: its Opus packets in, as the channel's source `source`.
    Whip {
        source: u64,
        pcm: mpsc::Sender<Pcm48>,
        drop: CancellationToken,
        decoder: OpusPackets,
        /// The RTP time the next packet should carry, to find losses.
        next: Option<u64>,
    },
}

/// A session, ready to run.
pub(super) struct Session {
    pub id: SessionId,
    pub rtc: Rtc,
    pub role: Role,
    pub channel: Arc<Channel>,
    pub inbox: mpsc::Receiver<Inbound>,
    pub candidates: mpsc::Receiver<Candidate>,
    pub stop: CancellationToken,
    /// Counts the session as connecting (against its client's and credential's caps) until
    /// ICE and DTLS complete.
    pub connecting: Option<super::ConnectingGuard>,
    /// How long the peer has to send its first ICE check.
    pub first_check: Duration,
    pub connect_timeout: Duration,
    pub consent_timeout: Duration,
    pub socket: Arc<Socket>,
    pub metrics: Arc<Metrics>,
}

/// The next frame of a listener; never, for a publisher.
async fn next_frame(role: &mut Role) -> Option<Frame> {
    match role {
        Role::Whep { frames, .. } => frames.recv().await,
        Role::Whip { .. } => std::future::pending().await,
    }
}

impl Session {
    /// Runs the session to its end; returns why it ended.
    pub async fn run(mut self) -> &'static str {
        let outcome = self.drive().await;
        match &self.role {
            Role::Whep { .. } => self.channel.forget(self.id),
            Role::Whip { source, drop, .. } => {
                drop.cancel();
                self.channel.detach(*source);
            }
        }
        outcome
    }

    async fn drive(&mut self) -> &'static str {
        let started = Instant::now();
        // A listener goes when the channel stops; a publisher also when its key is rotated.
        let (expires, drop) = match &self.role {
            Role::Whep { expires, .. } => (Some(*expires), self.channel.stopped.clone()),
            Role::Whip { drop, .. } => (None, drop.clone()),
        };
        let mut mid: Option<Mid> = None;
        let mut pt: Option<Pt> = None;
        let mut connected = false;
        let mut last_check = Instant::now();
        let mut checked = false;
        let mut seen_at = Instant::now() - SEEN_EVERY;
        loop {
            // Drain what the Rtc wants to do, up to its next timeout.
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        self.socket.send(&t.contents, t.destination, t.source).await;
                    }
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            connected = true;
                            self.connecting = None;
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            return "failed"
                        }
                        Event::MediaAdded(m) => {
                            mid = Some(m.mid);
                            pt = self
                                .rtc
                                .writer(m.mid)
                                .and_then(|w| w.payload_params().next().map(|p| p.pt()));
                        }
                        Event::MediaData(d) => {
                            let taken = self.publish(d).await;
                            if !taken {
                                return "channel";
                            }
                        }
                        _ => {}
                    },
                    Err(e) => {
                        tracing::debug!(session = %self.id, error = %e, "WebRTC session failed");
                        return "failed";
                    }
                }
            };
            let now = Instant::now();
            if !connected
                && (now.duration_since(started) > self.connect_timeout
                    || (!checked && now.duration_since(started) > self.first_check))
            {
                return "timeout";
            }
            if connected && now.duration_since(last_check) > self.consent_timeout {
                return "consent";
            }
            if expires.is_some_and(|e| now >= e) {
                return "expired";
            }
            if connected
                && matches!(self.role, Role::Whep { .. })
                && now.duration_since(seen_at) >= SEEN_EVERY
            {
                self.channel.seen(self.id, Protocol::Webrtc, None);
                seen_at = now;
            }
            // Wake for the Rtc's timeout, but at least once a second for the checks above.
            let wake = deadline.min(now + Duration::from_secs(1));
            let input = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return "deleted",
                _ = drop.cancelled() => return "channel",
                d = self.inbox.recv() => match d {
                    Some(d) => {
                        if wire::classify(&d.bytes) == Datagram::Stun {
                            last_check = d.at;
                            checked = true;
                        }
                        let Ok(contents) = d.bytes.as_slice().try_into() else { continue };
                        let input = Input::Receive(d.at, Receive {
                            proto: NetProtocol::Udp,
                            source: d.from,
                            destination: d.to,
                            contents,
                        });
                        if self.rtc.accepts(&input) {
                            if let Err(e) = self.rtc.handle_input(input) {
                                // A datagram str0m refuses (damage, a stray packet) does not
                                // end the session.
                                tracing::debug!(session = %self.id, error = %e, "WebRTC input refused");
                            }
                        }
                        continue;
                    }
                    None => return "deleted",
                },
                f = next_frame(&mut self.role) => match f {
                    Some(frame) => {
                        if let (true, Some(mid), Some(pt)) = (connected, mid, pt) {
                            self.send(mid, pt, frame).await;
                        }
                        continue;
                    }
                    None => return "channel",
                },
                c = self.candidates.recv() => {
                    if let Some(c) = c {
                        self.rtc.add_remote_candidate(c);
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(wake.into()) => Input::Timeout(Instant::now()),
            };
            if let Err(e) = self.rtc.handle_input(input) {
                tracing::debug!(session = %self.id, error = %e, "WebRTC session failed");
                return "failed";
            }
        }
    }

    /// Writes one Opus frame and sends the packets it becomes.
    async fn send(&mut self, mid: Mid, pt: Pt, frame: Frame) {
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let time = MediaTime::new(frame.pts, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        if writer
            .write(pt, Instant::now(), time, frame.data.as_ref())
            .is_err()
        {
            return;
        }
        let mut sent = false;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    self.socket.send(&t.contents, t.destination, t.source).await;
                    sent = true;
                }
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(Output::Event(_)) => {}
            }
        }
        if sent {
            self.metrics
                .webrtc_send_delay
                .observe(frame.at.elapsed().as_secs_f64());
        }
    }

    /// Decodes a publisher's Opus packet (concealing what was lost before it) and hands the PCM
    /// to the channel. False when the channel no longer takes it.
    async fn publish(&mut self, d: MediaData) -> bool {
        let Role::Whip {
            pcm, decoder, next, ..
        } = &mut self.role
        else {
            return true;
        };
        let time = d
            .time
            .rebase(str0m::media::Frequency::FORTY_EIGHT_KHZ)
            .numer();
        let mut out: Vec<Pcm48> = Vec::new();
        if let Some(expected) = *next {
            let gap = time.saturating_sub(expected);
            if gap > 0 && gap <= MAX_CONCEAL {
                if let Ok(c) = decoder.conceal(gap as usize) {
                    out.push(c);
                }
            }
        }
        match decoder.decode(&d.data) {
            Ok(p) => {
                *next = Some(time + p[0].len() as u64);
                out.push(p);
            }
            Err(_) => {
                self.metrics.live_source_damage.inc();
            }
        }
        for p in out {
            if p[0].is_empty() {
                continue;
            }
            if pcm.send(p).await.is_err() {
                return false;
            }
        }
        true
    }
}

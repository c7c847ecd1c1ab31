//! One WHEP session's task: it owns the session's `Rtc`, feeds it the datagrams the socket loop
//! routes here, the channel's Opus frames and the clock, and sends what it produces.
//!
//! A session ends, and its task returns why, when:
//! - the listener sends DELETE, or the server shuts down (`deleted`);
//! - ICE and DTLS have not completed within `live.webrtc_connect_timeout_seconds` (`timeout`);
//! - no ICE consent check arrived for `live.webrtc_consent_timeout_seconds` (`consent`, RFC 7675);
//! - its playback token expires (`expired`);
//! - the channel stops, or drops it for falling behind (`channel`);
//! - str0m reports an error or the ICE state `disconnected` (`failed`).

use crate::live::{Channel, Frame, Protocol};
use crate::metrics::Metrics;
use crate::webrtc::wire::{self, Datagram};
use crate::webrtc::SessionId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol as NetProtocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a connected listener is marked seen in the channel's session map.
const SEEN_EVERY: Duration = Duration::from_secs(2);

/// A WHEP listener's session, ready to run.
pub(super) struct Whep {
    pub id: SessionId,
    pub rtc: Rtc,
    pub channel: Arc<Channel>,
    pub frames: mpsc::Receiver<Frame>,
    pub inbox: mpsc::Receiver<(Instant, SocketAddr, Vec<u8>)>,
    pub candidates: mpsc::Receiver<Candidate>,
    pub stop: CancellationToken,
    pub expires: Instant,
    pub connect_timeout: Duration,
    pub consent_timeout: Duration,
    pub socket: Arc<UdpSocket>,
    pub metrics: Arc<Metrics>,
}

impl Whep {
    /// Runs the session to its end; returns why it ended.
    pub async fn run(mut self) -> &'static str {
        let outcome = self.drive().await;
        self.channel.forget(self.id);
        outcome
    }

    async fn drive(&mut self) -> &'static str {
        let started = Instant::now();
        let local = self.socket.local_addr().ok();
        let mut mid: Option<Mid> = None;
        let mut pt: Option<Pt> = None;
        let mut connected = false;
        let mut last_check = Instant::now();
        let mut seen_at = Instant::now() - SEEN_EVERY;
        loop {
            // Drain what the Rtc wants to do, up to its next timeout.
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => connected = true,
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
                        _ => {}
                    },
                    Err(e) => {
                        tracing::debug!(session = %self.id, error = %e, "WebRTC session failed");
                        return "failed";
                    }
                }
            };
            let now = Instant::now();
            if !connected && now.duration_since(started) > self.connect_timeout {
                return "timeout";
            }
            if connected && now.duration_since(last_check) > self.consent_timeout {
                return "consent";
            }
            if now >= self.expires {
                return "expired";
            }
            if connected && now.duration_since(seen_at) >= SEEN_EVERY {
                self.channel.seen(self.id, Protocol::Webrtc);
                seen_at = now;
            }
            // Wake for the Rtc's timeout, but at least once a second for the checks above.
            let wake = deadline.min(now + Duration::from_secs(1));
            let input = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return "deleted",
                d = self.inbox.recv() => match d {
                    Some((at, from, bytes)) => {
                        if wire::classify(&bytes) == Datagram::Stun {
                            last_check = at;
                        }
                        let Some(destination) = local else { return "failed" };
                        let Ok(contents) = bytes.as_slice().try_into() else { continue };
                        let input = Input::Receive(at, Receive {
                            proto: NetProtocol::Udp,
                            source: from,
                            destination,
                            contents,
                        });
                        if !self.rtc.accepts(&input) {
                            continue;
                        }
                        if let Err(e) = self.rtc.handle_input(input) {
                            tracing::debug!(session = %self.id, error = %e, "WebRTC input refused");
                        }
                        continue;
                    }
                    None => return "deleted",
                },
                f = self.frames.recv() => match f {
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
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
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
}

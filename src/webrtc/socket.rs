//! The shared WebRTC socket, which knows each datagram's destination address.
//!
//! ICE matches a check to the host candidate it was sent to (RFC 8445 §7.3), so str0m needs the
//! local address each datagram arrived at. A socket bound to `0.0.0.0` (the default
//! `live.webrtc_udp`) only knows its own unspecified address; the kernel tells the real one per
//! datagram through `IP_PKTINFO` / `IPV6_RECVPKTINFO`, which `quinn-udp` (already used by
//! HTTP/3) asks for and reads. Replies leave from that same address, so a peer that checked
//! `192.0.2.2` gets its answer from `192.0.2.2` whatever the routing table prefers.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// One datagram received.
pub(super) struct Received {
    /// The peer's address.
    pub from: SocketAddr,
    /// The local address it was sent to: the bound address unless that is unspecified.
    pub to: SocketAddr,
    /// Where its bytes are in the receive buffer.
    pub range: std::ops::Range<usize>,
}

/// The shared UDP socket.
pub(crate) struct Socket {
    io: UdpSocket,
    state: quinn_udp::UdpSocketState,
    local: SocketAddr,
}

impl Socket {
    /// Binds `addr` with large kernel buffers and destination-address reporting.
    pub fn bind(addr: SocketAddr) -> std::io::Result<Socket> {
        let std = crate::util::bind_udp(addr)?;
        let state = quinn_udp::UdpSocketState::new((&std).into())?;
        let io = UdpSocket::from_std(std)?;
        let local = io.local_addr()?;
        Ok(Socket { io, state, local })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Size of the receive buffer [`Socket::recv`] needs: the kernel may coalesce several
    /// datagrams of one peer into a read (GRO).
    pub fn buffer_len(&self) -> usize {
        self.state.gro_segments().max(1) * 2048
    }

    /// Receives the next read's datagrams into `buf`, appending them to `out`.
    pub async fn recv(&self, buf: &mut [u8], out: &mut Vec<Received>) -> std::io::Result<()> {
        let mut meta = [quinn_udp::RecvMeta::default()];
        self.io
            .async_io(Interest::READABLE, || {
                let mut bufs = [IoSliceMut::new(buf)];
                self.state.recv((&self.io).into(), &mut bufs, &mut meta)
            })
            .await?;
        let m = meta[0];
        let to = SocketAddr::new(self.destination(m.dst_ip), self.local.port());
        let stride = m.stride.max(1);
        let mut at = 0;
        while at < m.len {
            let end = (at + stride).min(m.len);
            out.push(Received {
                from: m.addr,
                to,
                range: at..end,
            });
            at = end;
        }
        Ok(())
    }

    /// Sends `contents` to `to` from the local address `from` (one of the host candidates).
    pub async fn send(&self, contents: &[u8], to: SocketAddr, from: SocketAddr) {
        let transmit = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: self.local.ip().is_unspecified().then_some(from.ip()),
        };
        // A send error (a gone peer, a full buffer) loses the datagram, as the network would;
        // ICE and RTP recover.
        let _ = self
            .io
            .async_io(Interest::WRITABLE, || {
                self.state.send((&self.io).into(), &transmit)
            })
            .await;
    }

    /// The local IP a datagram reached: the kernel's report when bound to the unspecified
    /// address (an IPv4 peer on a dual-stack socket arrives as an IPv4-mapped address).
    fn destination(&self, reported: Option<IpAddr>) -> IpAddr {
        if !self.local.ip().is_unspecified() {
            return self.local.ip();
        }
        match reported {
            Some(IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            Some(ip) => ip,
            None => self.local.ip(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bound to the unspecified address, as `live.webrtc_udp` is by default, the socket still
    /// says which of this host's addresses each datagram reached: ICE needs it to match the
    /// check to a host candidate.
    #[tokio::test]
    async fn a_socket_on_every_interface_reports_the_address_each_datagram_reached() {
        let s = Socket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = s.local_addr().port();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"check", ("127.0.0.1", port)).unwrap();
        let mut buf = vec![0u8; s.buffer_len()];
        let mut got = Vec::new();
        s.recv(&mut buf, &mut got).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(got[0].from, peer.local_addr().unwrap());
        assert_eq!(&buf[got[0].range.clone()], b"check");
        // A reply leaves from the address the peer sent to.
        s.send(b"answer", got[0].from, got[0].to).await;
        let mut back = [0u8; 16];
        let (n, from) = peer.recv_from(&mut back).unwrap();
        assert_eq!((&back[..n], from), (&b"answer"[..], got[0].to));
    }
}

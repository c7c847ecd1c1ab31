//! A small HTTP/3 client (quinn and h3) trusting one PEM certificate: what the tests and the
//! protocol benchmark (`benches/protocols.rs`) speak to the server with.

use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// One HTTP/3 connection to a server; clones share it (one stream per request).
#[derive(Clone)]
pub struct H3 {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    authority: String,
    endpoint: quinn::Endpoint,
}

/// A client error, in words.
pub type Error = String;

/// An answer: status, headers and the whole body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: axum::http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl H3 {
    /// Connects to `addr` (UDP) as `localhost`, trusting the certificate in `cert_pem`.
    pub async fn connect(addr: SocketAddr, cert_pem: &Path) -> Result<H3, Error> {
        let endpoint = endpoint(cert_pem, addr.is_ipv6())?;
        let conn = endpoint
            .connect(addr, "localhost")
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| format!("QUIC handshake: {e}"))?;
        H3::over(conn, endpoint, addr.port()).await
    }

    /// HTTP/3 on a QUIC connection `endpoint` made, to a server whose port is `port`.
    pub async fn over(
        conn: quinn::Connection,
        endpoint: quinn::Endpoint,
        port: u16,
    ) -> Result<H3, Error> {
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
            .await
            .map_err(|e| format!("h3 connection: {e}"))?;
        tokio::spawn(async move { driver.wait_idle().await });
        Ok(H3 {
            send,
            authority: format!("localhost:{port}"),
            endpoint,
        })
    }

    /// Closes the connection now (and every clone's), without waiting for the idle timeout.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"done");
    }

    /// GET `path` (with its query) with `headers`.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, Error> {
        let mut req = axum::http::Request::get(format!("https://{}{path}", self.authority));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).map_err(|e| e.to_string())?;
        let mut stream = self
            .send
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        stream.finish().await.map_err(|e| format!("finish: {e}"))?;
        let response = stream
            .recv_response()
            .await
            .map_err(|e| format!("response: {e}"))?;
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.map_err(|e| format!("body: {e}"))? {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: body.freeze(),
        })
    }
}

/// A client endpoint on loopback (IPv6 when `ipv6`) whose connections trust the certificate in
/// `cert_pem` and speak h3.
pub fn endpoint(cert_pem: &Path, ipv6: bool) -> Result<quinn::Endpoint, Error> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in
        rustls::pki_types::CertificateDer::pem_file_iter(cert_pem).map_err(|e| e.to_string())?
    {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let local = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
    let socket =
        crate::util::bind_udp(local.parse().expect("an address")).map_err(|e| e.to_string())?;
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    Ok(endpoint)
}

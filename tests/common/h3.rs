//! An HTTP/3 client of our own for the tests: quinn and h3, trusting one PEM certificate.

use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// One HTTP/3 connection to a server.
pub struct H3 {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    authority: String,
    _endpoint: quinn::Endpoint,
}

/// An answer: status, headers and the whole body.
pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl H3 {
    /// Connects to `addr` (UDP) as `localhost`, trusting the certificate in `cert_pem`.
    pub async fn connect(addr: SocketAddr, cert_pem: &Path) -> H3 {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(cert_pem).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let conn = endpoint
            .connect(addr, "localhost")
            .unwrap()
            .await
            .expect("QUIC handshake");
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
            .await
            .expect("h3 connection");
        tokio::spawn(async move { driver.wait_idle().await });
        H3 {
            send,
            authority: format!("localhost:{}", addr.port()),
            _endpoint: endpoint,
        }
    }

    /// GET `path` (with its query) with `headers`.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = axum::http::Request::get(format!("https://{}{path}", self.authority));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut stream = self
            .send
            .send_request(req.body(()).unwrap())
            .await
            .expect("send request");
        stream.finish().await.expect("finish");
        let response = stream.recv_response().await.expect("response");
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.expect("body") {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: body.freeze(),
        }
    }
}

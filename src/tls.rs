//! The HTTPS listener's certificate, and the rustls configurations that serve it.
//!
//! The certificate comes from PEM files (`server.tls_cert_file`, `server.tls_key_file`) or, with
//! `server.tls = "dev"`, is a self-signed one for `localhost`, `127.0.0.1` and `::1`, made once
//! and kept in `data_dir` so that its fingerprint (which browsers and tests pin) survives a
//! restart. [`Certs::reload`] reads the files again (SIGHUP): new handshakes get the new
//! certificate through [`Certs`]'s resolver, and open connections keep the one they have.

use crate::config::Config;
use anyhow::Context as _;
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// ALPN of HTTP/2 and HTTP/1.1 over TCP, preferred in this order.
pub const ALPN_TCP: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
}

/// The certificate in force, swapped whole on reload.
pub struct Certs {
    source: Source,
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("source", &self.source)
            .field("sha256", &self.fingerprint())
            .finish()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// The development certificate's files in `data_dir`.
pub fn dev_files(data_dir: &Path) -> (PathBuf, PathBuf) {
    (
        data_dir.join("dev-tls-cert.pem"),
        data_dir.join("dev-tls-key.pem"),
    )
}

impl Certs {
    /// The configured certificate; `None` when HTTPS is off.
    pub fn load(config: &Config) -> anyhow::Result<Option<Arc<Certs>>> {
        let s = &config.server;
        let (cert, key) = if s.tls == "dev" {
            let (cert, key) = dev_files(&s.data_dir);
            if !cert.exists() || !key.exists() {
                make_dev(&cert, &key)?;
            }
            (cert, key)
        } else if !s.tls_cert_file.is_empty() {
            (
                PathBuf::from(&s.tls_cert_file),
                PathBuf::from(&s.tls_key_file),
            )
        } else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let source = Source::Files { cert, key };
        let current = RwLock::new(read(&source, &provider)?);
        Ok(Some(Arc::new(Certs {
            source,
            current,
            provider,
        })))
    }

    /// Reads the files again. On an error the certificate in force stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = read(&self.source, &self.provider)?;
        *self.current.write() = fresh;
        Ok(())
    }

    /// SHA-256 of the leaf certificate (DER), as colon-separated hex: what browsers show.
    pub fn fingerprint(&self) -> String {
        let cert = self.current.read().cert[0].clone();
        Sha256::digest(cert.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// When the leaf certificate expires, in Unix seconds (`None` if it does not parse as X.509).
    pub fn not_after(&self) -> Option<i64> {
        let cert = self.current.read().cert[0].clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        Some(parsed.validity().not_after.timestamp())
    }

    /// The rustls configuration of a listener speaking `alpn`.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let mut c = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        c
    }
}

fn read(source: &Source, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let Source::Files { cert, key } = source;
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the certificate {}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "no certificate in {} (PEM \"CERTIFICATE\" blocks)",
        cert.display()
    );
    let der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let ck = CertifiedKey::from_der(chain, der, provider).with_context(|| {
        format!(
            "the key {} does not sign for {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(ck))
}

/// A self-signed certificate for this machine's loopback names, written to `cert` and `key`
/// (the key readable by its owner only).
fn make_dev(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let made = rcgen::generate_simple_self_signed(names).context("making the certificate")?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::util::write_private(key, made.signing_key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key.display()))?;
    std::fs::write(cert, made.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_certificate_is_made_once_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.server.tls = "dev".into();
        let first = Certs::load(&config).unwrap().unwrap();
        let again = Certs::load(&config).unwrap().unwrap();
        assert_eq!(
            first.fingerprint(),
            again.fingerprint(),
            "kept, not made again"
        );
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        first.reload().unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        // A broken file on reload leaves the certificate in force.
        let (cert, _) = dev_files(dir.path());
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(first.reload().is_err());
        assert_eq!(first.fingerprint(), again.fingerprint());
    }

    #[test]
    fn no_tls_configured_is_none() {
        assert!(Certs::load(&Config::default()).unwrap().is_none());
    }
}

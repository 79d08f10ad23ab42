//! TLS for the HTTP listener (HTTPS/WSS) and the RTMPS listener: the certificate and
//! key are read once at bind, and each connection task runs its own handshake, bounded
//! by `tls.handshake_timeout_ms`, before speaking its protocol.
//!
//! Deliberately absent: reloading certificates while running, client certificates,
//! and a choice of crypto provider (always `ring`).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::settings::TlsSettings;

/// ALPN protocols the HTTP listener offers, preferred first.
const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The acceptors of the listeners that speak TLS, built from `[tls]`.
pub struct Acceptors {
    /// For the HTTP listener, when it speaks HTTPS.
    pub http: Option<TlsAcceptor>,
    /// For the RTMPS listener, when there is one.
    pub rtmps: Option<TlsAcceptor>,
}

impl Acceptors {
    /// Reads the certificate and key when TLS is configured. A missing or unusable
    /// file is an error naming its path.
    pub fn load(settings: &TlsSettings) -> io::Result<Self> {
        let (Some(cert_path), Some(key_path)) = (&settings.cert_path, &settings.key_path) else {
            return Ok(Self {
                http: None,
                rtmps: None,
            });
        };
        let certs = read_certs(cert_path)?;
        let key = read_key(key_path)?;
        let config = |alpn: &[&[u8]]| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|builder| {
                    builder
                        .with_no_client_auth()
                        .with_single_cert(certs.clone(), key.clone_key())
                })
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "TLS certificate {} with key {}: {e}",
                            cert_path.display(),
                            key_path.display()
                        ),
                    )
                })?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok::<_, io::Error>(TlsAcceptor::from(Arc::new(config)))
        };
        Ok(Self {
            http: settings.http.then(|| config(&HTTP_ALPN)).transpose()?,
            rtmps: settings
                .rtmps_listen
                .is_some()
                .then(|| config(&[]))
                .transpose()?,
        })
    }
}

fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let failed = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("reading TLS certificate {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))?;
    if certs.is_empty() {
        return Err(failed(&"no PEM certificate in the file"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    // The error names the path, never the key's contents.
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("reading TLS key {}: {e}", path.display()),
        )
    })
}

/// Runs the server side of a TLS handshake on `stream`, giving up after `timeout` or
/// when the server shuts down.
pub(crate) async fn accept<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
    shutdown: &CancellationToken,
) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        _ = shutdown.cancelled() => Err(io::Error::other("server shutting down")),
        done = tokio::time::timeout(timeout, acceptor.accept(stream)) => match done {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TLS handshake not finished within {timeout:?}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings(dir: &Path, rtmps: bool) -> TlsSettings {
        TlsSettings {
            cert_path: Some(dir.join("cert.pem")),
            key_path: Some(dir.join("key.pem")),
            rtmps_listen: rtmps.then(|| "127.0.0.1:0".parse().unwrap()),
            ..TlsSettings::default()
        }
    }

    fn write_cert(dir: &Path) -> rcgen::CertifiedKey {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
        certified
    }

    #[test]
    fn no_paths_means_no_tls() {
        let acceptors = Acceptors::load(&TlsSettings::default()).unwrap();
        assert!(acceptors.http.is_none() && acceptors.rtmps.is_none());
    }

    #[test]
    fn loads_a_certificate_for_each_listener_that_asks() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path());
        let acceptors = Acceptors::load(&settings(dir.path(), true)).unwrap();
        let http = acceptors.http.unwrap();
        assert_eq!(
            http.config().alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(acceptors.rtmps.unwrap().config().alpn_protocols.is_empty());
        let no_http = TlsSettings {
            http: false,
            ..settings(dir.path(), false)
        };
        let acceptors = Acceptors::load(&no_http).unwrap();
        assert!(acceptors.http.is_none() && acceptors.rtmps.is_none());
    }

    #[test]
    fn bad_files_fail_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = |settings: &TlsSettings| Acceptors::load(settings).err().unwrap().to_string();
        let missing = error(&settings(dir.path(), false));
        assert!(missing.contains("cert.pem"), "{missing}");

        write_cert(dir.path());
        std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
        let no_key = error(&settings(dir.path(), false));
        assert!(no_key.contains("key.pem"), "{no_key}");

        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        let no_cert = error(&settings(dir.path(), false));
        assert!(no_cert.contains("cert.pem"), "{no_cert}");

        // A key that belongs to another certificate.
        write_cert(dir.path());
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("key.pem"), other.serialize_pem()).unwrap();
        let mismatch = error(&settings(dir.path(), false));
        assert!(mismatch.contains("key.pem"), "{mismatch}");
    }
}

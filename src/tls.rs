//! The server's certificate: read from PEM files, or made at start.
//!
//! TLS itself happens in `server::transport`, a layer under the
//! connection. This module only prepares what every TLS connection
//! shares: one [`rustls::ServerConfig`], built once, with the certificate
//! chain and its private key.
//!
//! Without `--tls-cert` and `--tls-key`, a self-signed certificate for
//! `localhost`, `127.0.0.1` and `::1` is made with rcgen. No browser trusts
//! it (nobody vouches for it: that is what a certificate authority is
//! for), so the server prints its *pin*: the SHA-256 of its public key
//! (SubjectPublicKeyInfo), base64, the form Chromium's
//! `--ignore-certificate-errors-spki-list` and HPKP (RFC 7469 §2.4) use.
//! A learner who trusts the pin trusts this one key and nothing else.

use base64::Engine;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The names the self-signed certificate is made for: what a learner
/// types in the address bar on their own machine.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What every TLS connection shares.
pub struct Certificate {
    /// rustls's configuration, with the chain and key; shared by every
    /// connection of both TLS doors.
    pub config: Arc<ServerConfig>,
    /// The pin of a certificate made at start (`None` for one from files:
    /// whoever issued it is who the browser trusts).
    pub pin: Option<String>,
}

impl Certificate {
    /// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private
    /// key), or makes a self-signed certificate when neither is given.
    pub fn load(cert: Option<&Path>, key: Option<&Path>) -> io::Result<Certificate> {
        let (chain, key, pin) = match (cert, key) {
            (Some(cert), Some(key)) => (read_chain(cert)?, read_key(key)?, None),
            (None, None) => self_signed()?,
            _ => return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--tls-cert and --tls-key go together: give both, or neither for a self-signed certificate",
            )),
        };
        let config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(invalid)?;
        Ok(Certificate {
            config: Arc::new(config),
            pin,
        })
    }

    /// The same certificate, offering `protocols` by ALPN (RFC 7301). The
    /// web door says `http/1.1`: a browser that would rather speak HTTP/2
    /// then knows at once that it cannot, instead of guessing.
    pub fn with_alpn(&self, protocols: &[&[u8]]) -> Arc<ServerConfig> {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn read_chain(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no CERTIFICATE in this PEM file", path.display()),
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

/// A certificate for [`SELF_SIGNED_NAMES`], its key, and its pin.
type SelfSigned = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Option<String>,
);

fn self_signed() -> io::Result<SelfSigned> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    // The names a browser checks are the subject alternative names; the
    // common name is only what `openssl s_client` and the browser's
    // certificate viewer show a learner.
    let mut params = rcgen::CertificateParams::new(names).map_err(invalid)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "duplex, self-signed at start");
    let key_pair = rcgen::KeyPair::generate().map_err(invalid)?;
    let cert = params.self_signed(&key_pair).map_err(invalid)?;
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key_pair);
    let key = PrivateKeyDer::try_from(key_pair.serialize_der()).map_err(invalid)?;
    Ok((vec![cert.der().clone()], key, Some(spki_pin(&spki))))
}

/// The pin of a public key: base64 of the SHA-256 of its DER
/// SubjectPublicKeyInfo (RFC 7469 §2.4).
///
/// The hash is the provider's own SHA-256, the one a TLS 1.3 handshake
/// with `TLS13_AES_128_GCM_SHA256` uses (RFC 8446 §B.4): no second crypto
/// library for one digest.
pub fn spki_pin(spki_der: &[u8]) -> String {
    let suite = provider::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let digest = match suite.tls13() {
        Some(tls13) => tls13.common.hash_provider.hash(spki_der),
        // A TLS 1.3 suite is always one: `tls13()` is `None` only for 1.2.
        None => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
    };
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_and_pinned() {
        let cert = Certificate::load(None, None).expect("self-signed");
        let pin = cert.pin.expect("a pin");
        // 32 bytes of SHA-256 are 44 characters of base64.
        assert_eq!(pin.len(), 44, "{pin}");
    }

    #[test]
    fn cert_and_key_come_together() {
        let err = Certificate::load(Some(Path::new("cert.pem")), None)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("--tls-key"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let path = Path::new("/nonexistent/duplex-cert.pem");
        let err = Certificate::load(Some(path), Some(path)).err().expect("refused");
        assert!(err.to_string().contains("duplex-cert.pem"), "{err}");
    }
}

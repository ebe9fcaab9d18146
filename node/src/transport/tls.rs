//! TLS for labnet: mutual authentication pinned to node keys, no CA.
//!
//! Each node presents its own self-signed Ed25519 certificate. Whether to trust
//! it is not a question for a certificate authority but for the node's peer
//! table, so the verifiers here do exactly three things and then hand the NodeId
//! to the caller:
//!
//! 1. refuse anything but exactly one certificate (no intermediates: a chain
//!    could smuggle a pinned certificate behind a rogue leaf);
//! 2. parse it strictly and require an Ed25519 key;
//! 3. check the TLS 1.3 handshake signature with *that* key. This is the step
//!    examples often skip by returning `HandshakeSignatureValid::assertion()`;
//!    without it, anyone holding a node's public certificate could impersonate
//!    it. The signature is checked against the very key the NodeId is hashed
//!    from.
//!
//! When dialing, the verifier also knows which NodeId it expects and aborts the
//! handshake on any other key (a different node answering the address).
//!
//! TLS 1.3 only. Session resumption and 0-RTT are off on both sides: a resumed
//! session skips certificate verification, so a revoked peer could come back
//! through a ticket issued before it was revoked.

use std::sync::Arc;

use labnet_protocol::handshake::ALPN;
use labnet_protocol::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::identity::Identity;

/// The server name clients put in their TLS hello. Verifiers ignore it (nodes
/// are named by key, not by DNS), but TLS requires one.
pub const SERVER_NAME: &str = "labnet";

/// The OID of Ed25519 keys (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration or the key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the rustls configuration.
    #[error("QUIC crypto configuration: {0}")]
    Quic(String),
}

/// The ring provider: the workspace's one crypto backend.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a presented certificate and returns the NodeId of its key, or why it
/// is refused.
pub fn node_id_of_certificate(cert: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
    let (spki, raw_key) = ed25519_key(cert)?;
    let _ = spki;
    Ok(NodeId::from_public_key(&raw_key))
}

/// The certificate's SubjectPublicKeyInfo (DER) and raw Ed25519 key, after strict
/// parsing. Anything else is refused.
fn ed25519_key(cert: &CertificateDer<'_>) -> Result<(Vec<u8>, Vec<u8>), rustls::Error> {
    let bad = |why: &str| {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(CertRefused(why.to_string())),
        )))
    };
    let (rest, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| bad("malformed certificate DER"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate"));
    }
    let spki = parsed.tbs_certificate.subject_pki.clone();
    if spki.algorithm.algorithm.to_id_string() != ED25519_OID {
        return Err(bad("the certificate key is not Ed25519"));
    }
    let raw = spki.subject_public_key.data.to_vec();
    if raw.len() != 32 {
        return Err(bad("the Ed25519 key has the wrong length"));
    }
    Ok((spki.raw.to_vec(), raw))
}

/// The reason a certificate was refused, carried inside rustls's error.
#[derive(Debug)]
struct CertRefused(String);

impl std::fmt::Display for CertRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertRefused {}

fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<NodeId, rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(CertRefused(
                "a labnet node presents exactly one self-signed certificate, not a chain".into(),
            )))),
        ));
    }
    node_id_of_certificate(end_entity)
}

fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    // Checked with the key the NodeId comes from, by the provider's Ed25519.
    let (spki, _) = ed25519_key(cert)?;
    verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(spki.as_slice()),
        dss,
        algorithms,
    )
}

/// The handshake-signature half of both verifiers, which rustls asks of the
/// server and the client verifier alike: TLS 1.2 is refused, a TLS 1.3
/// signature is checked with the certificate's own Ed25519 key.
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOffered,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

/// Verifies the server's certificate when dialing.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    /// The node we mean to reach; any other key aborts the handshake.
    expected: NodeId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedServerVerifier {
    /// A verifier that accepts only `expected`'s key.
    pub fn new(expected: NodeId) -> PinnedServerVerifier {
        PinnedServerVerifier {
            expected,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = check_chain(end_entity, intermediates)?;
        if presented != self.expected {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(CertRefused(
                    format!(
                        "expected node {}, but {} answered",
                        self.expected, presented
                    ),
                )))),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_checks!();
}

/// Verifies a connecting client's certificate. Who it is (approved, unknown,
/// revoked) is decided after the handshake by the peer table.
#[derive(Debug)]
pub struct NodeClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl Default for NodeClientVerifier {
    fn default() -> Self {
        NodeClientVerifier {
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_chain(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_checks!();
}

fn key_of(identity: &Identity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der().to_vec()))
}

fn chain_of(identity: &Identity) -> Vec<CertificateDer<'static>> {
    vec![CertificateDer::from(identity.cert_der().to_vec())]
}

/// The rustls server side: TLS 1.3, client certificates required, ALPN
/// `labnet/1`, no tickets, no session cache, no early data.
pub fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(NodeClientVerifier::default()))
        .with_single_cert(chain_of(identity), key_of(identity))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Ok(config)
}

/// The rustls client side for dialing `expected`: TLS 1.3, our certificate
/// offered, the server pinned to `expected`, no resumption, no early data.
pub fn client_config(
    identity: &Identity,
    expected: NodeId,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier::new(expected)))
        .with_client_auth_cert(chain_of(identity), key_of(identity))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// quinn's server crypto from [`server_config`].
pub fn quic_server_config(
    identity: &Identity,
) -> Result<quinn::crypto::rustls::QuicServerConfig, TlsError> {
    quinn::crypto::rustls::QuicServerConfig::try_from(server_config(identity)?)
        .map_err(|e| TlsError::Quic(e.to_string()))
}

/// quinn's client crypto from [`client_config`].
pub fn quic_client_config(
    identity: &Identity,
    expected: NodeId,
) -> Result<quinn::crypto::rustls::QuicClientConfig, TlsError> {
    quinn::crypto::rustls::QuicClientConfig::try_from(client_config(identity, expected)?)
        .map_err(|e| TlsError::Quic(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_from_certificate_matches_identity() {
        let id = Identity::generate().unwrap();
        let cert = CertificateDer::from(id.cert_der().to_vec());
        assert_eq!(node_id_of_certificate(&cert).unwrap(), id.node_id());
    }

    #[test]
    fn malformed_and_non_ed25519_certificates_are_refused() {
        assert!(node_id_of_certificate(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])).is_err());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["labnet".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = node_id_of_certificate(&CertificateDer::from(cert.der().to_vec())).unwrap_err();
        assert!(err.to_string().contains("not Ed25519"), "{err}");
        let id = Identity::generate().unwrap();
        let mut trailing = id.cert_der().to_vec();
        trailing.push(0);
        assert!(node_id_of_certificate(&CertificateDer::from(trailing)).is_err());
    }

    #[test]
    fn no_resumption_and_no_early_data_on_either_side() {
        let id = Identity::generate().unwrap();
        let server = server_config(&id).unwrap();
        assert_eq!(server.send_tls13_tickets, 0, "no session tickets");
        assert_eq!(server.max_early_data_size, 0, "no 0-RTT");
        assert!(
            !server.session_storage.can_cache(),
            "no server-side session cache"
        );
        let client = client_config(&id, Identity::generate().unwrap().node_id()).unwrap();
        assert!(!client.enable_early_data, "no 0-RTT");
        assert!(
            format!("{:?}", client.resumption).contains("Disabled")
                || format!("{:?}", client.resumption).contains("disabled"),
            "no client resumption: {:?}",
            client.resumption
        );
    }

    #[test]
    fn chains_are_refused() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let err = check_chain(
            &CertificateDer::from(a.cert_der().to_vec()),
            &[CertificateDer::from(b.cert_der().to_vec())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
}

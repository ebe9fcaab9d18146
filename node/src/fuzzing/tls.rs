//! The `cert_pin` target: the pinned TLS verifiers on arbitrary DER.

use std::time::Duration;

use labnet_protocol::NodeId;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::transport::tls::{node_id_of_certificate, NodeClientVerifier, PinnedServerVerifier};

use super::view::{fuzz_key, LOCAL};
use super::Seed;

/// The pinned verifiers on arbitrary DER. A certificate whose key is NodeId
/// `id` is accepted by a pin on `id` and by the client verifier, refused by a
/// pin on any other id and when it comes with a chain; one that is refused has
/// no NodeId.
pub fn cert_pin(der: &[u8]) {
    let cert = CertificateDer::from(der);
    let name = ServerName::try_from("labnet").expect("a valid server name");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_764_000_000));
    let other = fuzz_key(LOCAL).node_id();
    let pinned = |id: NodeId, chain: &[CertificateDer<'_>]| {
        PinnedServerVerifier::new(id)
            .verify_server_cert(&cert, chain, &name, &[], now)
            .is_ok()
    };
    let client = NodeClientVerifier::default()
        .verify_client_cert(&cert, &[], now)
        .is_ok();
    match node_id_of_certificate(&cert) {
        Ok(id) => {
            assert!(pinned(id, &[]), "a pin refuses the key it names");
            assert!(client, "the client verifier refuses a node key");
            assert!(!pinned(id, std::slice::from_ref(&cert)), "a chain passed");
            if id != other {
                assert!(!pinned(other, &[]), "a pin accepts another key");
            }
        }
        Err(_) => {
            assert!(!pinned(other, &[]), "a pin accepts what has no NodeId");
            assert!(!client, "the client verifier accepts what has no NodeId");
        }
    }
}

/// Seeds of `cert_pin`: a node's own certificate, certificates with other
/// key types, and damaged DER.
pub fn cert_pin_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    if let Ok(identity) = crate::identity::Identity::generate() {
        let der = identity.cert_der().to_vec();
        let mut trailing = der.clone();
        trailing.push(0);
        let cut = der[..der.len() / 2].to_vec();
        out.push(("node-cert", der));
        out.push(("node-cert-trailing", trailing));
        out.push(("node-cert-cut", cut));
    }
    for (name, alg) in [
        ("p256-cert", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("p384-cert", &rcgen::PKCS_ECDSA_P384_SHA384),
    ] {
        if let Ok(key) = rcgen::KeyPair::generate_for(alg) {
            if let Ok(params) = rcgen::CertificateParams::new(vec!["labnet".to_string()]) {
                if let Ok(cert) = params.self_signed(&key) {
                    out.push((name, cert.der().to_vec()));
                }
            }
        }
    }
    out
}

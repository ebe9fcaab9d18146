//! A node's identity: its Ed25519 key pair, its self-signed certificate, its NodeId.
//!
//! The key pair is made once, at `labnet init` (or the first `labnet run`), and kept
//! in the data directory for the life of the node: losing it means becoming a new
//! node that every peer must approve again. The certificate is self-signed with
//! rcgen; nobody is asked to trust a certificate authority, because peers pin the
//! key itself (its hash is the NodeId) in the way Syncthing pins device IDs.
//!
//! Files in the data directory:
//! - `node.key`: the private key, PKCS#8 PEM, mode 0600;
//! - `node.crt`: the self-signed certificate, PEM.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use labnet_protocol::NodeId;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ED25519};
use ring::signature::Ed25519KeyPair;

/// File name of the private key inside the data directory.
pub const KEY_FILE: &str = "node.key";
/// File name of the certificate inside the data directory.
pub const CERT_FILE: &str = "node.crt";

/// Why an identity could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a key or certificate file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// rcgen refused to make or parse a key or certificate.
    #[error("{what}: {source}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// The key file holds a key that is not Ed25519.
    #[error("{path}: the node key must be Ed25519")]
    WrongAlgorithm {
        /// The key file.
        path: PathBuf,
    },
    /// ring refused the key for signing.
    #[error("the node key cannot sign: {reason}")]
    Signer {
        /// ring's reason.
        reason: String,
    },
    /// The certificate on disk was not made from the key on disk.
    #[error("{cert} does not belong to the key in {key}: restore the pair from the same backup")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// Bytes of an Ed25519 signature.
const SIGNATURE_LEN: usize = labnet_protocol::statement::SIGNATURE_LEN;

/// A node's key pair and certificate, and the NodeId they give.
pub struct Identity {
    /// The private key, PKCS#8 DER; rustls needs it to sign handshakes.
    key_der: Vec<u8>,
    /// The self-signed certificate, DER; it is what peers see and pin.
    cert_der: Vec<u8>,
    /// The raw 32-byte Ed25519 public key the NodeId is derived from.
    public_key: Vec<u8>,
    /// Hash of `public_key`: how peers name this node.
    node_id: NodeId,
    /// The key, parsed once for signing statements (rustls parses its own copy).
    signer: Ed25519KeyPair,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is left out on purpose: Debug output ends up in logs.
        fmt_node_only(f, "Identity", "node_id", &self.node_id)
    }
}

/// Formats a value that holds a node's key or its live handles as its type
/// `name` and its NodeId under `field`, nothing else: Debug output ends up in
/// logs, and the rest is secret or noise.
pub(crate) fn fmt_node_only(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    field: &str,
    node_id: &NodeId,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field(field, node_id)
        .finish_non_exhaustive()
}

impl Identity {
    /// Makes a new key pair and a self-signed certificate for it.
    pub fn generate() -> Result<Identity, IdentityError> {
        let key_pair =
            KeyPair::generate_for(&PKCS_ED25519).map_err(|source| IdentityError::Crypto {
                what: "generating the node key",
                source,
            })?;
        Identity::from_key_pair(key_pair)
    }

    /// Builds the identity (and a fresh certificate) around an existing key pair.
    pub fn from_key_pair(key_pair: KeyPair) -> Result<Identity, IdentityError> {
        let public_key = key_pair.public_key_raw().to_vec();
        let node_id = NodeId::from_public_key(&public_key);
        let mut params = CertificateParams::new(vec!["labnet".to_string()]).map_err(|source| {
            IdentityError::Crypto {
                what: "preparing the certificate",
                source,
            }
        })?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, node_id.to_compact());
        params.distinguished_name = name;
        // A wide validity window: the certificate is a container for the key, and
        // peers check the key, not the dates, so expiry would only break old nodes.
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(4000, 1, 1);
        let cert = params
            .self_signed(&key_pair)
            .map_err(|source| IdentityError::Crypto {
                what: "signing the certificate",
                source,
            })?;
        let key_der = key_pair.serialize_der();
        Ok(Identity {
            signer: signer_of(&key_der)?,
            key_der,
            cert_der: cert.der().to_vec(),
            public_key,
            node_id,
        })
    }

    /// Writes the key (mode 0600) and certificate into `dir`, refusing to overwrite.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let files = [
            (KEY_FILE, pem_encode("PRIVATE KEY", &self.key_der), 0o600),
            (CERT_FILE, pem_encode("CERTIFICATE", &self.cert_der), 0o644),
        ];
        for (name, pem, mode) in files {
            let path = dir.join(name);
            write_new_file(&path, pem.as_bytes(), mode)
                .map_err(|source| IdentityError::Io { path, source })?;
        }
        Ok(())
    }

    /// Loads the identity saved in `dir` and checks that key and certificate match.
    pub fn load(dir: &Path) -> Result<Identity, IdentityError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let key_pem = read_to_string(&key_path)?;
        let key_pair = KeyPair::from_pem(&key_pem).map_err(|source| IdentityError::Crypto {
            what: "reading node.key",
            source,
        })?;
        if key_pair.algorithm() != &PKCS_ED25519 {
            return Err(IdentityError::WrongAlgorithm { path: key_path });
        }
        let cert_pem = read_to_string(&cert_path)?;
        let cert_der = pem_decode(&cert_pem).ok_or_else(|| IdentityError::Io {
            path: cert_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a PEM certificate"),
        })?;
        let public_key = key_pair.public_key_raw().to_vec();
        // The certificate must carry this exact public key, or peers would pin one
        // key while we sign with another and every handshake would fail.
        if !contains_subslice(&cert_der, &public_key) {
            return Err(IdentityError::Mismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let key_der = key_pair.serialize_der();
        Ok(Identity {
            signer: signer_of(&key_der)?,
            key_der,
            cert_der,
            node_id: NodeId::from_public_key(&public_key),
            public_key,
        })
    }

    /// Whether `dir` already holds a key file.
    pub fn exists(dir: &Path) -> bool {
        dir.join(KEY_FILE).exists()
    }

    /// This node's NodeId.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The certificate, DER, as presented in TLS handshakes.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, PKCS#8 DER, for rustls.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Signs `message` with the node key: how this node vouches for the
    /// versions of its publications and for its retraction confirmations
    /// (`labnet_protocol::statement`), which anyone can check with the key
    /// its NodeId is the hash of.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        sign_with(&self.signer, message)
    }
}

/// `message` signed with `key`, as statements carry signatures.
fn sign_with(key: &Ed25519KeyPair, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(key.sign(message).as_ref());
    out
}

impl labnet_protocol::statement::Signer for Identity {
    fn public_key(&self) -> [u8; labnet_protocol::statement::PUBLIC_KEY_LEN] {
        let mut key = [0u8; labnet_protocol::statement::PUBLIC_KEY_LEN];
        key.copy_from_slice(&self.public_key);
        key
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        Identity::sign(self, message)
    }
}

/// A signing key from a fixed Ed25519 seed, for tests and fuzz seeds: what it
/// signs is the same bytes in every run, so signed seeds stay valid. It has no
/// certificate; a node's own key is an [`Identity`].
#[cfg(any(test, feature = "test-support"))]
pub struct SeededKey(Ed25519KeyPair);

#[cfg(any(test, feature = "test-support"))]
impl SeededKey {
    /// The key whose Ed25519 seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> SeededKey {
        SeededKey(Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a key"))
    }

    /// Key number `n` of the family `fill`: its seed is `fill` in every byte
    /// but the first, which is `n`.
    pub fn numbered(fill: u8, n: u8) -> SeededKey {
        let mut seed = [fill; 32];
        seed[0] = n;
        SeededKey::from_seed(seed)
    }

    /// The NodeId of its public key.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.public_key_bytes())
    }

    /// A version statement of `doc_id` at `version` with `heads` (sorted
    /// here, duplicates kept: tests sign malformed lists on purpose), signed
    /// with this key and encoded. It is issued at a fixed time plus
    /// `version`, so the same arguments give the same bytes: committed fuzz
    /// corpora and simulation seeds depend on that.
    pub fn sign_version(
        &self,
        doc_id: &labnet_protocol::sync::DocId,
        version: u64,
        heads: &[automerge::ChangeHash],
        scope: labnet_protocol::statement::ScopeClass,
        retracted: bool,
    ) -> Vec<u8> {
        let mut heads: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
        heads.sort();
        let body = labnet_protocol::statement::VersionStatement {
            publication: doc_id.clone(),
            origin_key: self.public_key_bytes(),
            version,
            heads,
            scope,
            retracted,
            issued_at: 1_764_000_000 + version,
        };
        labnet_protocol::statement::Signed::sign(body, self).encode()
    }

    fn public_key_bytes(&self) -> [u8; labnet_protocol::statement::PUBLIC_KEY_LEN] {
        use ring::signature::KeyPair as _;
        let mut key = [0u8; labnet_protocol::statement::PUBLIC_KEY_LEN];
        key.copy_from_slice(self.0.public_key().as_ref());
        key
    }
}

#[cfg(any(test, feature = "test-support"))]
impl labnet_protocol::statement::Signer for SeededKey {
    fn public_key(&self) -> [u8; labnet_protocol::statement::PUBLIC_KEY_LEN] {
        self.public_key_bytes()
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        sign_with(&self.0, message)
    }
}

/// ring's signing key from the PKCS#8 document rcgen wrote (version 1, without
/// the public key, hence the "maybe unchecked" parser).
fn signer_of(key_der: &[u8]) -> Result<Ed25519KeyPair, IdentityError> {
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(key_der).map_err(|e| IdentityError::Signer {
        reason: e.to_string(),
    })
}

fn read_to_string(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `path` with `mode` from the start, so a key is never readable by
/// others, not even for an instant; never overwrites an existing file; and is
/// on disk when it returns. The data directory writes its config the same way.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    pem::parse(text)
        .ok()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
}

fn contains_subslice(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new identity saved in a fresh directory, and the one loaded back from it.
    fn saved_and_reloaded() -> (tempfile::TempDir, Identity, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate().unwrap();
        identity.save(dir.path()).unwrap();
        let loaded = Identity::load(dir.path()).unwrap();
        (dir, identity, loaded)
    }

    #[test]
    fn save_and_load_round_trip_with_private_key_mode() {
        let (dir, identity, loaded) = saved_and_reloaded();
        assert_eq!(loaded.node_id(), identity.node_id());
        assert_eq!(loaded.cert_der(), identity.cert_der());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn statements_signed_by_a_reloaded_key_verify_against_its_node_id() {
        use labnet_protocol::statement::{ScopeClass, Signable, SignedStatement, VersionStatement};
        let (_dir, identity, loaded) = saved_and_reloaded();
        let origin_key: [u8; 32] = loaded.public_key().try_into().unwrap();
        let statement = VersionStatement {
            publication: labnet_protocol::sync::publication_id(loaded.node_id(), "p").unwrap(),
            origin_key,
            version: 1,
            heads: vec![[3; 32]],
            scope: ScopeClass::Public,
            retracted: false,
            issued_at: 1,
        };
        let signature = loaded.sign(&statement.signing_bytes());
        assert_eq!(signature, identity.sign(&statement.signing_bytes()));
        let signed = SignedStatement::from_parts(statement, &signature).unwrap();
        assert_eq!(signed.body.origin(), identity.node_id());
        assert_eq!(signed.verify(), Ok(()));
    }

    #[test]
    fn save_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        Identity::generate().unwrap().save(dir.path()).unwrap();
        let before = fs::read(dir.path().join(KEY_FILE)).unwrap();
        assert!(Identity::generate().unwrap().save(dir.path()).is_err());
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), before);
    }

    #[test]
    fn certificate_from_another_key_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        Identity::generate().unwrap().save(a.path()).unwrap();
        Identity::generate().unwrap().save(b.path()).unwrap();
        fs::copy(b.path().join(CERT_FILE), a.path().join(CERT_FILE)).unwrap();
        assert!(matches!(
            Identity::load(a.path()),
            Err(IdentityError::Mismatch { .. })
        ));
    }
}

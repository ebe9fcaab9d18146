//! Signed statements: what a node vouches for, with its own key.
//!
//! A publication has one writer, its origin. Once publications travel through
//! relays, whoever delivers a version no longer says anything about who wrote
//! it, so every version an origin publishes comes with a [`VersionStatement`]
//! signed with the origin's node key (the Ed25519 key its NodeId is the hash
//! of). The statement binds the publication's id, the origin, a version number
//! that only grows, the Automerge heads of that version, its scope class,
//! whether it is retracted, and when it was issued. Automerge change hashes
//! commit to their dependencies, so signed heads authenticate the whole
//! history behind them.
//!
//! A replica that deletes a retracted publication answers with a
//! [`RetractionConfirmation`], signed with its own key, which travels back to
//! the origin through whatever relays lie between.
//!
//! This module does no I/O and holds no private key: it encodes, decodes and
//! verifies. Signing is the node's ([`Signed::from_parts`] takes the
//! signature of [`Signable::signing_bytes`]).
//!
//! # Encoding
//!
//! Fields in order, integers as LEB128 varints, heads as 32 raw bytes, the key
//! as 32 raw bytes, the signature as 64 raw bytes at the end. What is signed is
//! a domain tag followed by the fields, so a statement can never be replayed as
//! another kind of signed message. Decoding checks every length before it
//! allocates, refuses trailing bytes, and never panics.
//!
//! ```
//! use labnet_protocol::statement::{ScopeClass, Signable, SignedStatement, VersionStatement};
//! use labnet_protocol::sync::publication_id;
//! use labnet_protocol::NodeId;
//! use ring::signature::{Ed25519KeyPair, KeyPair};
//!
//! let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
//! let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
//! let origin_key: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
//! let statement = VersionStatement {
//!     publication: publication_id(NodeId::from_public_key(&origin_key), "milma")?,
//!     origin_key,
//!     version: 1,
//!     heads: vec![[7; 32]],
//!     scope: ScopeClass::Public,
//!     retracted: false,
//!     issued_at: 1_764_000_000,
//! };
//! let signature = key.sign(&statement.signing_bytes());
//! let signed = SignedStatement::from_parts(statement, signature.as_ref())?;
//! let received = SignedStatement::decode(&signed.encode())?;
//! received.verify()?;
//! assert_eq!(received.body.version, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ring::signature::{UnparsedPublicKey, ED25519};

use crate::sync::{
    origin_of, put_doc_id, put_varint, DecodeError, DocId, Reader, HEADS_PER_ENTRY_MAX,
};
use crate::NodeId;

/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The longest encoded signed statement: a document id of at most 128 bytes,
/// [`HEADS_PER_ENTRY_MAX`] heads of 32 bytes, a key, a signature and a few
/// varints fit well below it. A receiver refuses anything longer unread.
pub const STATEMENT_LEN_MAX: usize = 4096;

/// What a version statement's signature covers first: a statement can never be
/// taken for another kind of signed message.
const VERSION_DOMAIN: &[u8] = b"labnet version statement v1\0";

/// What a retraction confirmation's signature covers first.
const CONFIRMATION_DOMAIN: &[u8] = b"labnet retraction confirmation v1\0";

/// Who a publication is for, in general terms: a statement never lists the
/// cities of a narrow scope (a relay must not learn whom the origin named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeClass {
    /// Every partner and subscriber; relayed.
    Public,
    /// The origin's partner cities; delivered by the origin only.
    Partners,
    /// Cities the origin named; delivered by the origin only.
    Named,
}

impl ScopeClass {
    /// The name kept in the store and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeClass::Public => "public",
            ScopeClass::Partners => "partners",
            ScopeClass::Named => "named",
        }
    }

    /// The class a stored name names.
    pub fn from_name(name: &str) -> Option<ScopeClass> {
        match name {
            "public" => Some(ScopeClass::Public),
            "partners" => Some(ScopeClass::Partners),
            "named" => Some(ScopeClass::Named),
            _ => None,
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            ScopeClass::Public => 1,
            ScopeClass::Partners => 2,
            ScopeClass::Named => 3,
        }
    }

    fn from_byte(b: u8) -> Result<ScopeClass, StatementError> {
        match b {
            1 => Ok(ScopeClass::Public),
            2 => Ok(ScopeClass::Partners),
            3 => Ok(ScopeClass::Named),
            other => Err(StatementError::BadScope(other)),
        }
    }
}

/// Why a statement or confirmation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Longer than [`STATEMENT_LEN_MAX`].
    #[error("signed statement of {0} bytes exceeds the maximum")]
    TooLong(usize),
    /// The bytes do not decode.
    #[error("malformed signed statement: {0}")]
    Malformed(#[from] DecodeError),
    /// A scope class byte that names none.
    #[error("unknown scope class {0}")]
    BadScope(u8),
    /// Heads out of order or repeated: a version has exactly one encoding.
    #[error("heads are not sorted and distinct")]
    UnsortedHeads,
    /// A signature of the wrong length.
    #[error("a signature has {SIGNATURE_LEN} bytes, this has {0}")]
    SignatureLength(usize),
    /// The publication id names another origin than the key that signed.
    #[error("the publication id does not name the signing origin")]
    NotTheOrigin,
    /// The signature does not verify against the key.
    #[error("bad signature")]
    BadSignature,
}

/// What an origin says about one version of its publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatement {
    /// The publication (its id names the origin).
    pub publication: DocId,
    /// The origin's Ed25519 public key; its hash is the origin's NodeId.
    pub origin_key: [u8; PUBLIC_KEY_LEN],
    /// Grows with every version, retraction included: a replica keeps the
    /// newest it has seen and ignores older ones.
    pub version: u64,
    /// The Automerge heads of this version, sorted and distinct.
    pub heads: Vec<[u8; 32]>,
    /// Who the version is for.
    pub scope: ScopeClass,
    /// The origin withdrew the publication: replicas delete it and confirm.
    pub retracted: bool,
    /// When the origin issued it, in seconds since the Unix epoch.
    pub issued_at: u64,
}

/// How a signed kind is laid out on the wire: private to this crate, so the
/// encodings (and what they are bounded by) stay defined here alone.
// Reachable from a public trait, but only nameable in this crate: the
// crate-private reader in its signature never reaches a caller outside.
#[allow(private_interfaces)]
mod sealed {
    use super::StatementError;
    use crate::sync::Reader;

    pub trait Fields: Sized {
        /// What the signature covers first, so one kind of signed message can
        /// never be taken for another.
        const DOMAIN: &'static [u8];
        /// Appends the canonical encoding of the fields.
        fn encode_fields(&self, out: &mut Vec<u8>);
        /// Reads the fields back, bounded.
        fn decode_fields(r: &mut Reader<'_>) -> Result<Self, StatementError>;
    }
}

use sealed::Fields;

/// What a node can sign: a domain tag, a canonical encoding, and the key that
/// must have signed it. [`Signed`] does the rest, the same way for every kind.
pub trait Signable: Fields {
    /// The public key the signature must verify against.
    fn signer_key(&self) -> &[u8; PUBLIC_KEY_LEN];

    /// Checks beyond the signature (none unless a kind says so).
    fn check(&self) -> Result<(), StatementError> {
        Ok(())
    }

    /// The node that signs it: the hash of its key.
    fn signer(&self) -> NodeId {
        NodeId::from_public_key(self.signer_key())
    }

    /// The bytes the node signs.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Self::DOMAIN.to_vec();
        self.encode_fields(&mut out);
        out
    }
}

impl VersionStatement {
    /// The origin's NodeId, from its key.
    pub fn origin(&self) -> NodeId {
        self.signer()
    }
}

// The trait is sealed (its module is private), so the crate-private reader in
// its signature never reaches a caller outside this crate.
#[allow(private_interfaces)]
impl Fields for VersionStatement {
    const DOMAIN: &'static [u8] = VERSION_DOMAIN;

    fn encode_fields(&self, out: &mut Vec<u8>) {
        put_doc_id(out, &self.publication);
        out.extend_from_slice(&self.origin_key);
        put_varint(out, self.version);
        put_varint(out, self.heads.len() as u64);
        for h in &self.heads {
            out.extend_from_slice(h);
        }
        out.push(self.scope.to_byte());
        out.push(u8::from(self.retracted));
        put_varint(out, self.issued_at);
    }

    fn decode_fields(r: &mut Reader<'_>) -> Result<VersionStatement, StatementError> {
        let publication = r.doc_id()?;
        let origin_key = r.hash()?;
        let version = r.varint()?;
        let count = r.len("heads", HEADS_PER_ENTRY_MAX)?;
        let mut heads = Vec::with_capacity(count);
        for _ in 0..count {
            heads.push(r.hash()?);
        }
        if heads.windows(2).any(|w| w[0] >= w[1]) {
            return Err(StatementError::UnsortedHeads);
        }
        let scope = ScopeClass::from_byte(r.byte()?)?;
        let retracted = r.bool()?;
        let issued_at = r.varint()?;
        Ok(VersionStatement {
            publication,
            origin_key,
            version,
            heads,
            scope,
            retracted,
            issued_at,
        })
    }
}

impl Signable for VersionStatement {
    fn signer_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.origin_key
    }

    /// The publication id must name the key that signed: nobody can vouch for
    /// another origin's publication with a key of its own.
    fn check(&self) -> Result<(), StatementError> {
        if origin_of(&self.publication) != Some(self.origin()) {
            return Err(StatementError::NotTheOrigin);
        }
        Ok(())
    }
}

/// What a replica says once it has deleted a retracted publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetractionConfirmation {
    /// The retracted publication.
    pub publication: DocId,
    /// The version of the retraction it acted on.
    pub version: u64,
    /// The confirming node's public key; its hash is the node's NodeId.
    pub confirmer_key: [u8; PUBLIC_KEY_LEN],
    /// When it deleted its copy, in seconds since the Unix epoch.
    pub confirmed_at: u64,
}

impl RetractionConfirmation {
    /// The confirming node.
    pub fn confirmer(&self) -> NodeId {
        self.signer()
    }
}

// The trait is sealed (its module is private), so the crate-private reader in
// its signature never reaches a caller outside this crate.
#[allow(private_interfaces)]
impl Fields for RetractionConfirmation {
    const DOMAIN: &'static [u8] = CONFIRMATION_DOMAIN;

    fn encode_fields(&self, out: &mut Vec<u8>) {
        put_doc_id(out, &self.publication);
        put_varint(out, self.version);
        out.extend_from_slice(&self.confirmer_key);
        put_varint(out, self.confirmed_at);
    }

    fn decode_fields(r: &mut Reader<'_>) -> Result<RetractionConfirmation, StatementError> {
        Ok(RetractionConfirmation {
            publication: r.doc_id()?,
            version: r.varint()?,
            confirmer_key: r.hash()?,
            confirmed_at: r.varint()?,
        })
    }
}

impl Signable for RetractionConfirmation {
    fn signer_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.confirmer_key
    }
}

/// Something signed, with its signature over [`Signable::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// What the signer says.
    pub body: T,
    /// Its Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A version statement with its origin's signature.
pub type SignedStatement = Signed<VersionStatement>;

/// A retraction confirmation with the confirming node's signature.
pub type SignedConfirmation = Signed<RetractionConfirmation>;

/// A node key that signs: the node's identity, or a test's key. The key
/// stays with its owner; this crate only sees signatures.
pub trait Signer: Send + Sync {
    /// The Ed25519 public key (its hash is the signer's NodeId).
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN];
    /// The Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN];
}

impl<T: Signable> Signed<T> {
    /// Signs `body` with `signer`.
    pub fn sign(body: T, signer: &dyn Signer) -> Signed<T> {
        let signature = signer.sign(&body.signing_bytes());
        Signed { body, signature }
    }

    /// Joins a body and the signature the node made of its signing bytes.
    pub fn from_parts(body: T, signature: &[u8]) -> Result<Signed<T>, StatementError> {
        let signature = signature
            .try_into()
            .map_err(|_| StatementError::SignatureLength(signature.len()))?;
        Ok(Signed { body, signature })
    }

    /// The bytes sent on the wire and kept in the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.body.encode_fields(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads a signed body, bounded; verifies nothing yet ([`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Signed<T>, StatementError> {
        if bytes.len() > STATEMENT_LEN_MAX {
            return Err(StatementError::TooLong(bytes.len()));
        }
        let mut r = Reader { rest: bytes };
        let body = T::decode_fields(&mut r)?;
        let signature = signature(&mut r)?;
        Ok(Signed { body, signature })
    }

    /// Checks the body's own rule and that the signature verifies against the
    /// key it names. Whoever delivered it does not matter.
    pub fn verify(&self) -> Result<(), StatementError> {
        self.body.check()?;
        UnparsedPublicKey::new(&ED25519, self.body.signer_key())
            .verify(&self.body.signing_bytes(), &self.signature)
            .map_err(|_| StatementError::BadSignature)
    }
}

/// The trailing signature, and nothing after it.
fn signature(r: &mut Reader<'_>) -> Result<[u8; SIGNATURE_LEN], StatementError> {
    let bytes = r.take(SIGNATURE_LEN)?;
    if !r.rest.is_empty() {
        return Err(DecodeError::TrailingBytes(r.rest.len()).into());
    }
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::sync::publication_id;

    fn key(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn public(key: &Ed25519KeyPair) -> [u8; 32] {
        key.public_key().as_ref().try_into().unwrap()
    }

    fn statement(key: &Ed25519KeyPair, version: u64) -> VersionStatement {
        let origin_key = public(key);
        VersionStatement {
            publication: publication_id(NodeId::from_public_key(&origin_key), "milma").unwrap(),
            origin_key,
            version,
            heads: vec![[1; 32], [9; 32]],
            scope: ScopeClass::Partners,
            retracted: false,
            issued_at: 1_764_000_000,
        }
    }

    fn signed(key: &Ed25519KeyPair, s: VersionStatement) -> SignedStatement {
        let sig = key.sign(&s.signing_bytes());
        SignedStatement::from_parts(s, sig.as_ref()).unwrap()
    }

    #[test]
    fn a_signed_statement_round_trips_and_verifies() {
        let k = key(1);
        let s = signed(&k, statement(&k, 3));
        let back = SignedStatement::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify(), Ok(()));
        assert_eq!(back.body.origin(), NodeId::from_public_key(&public(&k)));
    }

    #[test]
    fn a_statement_signed_by_another_key_is_refused() {
        let (origin, forger) = (key(1), key(2));
        // The forger signs a statement that claims the origin's key.
        let s = statement(&origin, 4);
        let sig = forger.sign(&s.signing_bytes());
        let forged = SignedStatement::from_parts(s, sig.as_ref()).unwrap();
        assert_eq!(forged.verify(), Err(StatementError::BadSignature));
    }

    #[test]
    fn a_forger_cannot_claim_another_origins_publication_with_its_own_key() {
        let (origin, forger) = (key(1), key(2));
        let mut s = statement(&origin, 4);
        // Its own key, its own valid signature, but the id names the origin.
        s.origin_key = public(&forger);
        let forged = signed(&forger, s);
        assert_eq!(forged.verify(), Err(StatementError::NotTheOrigin));
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let k = key(1);
        let good = signed(&k, statement(&k, 5));
        let edits: [fn(&mut VersionStatement); 5] = [
            |s| s.version += 1,
            |s| s.heads[0][0] ^= 1,
            |s| s.scope = ScopeClass::Public,
            |s| s.retracted = true,
            |s| s.issued_at += 1,
        ];
        for edit in edits {
            let mut bad = good.clone();
            edit(&mut bad.body);
            assert_eq!(bad.verify(), Err(StatementError::BadSignature));
        }
    }

    #[test]
    fn a_statement_is_never_taken_for_a_confirmation() {
        let k = key(1);
        let c = RetractionConfirmation {
            publication: statement(&k, 1).publication,
            version: 1,
            confirmer_key: public(&k),
            confirmed_at: 1_764_000_000,
        };
        let sig = k.sign(&c.signing_bytes());
        let confirmation = SignedConfirmation::from_parts(c, sig.as_ref()).unwrap();
        assert_eq!(
            SignedConfirmation::decode(&confirmation.encode())
                .unwrap()
                .verify(),
            Ok(())
        );
        // The same signature over a statement's bytes does not verify.
        let s = statement(&k, 1);
        let misused = SignedStatement::from_parts(s, &confirmation.signature).unwrap();
        assert_eq!(misused.verify(), Err(StatementError::BadSignature));
    }

    #[test]
    fn unsorted_heads_oversized_input_and_trailing_bytes_are_refused() {
        let k = key(1);
        let mut s = statement(&k, 1);
        s.heads.reverse();
        let unsorted = signed(&k, s);
        assert_eq!(
            SignedStatement::decode(&unsorted.encode()),
            Err(StatementError::UnsortedHeads)
        );
        assert_eq!(
            SignedStatement::decode(&vec![0; STATEMENT_LEN_MAX + 1]),
            Err(StatementError::TooLong(STATEMENT_LEN_MAX + 1))
        );
        let mut trailing = signed(&k, statement(&k, 1)).encode();
        trailing.push(0);
        assert!(matches!(
            SignedStatement::decode(&trailing),
            Err(StatementError::Malformed(DecodeError::TrailingBytes(1)))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(s) = SignedStatement::decode(&bytes) {
                prop_assert!(s.verify().is_err());
            }
            if let Ok(c) = SignedConfirmation::decode(&bytes) {
                prop_assert!(c.verify().is_err());
            }
        }

        #[test]
        fn truncating_a_signed_statement_anywhere_is_refused(cut in 0usize..200) {
            let k = key(3);
            let bytes = signed(&k, statement(&k, 2)).encode();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(SignedStatement::decode(&bytes[..cut]).is_err());
        }
    }
}

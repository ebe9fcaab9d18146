//! A hand-driven labnet peer over real QUIC: a node's own credential, the
//! labnet handshake, and then whatever sync frames a test writes itself.
//!
//! A daemon talks to a [`RawPeer`] exactly as it talks to another node: TLS
//! 1.3 with the peer's own self-signed certificate, the `Hello`/`Welcome`
//! handshake, one bidirectional stream of frames. Nothing here checks what
//! the test sends: it is how a test plays a peer that breaks the protocol on
//! purpose, and reads back how the node answered (its messages, and the
//! application close code of the connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use labnet_node::identity::Identity;
use labnet_protocol::frame::{encode_frame, FrameDecoder};
use labnet_protocol::handshake::{
    Event as HandshakeEvent, Handshake, Hello, PeerRole, Welcome, ALPN,
};
use labnet_protocol::sync::{SyncMessage, MESSAGE_LEN_MAX};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Trusts any server certificate: the raw peer is the one under suspicion,
/// and the node's identity is not what its tests check.
#[derive(Debug)]
pub struct AcceptAnything;

/// A handshake-signature check of [`AcceptAnything`] that accepts any
/// signature: TLS 1.2's and TLS 1.3's checks have one signature and one
/// answer, so one macro writes both.
macro_rules! accept_any_signature {
    ($check:ident) => {
        fn $check(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
    };
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    accept_any_signature!(verify_tls12_signature);
    accept_any_signature!(verify_tls13_signature);
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Always presents the same certificate, as a client or as a server.
#[derive(Debug)]
pub struct Fixed(pub Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A credential: the certificates presented (`chain`) and the key that signs
/// (`signer`'s), whether or not they belong together.
pub fn credential(chain: Vec<Vec<u8>>, signer: &Identity) -> Arc<CertifiedKey> {
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            signer.key_der().to_vec(),
        )))
        .expect("a node identity's key loads");
    Arc::new(CertifiedKey::new(
        chain.into_iter().map(CertificateDer::from).collect(),
        key,
    ))
}

/// `id`'s own certificate with `id`'s key: a credential that is what it claims.
pub fn own_credential(id: &Identity) -> Arc<CertifiedKey> {
    credential(vec![id.cert_der().to_vec()], id)
}

/// A QUIC client configuration that presents `id`'s own credential and speaks
/// labnet's ALPN, TLS 1.3 only, as a labnet node dials.
pub fn client_config(id: &Identity) -> quinn::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3 is supported")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything))
    .with_client_cert_resolver(Arc::new(Fixed(own_credential(id))));
    config.alpn_protocols = vec![ALPN.to_vec()];
    quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(config)
            .expect("a TLS 1.3 config suits QUIC"),
    ))
}

/// A QUIC endpoint on any local port, to dial from (it accepts nothing).
pub fn client_endpoint() -> quinn::Endpoint {
    quinn::Endpoint::client("127.0.0.1:0".parse().expect("an address"))
        .expect("binding a UDP socket on 127.0.0.1")
}

/// The `Hello` of a node called `name` claiming `role`, at this build's
/// protocol version, without an invite.
pub fn hello(name: &str, role: PeerRole) -> Hello {
    Hello::new(name, role)
}

/// How a raw peer's connection ended, as the raw peer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The node closed it with this application close code and reason.
    ByNode {
        /// The code.
        code: u64,
        /// The reason the node gave, as text.
        reason: String,
    },
    /// It ended some other way (a transport error, a timeout, our own close).
    Otherwise(String),
    /// Still open when the wait ran out.
    StillOpen,
}

/// A peer past the handshake: one connection, its stream, and a frame
/// decoder for what the node sends.
#[derive(Debug)]
pub struct RawPeer {
    /// The endpoint it dialed from, kept for as long as the connection is.
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    welcome: Welcome,
}

impl RawPeer {
    /// Dials `target` from `endpoint` with `config`, opens the stream, says
    /// `hello` and waits (at most `timeout`) for the node's `Welcome`.
    pub async fn connect(
        endpoint: &quinn::Endpoint,
        config: quinn::ClientConfig,
        target: SocketAddr,
        hello: Hello,
        timeout: Duration,
    ) -> Result<RawPeer, String> {
        let work = async {
            let connection = endpoint
                .connect_with(config, target, "labnet")
                .map_err(|e| format!("connect: {e}"))?
                .await
                .map_err(|e| format!("QUIC handshake: {e}"))?;
            let (mut send, mut recv) = connection
                .open_bi()
                .await
                .map_err(|e| format!("open stream: {e}"))?;
            let mut handshake = Handshake::dialer(hello);
            let bytes: Vec<u8> = std::iter::from_fn(|| handshake.poll_transmit())
                .flatten()
                .collect();
            send.write_all(&bytes)
                .await
                .map_err(|e| format!("sending Hello: {e}"))?;
            let mut buf = vec![0u8; 4096];
            let welcome = loop {
                if let Some(event) = handshake.poll_event() {
                    match event {
                        HandshakeEvent::Welcome(w) => break w,
                        other => return Err(format!("not welcomed: {other:?}")),
                    }
                }
                match recv.read(&mut buf).await {
                    Ok(Some(n)) => handshake.handle_bytes(&buf[..n]),
                    Ok(None) => return Err("stream ended before the Welcome".into()),
                    Err(e) => {
                        return Err(format!(
                            "reading the Welcome: {e} ({:?})",
                            connection.close_reason()
                        ))
                    }
                }
            };
            let mut decoder = FrameDecoder::new(MESSAGE_LEN_MAX);
            decoder.push(&handshake.into_remaining());
            Ok(RawPeer {
                _endpoint: endpoint.clone(),
                connection,
                send,
                recv,
                decoder,
                welcome,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| format!("no Welcome within {timeout:?}"))?
    }

    /// What the node said when it let us in.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The QUIC connection.
    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Writes bytes as they are (already framed, or deliberately not).
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.send
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Writes one frame holding `body`.
    pub async fn send_frame(&mut self, body: &[u8]) -> Result<(), String> {
        let mut out = Vec::with_capacity(body.len() + 4);
        encode_frame(body, &mut out);
        self.send_bytes(&out).await
    }

    /// Writes one sync message in its frame.
    pub async fn send_message(&mut self, msg: &SyncMessage) -> Result<(), String> {
        self.send_frame(&msg.encode()).await
    }

    /// Ends our side of the stream (a QUIC FIN).
    pub fn finish(&mut self) -> Result<(), String> {
        self.send.finish().map_err(|e| format!("finish: {e}"))
    }

    /// The next sync message the node sends, waiting at most `timeout`.
    pub async fn next_message(&mut self, timeout: Duration) -> Result<SyncMessage, String> {
        let work = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match self.decoder.next_frame() {
                    Ok(Some(frame)) => {
                        return SyncMessage::decode(&frame)
                            .map_err(|e| format!("the node sent a bad message: {e}"))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("the node sent a bad frame: {e}")),
                }
                match self.recv.read(&mut buf).await {
                    Ok(Some(n)) => self.decoder.push(&buf[..n]),
                    Ok(None) => return Err("the node ended the stream".into()),
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| format!("nothing from the node within {timeout:?}"))?
    }

    /// Reads the node's messages until `pick` takes one, waiting at most
    /// `timeout` in all; returns what `pick` made of it and every message
    /// skipped on the way.
    pub async fn until<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&SyncMessage) -> Option<T>,
    ) -> Result<(T, Vec<SyncMessage>), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self.next_message(left).await.map_err(|e| {
                let kinds: Vec<&str> = skipped.iter().map(SyncMessage::kind).collect();
                format!(
                    "{e}, after {kinds:?} (connection: {:?})",
                    self.connection.close_reason()
                )
            })?;
            if let Some(found) = pick(&msg) {
                return Ok((found, skipped));
            }
            skipped.push(msg);
        }
    }

    /// Waits at most `timeout` for the connection to end, and says how.
    pub async fn ended(&self, timeout: Duration) -> Ended {
        match tokio::time::timeout(timeout, self.connection.closed()).await {
            Ok(quinn::ConnectionError::ApplicationClosed(c)) => Ended::ByNode {
                code: c.error_code.into_inner(),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            Ok(other) => Ended::Otherwise(other.to_string()),
            Err(_) => Ended::StillOpen,
        }
    }

    /// Closes the connection from our side with code 0.
    pub fn close(&self) {
        self.connection.close(0u32.into(), b"done");
    }
}

// ---- for the bounds tests --------------------------------------------------

/// Like [`client_config`], granting the node only `stream_window` bytes of
/// flow control per stream and `connection_window` in all: a peer that
/// (almost) stops reading, so the node's writes block.
pub fn client_config_with_windows(
    id: &Identity,
    stream_window: u32,
    connection_window: u32,
) -> quinn::ClientConfig {
    let mut config = client_config(id);
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(quinn::VarInt::from_u32(stream_window));
    transport.receive_window(quinn::VarInt::from_u32(connection_window));
    config.transport_config(Arc::new(transport));
    config
}

impl RawPeer {
    /// Writes what QUIC takes of `bytes` now (at least one byte, waiting for
    /// flow control if need be); returns how many. A test measures with it
    /// how much a node lets in before it stops reading.
    pub async fn send_some(&mut self, bytes: &[u8]) -> Result<usize, String> {
        self.send
            .write(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }
}

/// `bytes` in MiB, for the figures the bounds tests print.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// This process's resident memory, from `/proc/self/status` (the in-process
/// daemons' included).
pub fn resident_memory_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("a VmRSS line in kB")
}

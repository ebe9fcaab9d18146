//! The QUIC endpoint and what every connection shares: transport settings, the
//! peer's proven NodeId, the close helper, and the handshake's I/O.
//!
//! The endpoint is made on a socket the daemon already bound (tests bind port
//! 0), with enlarged UDP buffers: DESIGN.md measured that the 208 KiB default
//! loses packets even on loopback.

use std::sync::Arc;

use labnet_protocol::close::CloseCode;
use labnet_protocol::handshake::{Event as HandshakeEvent, Handshake};
use labnet_protocol::NodeId;
use quinn::{Connection, Endpoint, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::warn;

use super::{tls, TransportConfig, TransportError};
use crate::identity::Identity;

/// Bytes read from the stream at a time during the handshake (its frames are
/// at most `HANDSHAKE_FRAME_LEN_MAX`, so one read usually holds one).
const HANDSHAKE_READ_CHUNK: usize = 1024;

/// The host name that contact strings and invites carry when the node listens
/// on every interface and no `node.advertise` is set: the machine's host name,
/// or `localhost` when it has none (dialable on this machine only, which the
/// caller's address check then points out).
pub fn contact_host() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Makes the node's QUIC endpoint on an already-bound socket.
pub fn make_endpoint(
    socket: std::net::UdpSocket,
    identity: &Identity,
    config: &TransportConfig,
) -> Result<Endpoint, TransportError> {
    let sock = socket2::SockRef::from(&socket);
    // Best effort: the kernel may cap the size (net.core.rmem_max); a smaller
    // buffer still works, with more loss under bursts.
    if let Err(e) = sock.set_recv_buffer_size(config.udp_buffer_bytes) {
        warn!(error = %e, "could not enlarge the UDP receive buffer");
    }
    if let Err(e) = sock.set_send_buffer_size(config.udp_buffer_bytes) {
        warn!(error = %e, "could not enlarge the UDP send buffer");
    }
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(tls::quic_server_config(identity)?));
    server.transport_config(quic_transport_config(config));
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no tokio runtime"))?;
    Ok(Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )?)
}

/// quinn's settings for every labnet connection, dialed or accepted.
pub(super) fn quic_transport_config(config: &TransportConfig) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    t.keep_alive_interval(Some(config.keep_alive));
    // One stream carries the whole exchange; nothing else is served.
    t.max_concurrent_bidi_streams(VarInt::from_u32(4));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // Large windows: an initial sync moves megabytes over one stream.
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(32 << 20));
    t.send_window(32 << 20);
    Arc::new(t)
}

/// The NodeId of the key a connection's peer proved it holds.
pub fn peer_node_id(connection: &Connection) -> Option<NodeId> {
    let certs = connection
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    let cert = certs.first()?;
    tls::node_id_of_certificate(cert).ok()
}

/// The application protocol TLS agreed on, if any.
pub(super) fn negotiated_alpn(connection: &Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// Closes a connection with one of the registry's codes.
pub(super) fn close(connection: &Connection, code: CloseCode, reason: &str) {
    connection.close(VarInt::from_u32(code.as_u32()), reason.as_bytes());
}

/// What a dial learned from the other side's close: a refusal with its code
/// (and our words for it, when the code is ours), or a plain failure.
pub(super) fn refused_or(e: quinn::ConnectionError, what: &'static str) -> TransportError {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let code = u32::try_from(close.error_code.into_inner()).unwrap_or(u32::MAX);
            let reason = CloseCode::from_u32(code)
                .map(|c| c.reason().to_string())
                .unwrap_or_else(|| String::from_utf8_lossy(&close.reason).into_owned());
            TransportError::Refused { code, reason }
        }
        other => TransportError::Handshake(format!("{what}: {other}")),
    }
}

/// Writes whatever the handshake has to say.
pub(super) async fn write_handshake(
    handshake: &mut Handshake,
    send: &mut SendStream,
) -> Result<(), TransportError> {
    while let Some(bytes) = handshake.poll_transmit() {
        send.write_all(&bytes)
            .await
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
    }
    Ok(())
}

/// Reads until the handshake has something to report. The caller bounds the
/// wait (the whole handshake runs under `handshake_timeout`).
pub(super) async fn read_handshake_event<R: AsyncRead + Unpin>(
    handshake: &mut Handshake,
    recv: &mut R,
) -> Result<HandshakeEvent, TransportError> {
    let mut buf = [0u8; HANDSHAKE_READ_CHUNK];
    loop {
        if let Some(event) = handshake.poll_event() {
            return Ok(event);
        }
        let n = recv
            .read(&mut buf)
            .await
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
        if n == 0 {
            return Err(TransportError::Handshake(
                "the stream closed during the handshake".into(),
            ));
        }
        handshake.handle_bytes(&buf[..n]);
    }
}

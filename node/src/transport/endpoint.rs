//! The QUIC endpoint and what every connection shares: transport settings, the
//! peer's proven NodeId, the close helper, and the handshake's I/O.
//!
//! The endpoint is made on a socket the daemon already bound (tests bind port
//! 0), with enlarged UDP buffers: DESIGN.md measured that the 208 KiB default
//! loses packets even on loopback.
//!
//! Flow-control windows are what a peer can make us buffer, so they are small
//! until the peer is admitted: a connection starts with
//! [`RECEIVE_WINDOW_UNADMITTED_BYTES`] for all its streams together, and
//! [`raise_receive_window`] opens it to [`RECEIVE_WINDOW_BYTES`] once
//! admission let the peer in (an incoming one) or the handshake welcomed us
//! (a dialed one, whose key TLS pinned). Each stream may take at most
//! [`STREAM_RECEIVE_WINDOW_BYTES`]. A node nobody approved, or one that never
//! finishes its `Hello`, can hold 64 KiB of ours per handshake slot, not the
//! tens of MiB a sync needs.

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

/// What a connection may make us buffer, all streams together, before its
/// peer is admitted. The handshake's frames are at most
/// `HANDSHAKE_FRAME_LEN_MAX` (a few KiB) and a `Hello` is one frame, so 64
/// KiB is ample for an honest peer; with every handshake slot taken
/// (`handshakes_in_flight_max`, 64) it bounds what strangers can make us hold
/// at 4 MiB.
pub const RECEIVE_WINDOW_UNADMITTED_BYTES: u32 = 64 << 10;

/// The window, all streams together, once the peer is admitted: an initial
/// sync moves megabytes over one stream, and the window must cover a
/// link's bandwidth-delay product (16 MiB is 400 Mbit/s at 300 ms). Larger
/// than two queued frames ([`FRAMES_QUEUED_BYTES_MAX`](crate::sync::driver::FRAMES_QUEUED_BYTES_MAX))
/// so the session's reader, not QUIC, is where back-pressure starts.
pub const RECEIVE_WINDOW_BYTES: u32 = 16 << 20;

/// What one stream may make us buffer. Only the first stream is read; any
/// other is refused once the peer is admitted, and before that the
/// connection's small window caps them all.
pub const STREAM_RECEIVE_WINDOW_BYTES: u32 = 16 << 20;

/// What we keep unacknowledged towards a peer: as large as the peer's own
/// admitted window, so one direction of a sync is not slower than the other.
const SEND_WINDOW_BYTES: u64 = 32 << 20;

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
    // Small until the peer is admitted; see the module docs.
    t.stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW_BYTES));
    t.receive_window(VarInt::from_u32(RECEIVE_WINDOW_UNADMITTED_BYTES));
    t.send_window(SEND_WINDOW_BYTES);
    Arc::new(t)
}

/// Opens a connection's receive window to [`RECEIVE_WINDOW_BYTES`]: its peer
/// is admitted (or, dialed, is the node we meant to reach and welcomed us).
pub(super) fn raise_receive_window(connection: &Connection) {
    connection.set_receive_window(VarInt::from_u32(RECEIVE_WINDOW_BYTES));
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

//! Dialing: reaching approved peers, and keeping the connections up.
//!
//! [`Transport::dial`] connects once (optionally presenting an invite secret);
//! a dialer task per approved peer keeps a connection up, redialing with
//! exponential backoff and jitter ([`super::backoff`]); and the transport
//! follows the peer table's changes, dialing newly approved peers and closing
//! revoked ones as soon as the revocation is committed.

use std::sync::Arc;
use std::time::Duration;

use labnet_protocol::close::CloseCode;
use labnet_protocol::handshake::{
    Event as HandshakeEvent, Handshake, Hello, Welcome, INVITE_SECRET_LEN, PROTOCOL_VERSION,
};
use labnet_protocol::NodeId;
use quinn::VarInt;
use rand::Rng;
use tracing::{debug, info, info_span, warn, Instrument};

use super::backoff::Backoff;
use super::endpoint::{
    close, quic_transport_config, read_handshake_event, refused_or, write_handshake,
};
use super::{tls, Admitted, Dialed, Transport, TransportError};
use crate::trust::{wire_role, PeerChange, PeerDecision};

/// How often a dialer looks again at a peer it is connected to (it redials
/// only once the connection is gone).
const CONNECTED_RECHECK: Duration = Duration::from_millis(500);

impl Transport {
    /// Dials `node` at `address`, presenting an invite secret if given. On
    /// success the connection is registered and handed to the session handler.
    pub async fn dial(
        &self,
        node: NodeId,
        address: &str,
        invite_secret: Option<[u8; INVITE_SECRET_LEN]>,
    ) -> Result<Dialed, TransportError> {
        let span = info_span!("conn", peer = %node.short(), dir = "out");
        let (admitted, welcome) = tokio::time::timeout(
            self.inner.parts.config.handshake_timeout,
            self.connect(node, address, invite_secret)
                .instrument(span.clone()),
        )
        .await
        .map_err(|_| TransportError::Timeout("dialing"))??;
        let dialed = Dialed {
            name: welcome.name.clone(),
            address: address.to_string(),
        };
        if invite_secret.is_some() {
            // The inviter let us in: approve it on our side too, in the role
            // its invite stated, if its handshake claims the same (trust decides).
            if let Err(e) = self
                .inner
                .parts
                .peers
                .approve_inviter(
                    node,
                    crate::trust::config_role(welcome.role),
                    Some(welcome.name.clone()),
                    Some(address.to_string()),
                )
                .await
            {
                close(&admitted.connection, CloseCode::NotApproved, &e.to_string());
                return Err(TransportError::Handshake(e.to_string()));
            }
        } else if let Err(e) = self
            .inner
            .parts
            .peers
            .seen(node, welcome.name.clone(), None)
            .await
        {
            warn!(error = %e, "could not record the peer's handshake");
        }
        info!(parent: &span, name = %welcome.name, "connected to peer");
        let this = self.clone();
        self.spawn(async move { this.serve(admitted, node).await }.instrument(span));
        Ok(dialed)
    }

    /// QUIC, TLS pinned to `node`, and the application handshake.
    async fn connect(
        &self,
        node: NodeId,
        address: &str,
        invite_secret: Option<[u8; INVITE_SECRET_LEN]>,
    ) -> Result<(Admitted, Welcome), TransportError> {
        let addr = tokio::net::lookup_host(address)
            .await
            .map_err(|_| TransportError::Resolve(address.to_string()))?
            .next()
            .ok_or_else(|| TransportError::Resolve(address.to_string()))?;
        let crypto = tls::quic_client_config(&self.inner.parts.identity, node)?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(quic_transport_config(&self.inner.parts.config));
        let connect_error = |reason: String| TransportError::Connect {
            address: address.to_string(),
            reason,
        };
        let connecting = self
            .inner
            .parts
            .endpoint
            .connect_with(client, addr, tls::SERVER_NAME)
            .map_err(|e| connect_error(e.to_string()))?;
        let connection = connecting.await.map_err(|e| connect_error(e.to_string()))?;
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| refused_or(e, "opening the stream"))?;
        let mut handshake = Handshake::dialer(Hello {
            version: PROTOCOL_VERSION,
            name: self.inner.parts.local.name.clone(),
            role: wire_role(self.inner.parts.local.role),
            invite_secret,
        });
        write_handshake(&mut handshake, &mut send).await?;
        match read_handshake_event(&mut handshake, &mut recv).await {
            Ok(HandshakeEvent::Welcome(welcome)) => {
                super::endpoint::raise_receive_window(&connection);
                let admitted = Admitted {
                    connection,
                    node,
                    dialed_by: self.inner.parts.local.node_id,
                    recv,
                    send,
                    leftover: handshake.into_remaining(),
                };
                Ok((admitted, welcome))
            }
            Ok(HandshakeEvent::Refused { code, reason }) => {
                connection.close(VarInt::from_u32(code), b"refused");
                Err(TransportError::Refused { code, reason })
            }
            Ok(HandshakeEvent::Failed { code, reason }) => {
                close(&connection, code, &reason);
                Err(TransportError::Handshake(reason))
            }
            Ok(HandshakeEvent::Hello(_)) => {
                close(&connection, CloseCode::Malformed, "unexpected hello");
                Err(TransportError::Handshake(
                    "the other node sent a hello".into(),
                ))
            }
            Err(e) => Err(match connection.close_reason() {
                Some(reason) => refused_or(reason, "handshake"),
                None => e,
            }),
        }
    }

    /// Dials every approved peer with a known address (at start).
    pub async fn dial_approved(&self) {
        match self.inner.parts.peers.dialable().await {
            Ok(list) => {
                for (node, _) in list {
                    self.ensure_dialer(node);
                }
            }
            Err(e) => warn!(error = %e, "cannot list peers to dial"),
        }
    }

    fn ensure_dialer(&self, node: NodeId) {
        let mut dialers = self.inner.dialers.lock().unwrap_or_else(|p| p.into_inner());
        if dialers.insert(node) {
            self.spawn(self.clone().dialer(node));
        }
    }

    /// Keeps a connection to `node` up while it stays approved.
    async fn dialer(self, node: NodeId) {
        let mut backoff = Backoff::new(
            self.inner.parts.config.redial_base,
            self.inner.parts.config.redial_max,
        );
        let mut shutdown = self.inner.parts.shutdown.clone();
        loop {
            if self.shutting_down()
                || !matches!(
                    self.inner.parts.peers.decide(node),
                    PeerDecision::Approved(_)
                )
            {
                break;
            }
            let wait = if self.is_connected(node) {
                backoff.reset();
                CONNECTED_RECHECK
            } else {
                let Some(address) = self.inner.parts.peers.address_of(node).await else {
                    break;
                };
                match self.dial(node, &address, None).await {
                    Ok(_) => {
                        backoff.reset();
                        CONNECTED_RECHECK
                    }
                    Err(e) => {
                        let delay = backoff.next_delay(rand::thread_rng().gen());
                        debug!(peer = %node.short(), error = %e, ?delay, "dial failed; will retry");
                        delay
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        self.inner
            .dialers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }

    /// Acts on the peer table's changes until shutdown: dials approved peers,
    /// closes revoked ones.
    pub(super) async fn follow_peer_table(self) {
        let mut changes = self.inner.parts.peers.subscribe();
        let mut shutdown = self.inner.parts.shutdown.clone();
        self.dial_approved().await;
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = shutdown.changed() => break,
            };
            match change {
                Ok(PeerChange::Revoked { node_id }) => self.disconnect(node_id, CloseCode::Revoked),
                Ok(PeerChange::Approved {
                    node_id,
                    address: Some(_),
                    ..
                }) => self.ensure_dialer(node_id),
                Ok(PeerChange::Approved { .. }) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed changes: re-read the table and close what is no
                    // longer approved.
                    for node in self.connected_peers() {
                        if !matches!(
                            self.inner.parts.peers.decide(node),
                            PeerDecision::Approved(_)
                        ) {
                            self.disconnect(node, CloseCode::Revoked);
                        }
                    }
                    self.dial_approved().await;
                }
                Err(_) => break,
            }
        }
    }
}

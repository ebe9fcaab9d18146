//! Accepting: the gates an incoming connection passes before sync sees it.
//!
//! The first gate costs us nothing: an Initial packet from an address that
//! has not proved it receives what we send there gets a QUIC Retry (a
//! stateless token) and takes no handshake slot. Without it, anyone can spoof
//! Initial packets from made-up source addresses, each of which would hold
//! one of the `handshakes_in_flight_max` slots for `handshake_timeout`, and
//! so block every honest connection and invite. Only a sender that echoes
//! the token, and so receives at its address, gets further.
//!
//! The accept loop then bounds how many handshakes run at once and how long each
//! may take. Each connection then has to show a client certificate and the
//! labnet ALPN, and say a [`Hello`](labnet_protocol::handshake::Hello). Whether
//! it gets in is not decided here: [`trust::admission`] decides, and this
//! module carries out the effects it returns (a pending row, an approval by
//! invite) before it welcomes or refuses the node.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use labnet_protocol::close::CloseCode;
use labnet_protocol::handshake::{Event as HandshakeEvent, Handshake, Welcome, ALPN};
use quinn::{Connection, SendStream};
use tracing::{debug, info, info_span, warn, Instrument};

use super::endpoint::{
    close, negotiated_alpn, peer_node_id, raise_receive_window, read_handshake_event,
    write_handshake,
};
use super::{Admitted, Transport, TransportError};
use crate::trust::admission::{self, Admission, Decision, Effect, Request};
use crate::trust::{invites::RedeemedInvite, wire_role};

/// How long a refusal may take to reach the other side before the connection
/// close overtakes it.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);

impl Transport {
    /// Accepts connections until shutdown, each in its own task.
    pub(super) async fn accept_loop(self) {
        let mut shutdown = self.inner.parts.shutdown.clone();
        loop {
            let incoming = tokio::select! {
                incoming = self.inner.parts.endpoint.accept() => incoming,
                _ = shutdown.changed() => break,
            };
            let Some(incoming) = incoming else { break };
            if !incoming.remote_address_validated() {
                // quinn guarantees a Retry is allowed for an unvalidated
                // address; should it not be, dropping the packet costs nothing.
                if let Err(e) = incoming.retry() {
                    e.into_incoming().ignore();
                }
                continue;
            }
            let Ok(permit) = self.inner.handshakes.try_acquire() else {
                debug!(from = %incoming.remote_address(), "too many handshakes in progress; refused");
                incoming.refuse();
                continue;
            };
            permit.forget();
            let this = self.clone();
            self.spawn(async move {
                let remote = incoming.remote_address();
                let result =
                    tokio::time::timeout(this.inner.parts.config.handshake_timeout, async {
                        let connection = incoming
                            .await
                            .map_err(|e| TransportError::Handshake(e.to_string()))?;
                        this.admit(connection, remote).await
                    })
                    .await;
                this.inner.handshakes.add_permits(1);
                match result {
                    Ok(Ok(Some(admitted))) => {
                        let node = admitted.node;
                        this.serve(admitted, node).await
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => debug!(from = %remote, error = %e, "incoming connection refused"),
                    Err(_) => debug!(from = %remote, "incoming handshake timed out"),
                }
            });
        }
    }

    /// Runs the gates for an incoming connection. Returns the connection and its
    /// stream when the peer is admitted; closes it otherwise.
    async fn admit(
        &self,
        connection: Connection,
        remote: SocketAddr,
    ) -> Result<Option<Admitted>, TransportError> {
        let Some(node) = peer_node_id(&connection) else {
            close(
                &connection,
                CloseCode::WrongProtocol,
                "no client certificate",
            );
            return Ok(None);
        };
        if negotiated_alpn(&connection).as_deref() != Some(ALPN) {
            close(
                &connection,
                CloseCode::WrongProtocol,
                CloseCode::WrongProtocol.reason(),
            );
            return Ok(None);
        }
        let span = info_span!("conn", peer = %node.short(), dir = "in");
        async move {
            let (mut send, mut recv) = connection
                .accept_bi()
                .await
                .map_err(|e| TransportError::Handshake(e.to_string()))?;
            let mut handshake = Handshake::acceptor();
            let hello = match read_handshake_event(&mut handshake, &mut recv).await? {
                HandshakeEvent::Hello(hello) => hello,
                HandshakeEvent::Failed { code, reason } => {
                    warn!(%reason, "malformed handshake");
                    close(&connection, code, &reason);
                    return Ok(None);
                }
                _ => {
                    close(
                        &connection,
                        CloseCode::Malformed,
                        "unexpected handshake message",
                    );
                    return Ok(None);
                }
            };
            let request = Request {
                node,
                hello: &hello,
                remote,
                now: Instant::now(),
            };
            let mut admission = {
                let mut budget = self
                    .inner
                    .pending_budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                admission::admit(&self.inner.parts.peers, &mut budget, &request)
            };
            if let Decision::RedeemInvite { secret_hash } = admission.decision {
                admission = match self.redeem_invite(secret_hash).await {
                    Ok(outcome) => admission::after_invite(&request, outcome),
                    Err(e) => {
                        warn!(error = %e, "invite lookup failed");
                        Admission {
                            decision: Decision::Refuse(CloseCode::ShuttingDown),
                            effects: Vec::new(),
                        }
                    }
                };
            }
            let decision = match self.carry_out(&admission.effects).await {
                Ok(()) => admission.decision,
                Err(e) => {
                    warn!(error = %e, "could not record an admission; refusing");
                    Decision::Refuse(CloseCode::ShuttingDown)
                }
            };
            match decision {
                Decision::Admit(role) => {
                    raise_receive_window(&connection);
                    handshake.accept(Welcome {
                        name: self.inner.parts.local.name.clone(),
                        role: wire_role(self.inner.parts.local.role),
                    });
                    write_handshake(&mut handshake, &mut send).await?;
                    info!(name = %hello.name, %role, "peer connected");
                    Ok(Some(Admitted {
                        connection,
                        node,
                        dialed_by: node,
                        recv,
                        send,
                        leftover: handshake.into_remaining(),
                    }))
                }
                Decision::Refuse(code) => {
                    let reason = match code {
                        CloseCode::VersionMismatch => format!(
                            "this node speaks labnet protocol {}, the other node {}: upgrade the older node",
                            labnet_protocol::handshake::PROTOCOL_VERSION,
                            hello.version
                        ),
                        other => other.reason().to_string(),
                    };
                    refuse(&connection, handshake, &mut send, code, &reason).await;
                    Ok(None)
                }
                Decision::RedeemInvite { .. } => {
                    // after_invite never asks for a second redemption.
                    refuse(
                        &connection,
                        handshake,
                        &mut send,
                        CloseCode::InviteInvalid,
                        CloseCode::InviteInvalid.reason(),
                    )
                    .await;
                    Ok(None)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Takes one use of the invite whose secret hashes to `secret_hash`.
    async fn redeem_invite(
        &self,
        secret_hash: [u8; 32],
    ) -> Result<Result<RedeemedInvite, crate::store::InviteRefusal>, crate::store::StoreError> {
        let now = crate::store::unix_now();
        let outcome = self
            .inner
            .parts
            .peers
            .store()
            .call(move |s| s.redeem_invite(&secret_hash, now))
            .await?;
        Ok(outcome.map(|(invite_id, role)| RedeemedInvite { invite_id, role }))
    }

    /// Carries out admission's effects, in order. A failure to record an
    /// approval fails the admission; the rest are best effort (a lost
    /// "last seen" must not keep a peer out).
    async fn carry_out(&self, effects: &[Effect]) -> Result<(), crate::store::StoreError> {
        let peers = &self.inner.parts.peers;
        for effect in effects {
            match effect {
                Effect::RecordPending {
                    node,
                    name,
                    address,
                    role,
                } => {
                    if let Err(e) = peers
                        .record_pending(*node, name.clone(), address.clone(), *role)
                        .await
                    {
                        warn!(error = %e, "could not record a pending request");
                    }
                }
                Effect::RateLimited { remote } => {
                    debug!(from = %remote, "pending requests from this address are rate-limited")
                }
                Effect::RecordSeen {
                    node,
                    name,
                    address,
                } => {
                    if let Err(e) = peers.seen(*node, name.clone(), Some(address.clone())).await {
                        warn!(error = %e, "could not record the peer's handshake");
                    }
                }
                Effect::ApproveByInvite {
                    node,
                    role,
                    name,
                    address,
                    invite_id,
                } => {
                    let by = format!("invite {invite_id}");
                    peers
                        .approve(*node, *role, Some(name.clone()), Some(address.clone()), &by)
                        .await?;
                    info!(invite = %invite_id, %role, "node joined through an invite");
                }
            }
        }
        Ok(())
    }
}

/// Sends a refusal the other side can show, then closes with its code.
async fn refuse(
    connection: &Connection,
    mut handshake: Handshake,
    send: &mut SendStream,
    code: CloseCode,
    reason: &str,
) {
    match code {
        CloseCode::Revoked => info!("revoked node refused"),
        CloseCode::InviteInvalid
        | CloseCode::InviteExpired
        | CloseCode::InviteUsedUp
        | CloseCode::InviteRevoked => info!(reason, "invite refused"),
        _ => {}
    }
    handshake.refuse(code, reason);
    let _ = write_handshake(&mut handshake, send).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(REFUSAL_LINGER, connection.closed()).await;
    close(connection, code, reason);
}

//! `invite ...`: letting another node in with a one-line token. Creating,
//! listing and revoking this node's invites, and accepting another node's.
//!
//! The store keeps only a hash of each invite's secret; the token, which holds
//! the secret, is shown once, at creation. Accepting dials the inviter, so it
//! needs the running daemon.
//!
//! A token states this node's own role next to the joiner's. Only a partner
//! makes partner invites, and the joiner records the inviter in the role its
//! token states once the inviter's handshake says the same
//! ([`crate::trust::invites`]): a subscriber's invite never makes it a partner.

use labnet_config::Role;
use labnet_protocol::handshake::INVITE_SECRET_LEN;
use labnet_protocol::invite::{hash_secret, Invite};

use super::{Control, ControlError};
use crate::api::{InviteAccepted, InviteCreated, InviteEntry, InviteRevoked};
use crate::store::InviteRecord;
use crate::transport::TransportError;
use crate::trust::invites::{inviter_role_on_accept, may_create};

/// The longest an invite may stay valid.
pub const INVITE_EXPIRY_MAX_SECS: u64 = 90 * 86_400;

/// The most nodes one invite may admit.
pub const INVITE_USES_MAX: u32 = 1000;

impl Control {
    /// Creates an invite for `uses` nodes that become `role`, valid for
    /// `expires_secs`. The token carries this node's dialable address.
    pub async fn invite_create(
        &self,
        role: Role,
        expires_secs: u64,
        uses: u32,
    ) -> Result<InviteCreated, ControlError> {
        if expires_secs == 0 || expires_secs > INVITE_EXPIRY_MAX_SECS {
            return Err(ControlError::BadInput(format!(
                "--expires must be between 1 second and {} days",
                INVITE_EXPIRY_MAX_SECS / 86_400
            )));
        }
        if uses == 0 || uses > INVITE_USES_MAX {
            return Err(ControlError::BadInput(format!(
                "--uses must be between 1 and {INVITE_USES_MAX}"
            )));
        }
        may_create(self.config.role, role).map_err(|e| ControlError::BadInput(e.to_string()))?;
        let mut secret = [0u8; INVITE_SECRET_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let mut id_bytes = [0u8; 5];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id_bytes);
        let invite_id = base32::encode(base32::Alphabet::Crockford, &id_bytes).to_lowercase();
        let expires_at = crate::store::unix_now() + expires_secs as i64;
        let hash = hash_secret(&secret).to_vec();
        let id = invite_id.clone();
        let record = self
            .store
            .call(move |s| s.create_invite(&id, &hash, role, expires_at, i64::from(uses)))
            .await?;
        let bound = self.live.as_ref().map(|l| l.listen_addr());
        let host = crate::transport::endpoint::contact_host();
        let address = self.config.contact_address(&host, bound);
        labnet_protocol::contact::validate_address(&address).map_err(|problem| {
            ControlError::BadInput(format!(
                "this node has no dialable address ({address}: {problem}); start it first, or set node.listen or node.advertise"
            ))
        })?;
        let invite = Invite {
            inviter: self.node_id,
            addresses: vec![address],
            secret,
            role: crate::trust::wire_role(role),
            inviter_role: crate::trust::wire_role(self.config.role),
            expires_at: expires_at as u64,
        };
        Ok(InviteCreated {
            invite_id,
            token: invite.to_token(),
            role,
            expires_at,
            uses: record.uses_left,
        })
    }

    /// This node's invites, active or not.
    pub async fn invite_list(&self) -> Result<Vec<InviteEntry>, ControlError> {
        let invites = self.store.call(|s| s.invites()).await?;
        Ok(invites.into_iter().map(InviteEntry::from).collect())
    }

    /// Revokes an active invite so nobody can join with it any more.
    pub async fn invite_revoke(&self, invite_id: String) -> Result<InviteRevoked, ControlError> {
        let id = invite_id.clone();
        if self.store.call(move |s| s.revoke_invite(&id)).await? {
            Ok(InviteRevoked {
                invite_id,
                revoked: true,
            })
        } else {
            Err(ControlError::BadInput(format!(
                "no active invite with id {invite_id} (see `labnet invite list`)"
            )))
        }
    }

    /// Joins the node that made the invite: dials its addresses in turn with the
    /// invite's secret. Both sides approve each other in the handshake.
    pub async fn invite_accept(&self, token: &str) -> Result<InviteAccepted, ControlError> {
        let invite = Invite::parse(token).map_err(|e| ControlError::BadInput(e.to_string()))?;
        if invite.inviter == self.node_id {
            return Err(ControlError::BadInput(
                "this invite was made by this node".into(),
            ));
        }
        if (invite.expires_at as i64) <= crate::store::unix_now() {
            return Err(ControlError::BadInput(
                "the invite has expired; ask for a new one".into(),
            ));
        }
        let inviter_role = inviter_role_on_accept(
            crate::trust::config_role(invite.inviter_role),
            crate::trust::config_role(invite.role),
        )
        .map_err(|e| ControlError::BadInput(e.to_string()))?;
        let Some(transport) = &self.transport else {
            return Err(ControlError::NeedsDaemon("invite accept"));
        };
        self.peers.expect_inviter(invite.inviter, inviter_role);
        let outcome = self.dial_inviter(transport, &invite).await;
        let refused = self.peers.finish_inviter(invite.inviter);
        match (outcome, refused) {
            (_, Some(refusal)) => Err(ControlError::BadInput(refusal.to_string())),
            (Ok(dialed), None) => Ok(InviteAccepted {
                node_id: invite.inviter.to_string(),
                name: dialed.name,
                address: dialed.address,
                role: inviter_role,
                our_role: crate::trust::config_role(invite.role),
            }),
            (Err(e), None) => Err(e),
        }
    }

    /// Dials the inviter's addresses in turn with the invite's secret, until
    /// one lets us in or refuses us.
    async fn dial_inviter(
        &self,
        transport: &crate::transport::Transport,
        invite: &Invite,
    ) -> Result<crate::transport::Dialed, ControlError> {
        let mut last_error = String::from("the invite lists no address");
        for address in &invite.addresses {
            match transport
                .dial(invite.inviter, address, Some(invite.secret))
                .await
            {
                Ok(dialed) => return Ok(dialed),
                Err(TransportError::Refused { reason, .. }) => {
                    return Err(ControlError::BadInput(reason))
                }
                Err(e) => last_error = format!("{address}: {e}"),
            }
        }
        Err(ControlError::BadInput(format!(
            "could not reach the inviter: {last_error}"
        )))
    }
}

impl From<InviteRecord> for InviteEntry {
    fn from(r: InviteRecord) -> InviteEntry {
        InviteEntry {
            invite_id: r.invite_id,
            role: r.role,
            created_at: r.created_at,
            expires_at: r.expires_at,
            uses_left: r.uses_left,
            revoked_at: r.revoked_at,
        }
    }
}

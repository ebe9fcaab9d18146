//! Invites: one-time (or few-time) tickets that let a new node join with a role.
//!
//! An invite's secret travels to the joiner out of band; the store keeps only
//! a hash of it (`secret_hash`), so a copy of the database does not let anyone
//! join. The joiner presents the secret, the node hashes it, and
//! [`Store::redeem_invite`] looks the hash up and spends one use, checking and
//! spending in one transaction so two joiners racing for the last use cannot
//! both get it.
//!
//! Each invite has a short public id for `invite list` and `invite revoke`;
//! revoked and used-up invites keep their rows, so the list can say why an
//! invite no longer works ([`InviteRefusal`]).

use labnet_config::Role;
use rusqlite::params;

use super::{unix_now, Store, StoreError};

/// A stored invite (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteRecord {
    /// Short public id, for `invite list` and `invite revoke`.
    pub invite_id: String,
    /// The role the joiner gets.
    pub role: Role,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Joins left.
    pub uses_left: i64,
    /// Revoked (unix seconds), if it was.
    pub revoked_at: Option<i64>,
}

/// Why an invite secret was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    /// No invite has this secret: forged, or from another node.
    #[error("no such invite: the token was not issued by this node")]
    Unknown,
    /// Past its expiry.
    #[error("the invite has expired")]
    Expired,
    /// Every use was taken.
    #[error("the invite has been used up")]
    UsedUp,
    /// The inviter revoked it.
    #[error("the invite was revoked")]
    Revoked,
}

impl Store {
    /// Stores a new invite: only the hash of its secret.
    pub fn create_invite(
        &mut self,
        invite_id: &str,
        secret_hash: &[u8],
        role: Role,
        expires_at: i64,
        uses: i64,
    ) -> Result<InviteRecord, StoreError> {
        let now = unix_now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO invites (invite_id, secret_hash, role, created_at, expires_at, uses_left) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![invite_id, secret_hash, role.as_str(), now, expires_at, uses],
            )
        })?;
        Ok(InviteRecord {
            invite_id: invite_id.to_string(),
            role,
            created_at: now,
            expires_at,
            uses_left: uses,
            revoked_at: None,
        })
    }

    /// Every invite, newest first.
    pub fn invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let db = self.db();
        let rows: Vec<(String, String, i64, i64, i64, Option<i64>)> = db.rows(
            "SELECT invite_id, role, created_at, expires_at, uses_left, revoked_at FROM invites ORDER BY created_at DESC, invite_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        rows.into_iter()
            .map(
                |(invite_id, role, created_at, expires_at, uses_left, revoked_at)| {
                    Ok(InviteRecord {
                        invite_id,
                        role: db.role(&role)?,
                        created_at,
                        expires_at,
                        uses_left,
                        revoked_at,
                    })
                },
            )
            .collect()
    }

    /// Revokes an invite. Returns whether an unrevoked invite had this id.
    pub fn revoke_invite(&mut self, invite_id: &str) -> Result<bool, StoreError> {
        let n = self.write(|tx| {
            tx.execute(
                "UPDATE invites SET revoked_at = ?2 WHERE invite_id = ?1 AND revoked_at IS NULL",
                params![invite_id, unix_now()],
            )
        })?;
        Ok(n > 0)
    }

    /// Spends one use of the invite whose secret hashes to `secret_hash`, if it is
    /// valid at `now`; returns its role. Check and spend are one transaction, so
    /// two joiners racing for the last use cannot both get it.
    ///
    /// The lookup is by hash, so comparing secrets is left to the hash function:
    /// an attacker learns nothing from timing about a secret they do not know.
    pub fn redeem_invite(
        &mut self,
        secret_hash: &[u8],
        now: i64,
    ) -> Result<Result<(String, Role), InviteRefusal>, StoreError> {
        let spent = self.write(|tx| {
            let row: Option<(String, String, i64, i64, Option<i64>)> = tx.optional_row(
                "SELECT invite_id, role, expires_at, uses_left, revoked_at FROM invites WHERE secret_hash = ?1",
                [secret_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let Some((invite_id, role, expires_at, uses_left, revoked_at)) = row else {
                return Ok(Err(InviteRefusal::Unknown));
            };
            if revoked_at.is_some() {
                return Ok(Err(InviteRefusal::Revoked));
            }
            if now >= expires_at {
                return Ok(Err(InviteRefusal::Expired));
            }
            if uses_left <= 0 {
                return Ok(Err(InviteRefusal::UsedUp));
            }
            tx.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE invite_id = ?1",
                [&invite_id],
            )?;
            Ok(Ok((invite_id, role)))
        })?;
        // The role is read back after the commit, as before: a corrupt role
        // still costs the use, since nobody can join with it either way.
        match spent {
            Ok((invite_id, role)) => Ok(Ok((invite_id, self.db().role(&role)?))),
            Err(refusal) => Ok(Err(refusal)),
        }
    }
}

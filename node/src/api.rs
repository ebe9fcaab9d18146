//! The admin API: every request an admin can make of a node, and every reply.
//!
//! These are the wire types of the admin socket ([`crate::admin`]) and of any
//! other front end (the CLI today, a web console later): a client sends an
//! [`AdminRequest`]; [`crate::control`] answers with an [`AdminResponse`] whose
//! `result` is the JSON of the reply type the request names below. Replies are
//! their own types, not the store's rows, on purpose: the store can change its
//! tables without changing what clients read, and a reply carries only what an
//! admin should see.
//!
//! | request | reply |
//! |---|---|
//! | `Status` | [`StatusReport`] |
//! | `PeersList` | `Vec<`[`PeerListEntry`]`>` |
//! | `PeersPending` | `Vec<`[`PendingEntry`]`>` |
//! | `PeersApprove`, `PeersAdd`, `PeersRevoke` | [`PeerListEntry`] |
//! | `InviteCreate` | [`InviteCreated`] |
//! | `InviteList` | `Vec<`[`InviteEntry`]`>` |
//! | `InviteRevoke` | [`InviteRevoked`] |
//! | `InviteAccept` | [`InviteAccepted`] |
//! | `PracticeImport` | [`PracticesImported`] |
//! | `RosterImport` | [`RosterImported`] |
//! | `LabImport` | [`LabImported`] |
//! | `LabShow` | [`CityLab`] |
//! | `PracticeList` | `Vec<`[`Practice`]`>` |
//! | `PracticeShow` | [`Practice`] |
//! | `Share` | [`Shared`] |
//! | `SharePreview` | [`SharePreview`] |
//! | `Unshare` | [`Unshared`] |
//! | `FeedList` | `Vec<`[`FeedEntry`]`>` |
//! | `FeedShow` | [`FeedEntry`] |
//! | `Audit` | `Vec<`[`DisclosureEntry`]`>` |
//! | `ConsoleLogin` | [`ConsoleLogin`] |
//!
//! The JSON of these types is what `labnet ... --json` prints, so scripts read
//! it too: rename a field only on purpose. Ids of nodes are strings in the form
//! people read them out (see `labnet_protocol::NodeId`); times are unix seconds.

use labnet_config::Role;
use serde::{Deserialize, Serialize};

/// The lab model's types cross the API as they are: their JSON is the import
/// format (FORMAT.md), which clients already read and write.
pub use crate::lab::{CityLab, Practice, Roster};

/// A feed entry crosses the API as it is: it is already what readers see of a
/// publication, and the exports (Atom, JSON Feed, CSV) are made from it.
pub use crate::feed::FeedEntry;

/// A request from an admin client to the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum AdminRequest {
    /// What the node is and how it is doing.
    Status,
    /// Approved and revoked peers.
    PeersList,
    /// Nodes that knocked without being approved.
    PeersPending,
    /// Approve a node (normally a pending one).
    PeersApprove {
        /// The node, as typed by the admin (parsed by the daemon).
        node_id: String,
        /// The role to give it; when absent, the role it claimed when it
        /// connected (partner if it never connected).
        role: Option<Role>,
    },
    /// Approve a node ahead of time from its contact string, and dial it.
    PeersAdd {
        /// `labnet://NODEID@HOST:PORT`.
        contact: String,
        /// The role to give it; partner when absent.
        role: Option<Role>,
    },
    /// Revoke a peer: close its connection and refuse it from now on.
    PeersRevoke {
        /// The node, as typed by the admin.
        node_id: String,
    },
    /// Create an invite; returns the token to send.
    InviteCreate {
        /// The role the joiner gets.
        role: Role,
        /// How long the invite stays valid, in seconds.
        expires_secs: u64,
        /// How many nodes may join with it.
        uses: u32,
    },
    /// This node's invites.
    InviteList,
    /// Revoke an invite by id.
    InviteRevoke {
        /// The invite's id, from `invite list`.
        invite_id: String,
    },
    /// Join another node with its invite token.
    InviteAccept {
        /// The token, as pasted.
        token: String,
    },
    /// Import (create or update) practices, already parsed and validated by the CLI.
    PracticeImport {
        /// The practices.
        practices: Vec<Practice>,
    },
    /// Import the stakeholder roster (replaces the stored roster).
    RosterImport {
        /// The roster.
        roster: Roster,
    },
    /// Store the city's lab record (profile, Policy Labs, micro-experiments).
    LabImport {
        /// The record.
        lab: CityLab,
    },
    /// The city's lab record.
    LabShow,
    /// The practices held here.
    PracticeList,
    /// One practice, with every field (private ones too: this is the city's own view).
    PracticeShow {
        /// The practice's id.
        practice_id: String,
    },
    /// Publish a practice's anonymized projection to a scope.
    Share {
        /// The practice's id.
        practice_id: String,
        /// `partners`, `public`, or NodeIds separated by commas.
        scope: String,
    },
    /// Show exactly what a peer would receive, without publishing.
    SharePreview {
        /// The practice's id.
        practice_id: String,
        /// The scope to preview for.
        scope: String,
    },
    /// Retract a practice's publication.
    Unshare {
        /// The practice's id.
        practice_id: String,
    },
    /// The publications this node can show (its own and those received).
    FeedList {
        /// Only this city.
        city: Option<String>,
        /// Only this area: education or care.
        area: Option<String>,
        /// Only entries changed from this time on (unix seconds).
        since: Option<i64>,
    },
    /// One feed entry, by its id, publication id or practice id.
    FeedShow {
        /// The id.
        id: String,
    },
    /// A fresh login link for the web console.
    ConsoleLogin,
    /// The disclosure log: what left this node, to whom, when.
    Audit {
        /// Only what was sent to this peer (as typed).
        peer: Option<String>,
        /// Only from this time on (unix seconds).
        since: Option<i64>,
    },
}

impl AdminRequest {
    /// Whether the request can be carried out on a stopped node, directly on its
    /// store. Decisions about peers can (they take effect when the daemon
    /// starts); requests about live state cannot.
    pub fn works_offline(&self) -> bool {
        match self {
            AdminRequest::Status
            | AdminRequest::InviteAccept { .. }
            | AdminRequest::ConsoleLogin => false,
            AdminRequest::PeersAdd { .. }
            | AdminRequest::PeersList
            | AdminRequest::PeersPending
            | AdminRequest::PeersApprove { .. }
            | AdminRequest::PeersRevoke { .. }
            | AdminRequest::Audit { .. }
            | AdminRequest::InviteCreate { .. }
            | AdminRequest::InviteList
            | AdminRequest::InviteRevoke { .. }
            | AdminRequest::PracticeImport { .. }
            | AdminRequest::RosterImport { .. }
            | AdminRequest::PracticeList
            | AdminRequest::LabImport { .. }
            | AdminRequest::LabShow
            | AdminRequest::PracticeShow { .. }
            | AdminRequest::Share { .. }
            | AdminRequest::SharePreview { .. }
            | AdminRequest::Unshare { .. }
            | AdminRequest::FeedList { .. }
            | AdminRequest::FeedShow { .. } => true,
        }
    }
}

/// The node's answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminResponse {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The reply, when it succeeded: the JSON of the type the request names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// A one-line reason, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AdminResponse {
    /// A successful answer carrying `result`.
    pub fn success(result: serde_json::Value) -> AdminResponse {
        AdminResponse {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A refusal with a one-line reason.
    pub fn failure(reason: impl Into<String>) -> AdminResponse {
        AdminResponse {
            ok: false,
            result: None,
            error: Some(reason.into()),
        }
    }

    /// The reply of a successful answer (`null` when it carried none), or the
    /// reason of a refusal.
    pub fn into_result(self) -> Result<serde_json::Value, String> {
        match (self.ok, self.result, self.error) {
            (true, result, _) => Ok(result.unwrap_or(serde_json::Value::Null)),
            (false, _, Some(reason)) => Err(reason),
            (false, _, None) => Err("the daemon refused without a reason".into()),
        }
    }
}

/// What `labnet status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// The node's name.
    pub name: String,
    /// The node's id.
    pub node_id: String,
    /// Partner or subscriber.
    pub role: Role,
    /// The address actually bound (the real port when 0 was configured).
    pub listen: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Bytes the store takes on disk (database plus WAL).
    pub store_bytes: u64,
    /// Documents held, by kind.
    pub documents: DocumentCounts,
    /// Approved peers, and how many are connected.
    pub peers: PeerCounts,
    /// Per approved peer: connection and sync progress.
    pub sync: Vec<PeerSyncStatus>,
    /// Our retracted publications and which peers confirmed them.
    pub retractions: Vec<RetractionStatus>,
    /// The daemon's process id.
    pub pid: u32,
    /// The labnet version running.
    pub version: String,
}

/// Documents held, by kind, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentCounts {
    /// Private lab documents.
    pub private: i64,
    /// Publications this node made.
    pub publication: i64,
    /// Other nodes' publications held here.
    pub replica: i64,
}

/// Peer counts for `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerCounts {
    /// Approved peers.
    pub approved: usize,
    /// Of those, connected now.
    pub connected: usize,
    /// Pending requests.
    pub pending: usize,
}

/// How far one peer is with our publications.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSyncStatus {
    /// The peer.
    pub node_id: String,
    /// Its name, if known.
    pub name: Option<String>,
    /// partner or subscriber.
    pub role: Role,
    /// Connected now.
    pub connected: bool,
    /// When it last acknowledged our index (unix seconds).
    pub last_sync: Option<i64>,
    /// Our publications its scope lets it see.
    pub in_scope: usize,
    /// Of those, how many changed after what it acknowledged.
    pub not_up_to_date: usize,
}

/// A retracted publication and who confirmed the retraction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetractionStatus {
    /// The publication.
    pub doc_id: String,
    /// Nodes that confirmed, signed, that they deleted it: direct peers, and
    /// nodes that got it through relays (their confirmations travel back).
    pub confirmed_by: Vec<String>,
    /// Peers it was delivered to that have not confirmed yet.
    #[serde(default)]
    pub awaiting: Vec<String>,
}

/// A peer as `labnet peers list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerListEntry {
    /// The peer's id.
    pub node_id: String,
    /// The name it was approved under, if known.
    pub name: Option<String>,
    /// The name it gave in its latest handshake, when that differs from
    /// `name` (shown beside it, never instead of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_name: Option<String>,
    /// partner or subscriber.
    pub role: Role,
    /// approved or revoked.
    pub state: String,
    /// Where it is dialed, if known.
    pub address: Option<String>,
    /// Connected now (`None` when the daemon is not running).
    pub connected: Option<bool>,
    /// Last completed handshake (unix seconds).
    pub last_seen: Option<i64>,
    /// When the current state was decided (unix seconds).
    pub decided_at: i64,
    /// By which command or event.
    pub decided_by: String,
    /// Something the admin should know about the decision just made (an
    /// explicit role that differs from the one the node claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// A pending request as `labnet peers pending` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingEntry {
    /// The node's id.
    pub node_id: String,
    /// The name it gave (unverified).
    pub name: String,
    /// The address it came from.
    pub address: String,
    /// The role it claimed: what `peers approve` gives it by default.
    pub claimed_role: Option<Role>,
    /// First attempt (unix seconds).
    pub first_seen: i64,
    /// Latest attempt (unix seconds).
    pub last_seen: i64,
    /// Attempts so far.
    pub attempts: i64,
}

/// What `invite create` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteCreated {
    /// The invite's id (for list and revoke).
    pub invite_id: String,
    /// The token to send to the other node's admin.
    pub token: String,
    /// What the joiner becomes.
    pub role: Role,
    /// When it expires (unix seconds).
    pub expires_at: i64,
    /// How many nodes may join with it.
    pub uses: i64,
}

/// An invite as `labnet invite list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteEntry {
    /// Short public id, for `invite revoke`.
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

/// What `invite revoke` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteRevoked {
    /// The invite.
    pub invite_id: String,
    /// Always true: revoking an invite that is not active is refused instead.
    pub revoked: bool,
}

/// What `invite accept` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteAccepted {
    /// The inviter.
    pub node_id: String,
    /// Its name.
    pub name: String,
    /// The address that worked.
    pub address: String,
    /// What the inviter was recorded as: the role its invite states (a
    /// subscriber receives public publications only).
    pub role: Role,
    /// What this node became on the inviter's side.
    pub our_role: Role,
}

/// What `practice import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticesImported {
    /// Ids of practices new to the store.
    pub created: Vec<String>,
    /// Ids of practices that existed and were updated.
    pub updated: Vec<String>,
}

/// What `stakeholder import` did. A count, never names: they are personal data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RosterImported {
    /// How many stakeholders the roster holds now.
    pub stakeholders: usize,
    /// The publications re-issued because their history names someone the
    /// roster now holds.
    #[serde(default)]
    pub reissued: Vec<Reissued>,
}

/// A publication whose history failed today's rules, replaced by a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reissued {
    /// The publication retracted (peers delete their copies and confirm).
    pub old_doc_id: String,
    /// The fresh publication (a new history) that replaces it.
    pub new_doc_id: String,
    /// The fields of the old history that fail, once each (never the values).
    pub fields: Vec<String>,
    /// The versions (changes, from 1) of the old history that fail.
    pub versions: Vec<usize>,
    /// Re-issued because the scope narrowed from `public` (the history
    /// passed): relays' public copies are retracted, the new scope gets the
    /// new generation.
    #[serde(default)]
    pub narrowed: bool,
}

/// What `lab import` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabImported {
    /// How many Policy Labs the record holds.
    pub labs: usize,
    /// How many micro-experiments it holds.
    pub experiments: usize,
}

/// What `share` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shared {
    /// The publication document id.
    pub doc_id: String,
    /// Its heads after sharing, lowercase hex.
    pub heads: Vec<String>,
    /// Created, updated or unchanged.
    pub change: ShareChange,
    /// Exactly what a peer receives.
    pub preview_json: String,
    /// What was removed or suppressed, and why.
    pub report: ShareReport,
    /// The publication this share re-issued, because its history failed.
    #[serde(default)]
    pub reissued: Option<Reissued>,
}

/// What sharing did to the publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareChange {
    /// A new publication.
    Created,
    /// The publication, or what peers get of it (its scope), changed.
    Updated,
    /// The publication already said all this: nothing was written.
    Unchanged,
}

/// What `share preview` shows: what sharing would send, without writing anything.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharePreview {
    /// Exactly what a peer would receive.
    pub json: String,
    /// What was removed or suppressed, and why.
    pub report: ShareReport,
    /// Sharing will re-issue the publication: its stored history fails
    /// today's rules in these fields.
    #[serde(default)]
    pub reissue: Option<Reissued>,
}

/// Everything the anonymizer removed or suppressed, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareReport {
    /// One item per field touched.
    pub items: Vec<ShareReportItem>,
    /// One entry per piece removed, suppressed or changed, in context.
    #[serde(default)]
    pub removals: Vec<SharePiece>,
    /// Words kept because the data steward listed them in
    /// `anonymization.not_names`.
    #[serde(default)]
    pub exemptions: Vec<ShareExemption>,
}

/// One piece the anonymizer removed or changed, shown in context. The excerpt
/// is published text: it holds what stands in the piece's place (between `«`
/// and `»`), never the piece itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharePiece {
    /// The field, e.g. `practice.description`.
    pub field: String,
    /// The published text around the piece.
    pub excerpt: String,
    /// The rule, in words.
    pub rule: String,
    /// Why, with its figures.
    pub reason: String,
}

/// A word kept because a data steward exempted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareExemption {
    /// The field.
    pub field: String,
    /// The word as published.
    pub word: String,
    /// The published text around it.
    pub excerpt: String,
}

/// One field the anonymizer touched. Names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareReportItem {
    /// The field, e.g. `practice.indicators[2].achieved`.
    pub path: String,
    /// What was done.
    pub action: FieldAction,
    /// Why, in words.
    pub reason: String,
}

/// What the anonymizer did to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldAction {
    /// A private field, left out.
    Dropped,
    /// A figure withheld.
    Suppressed,
    /// Free text with something removed.
    Scrubbed,
    /// Dates made coarser.
    Coarsened,
}

impl FieldAction {
    /// The name as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldAction::Dropped => "dropped",
            FieldAction::Suppressed => "suppressed",
            FieldAction::Scrubbed => "scrubbed",
            FieldAction::Coarsened => "coarsened",
        }
    }
}

/// What `unshare` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unshared {
    /// The practice.
    pub practice_id: String,
    /// Always true: unsharing what is not shared is refused instead.
    pub retracted: bool,
}

/// One line of the disclosure log, as `labnet audit` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureEntry {
    /// Line number, increasing.
    pub id: i64,
    /// When (unix seconds).
    pub at: i64,
    /// `share`, `update`, `unshare` or `sent`.
    pub action: String,
    /// The publication.
    pub doc_id: String,
    /// Its version: Automerge heads, hex, comma-separated.
    pub heads: String,
    /// The peer it went to (`sent`), or none for local actions.
    pub node_id: Option<String>,
    /// The name this node's admin approved that peer under, if known (never
    /// the name the peer claims).
    #[serde(default)]
    pub peer_name: Option<String>,
    /// The publication's scope at the time.
    pub scope: String,
    /// The anonymization settings used, as JSON.
    pub settings: String,
}

/// What `labnet console` prints: the console's address with a fresh login token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleLogin {
    /// `http://ADDR/login?token=...`; works once, for 15 minutes.
    pub url: String,
}

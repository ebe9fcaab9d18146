//! The console's pages: each one asks the same admin operations the CLI asks
//! (an [`AdminRequest`] to [`crate::control::Control::handle`]) and shows the
//! typed reply as HTML.
//!
//! Everything a peer could have written (names, titles, summaries, links, the
//! preview's text) goes through maud's escaping; links from peers are shown as
//! links only when they are `http:` or `https:` ([`safe_link`]). Forms that
//! change something are POSTs carrying the session's CSRF token; the checks are
//! in [`super::guard`].

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::{html, Markup, DOCTYPE};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Session;
use super::ConsoleState;
use crate::api::{
    AdminRequest, DisclosureEntry, FeedEntry, InviteCreated, InviteEntry, PeerListEntry,
    PendingEntry, Practice, SharePreview, ShareReportItem, Shared, StatusReport,
};
use labnet_config::Role;

/// The pages, in the order of the navigation bar: path and title.
const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/pending", "Pending requests"),
    ("/peers", "Peers"),
    ("/invites", "Invites"),
    ("/practices", "Practices"),
    ("/audit", "Disclosure log"),
    ("/feed", "Feed"),
];

/// A banner above a page's content.
enum Banner {
    None,
    Notice(String),
    Error(String),
}

/// Sends a request and reads the reply as `T`, or the refusal's reason.
async fn ask<T: DeserializeOwned>(
    state: &ConsoleState,
    request: AdminRequest,
) -> Result<T, String> {
    let value = state.control.handle(request).await.into_result()?;
    serde_json::from_value(value).map_err(|e| format!("unexpected reply: {e}"))
}

/// A whole page: navigation, banner, content.
fn page(
    state: &ConsoleState,
    session: &Session,
    here: &str,
    banner: Banner,
    body: Markup,
) -> Response {
    let status = match banner {
        Banner::Error(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let title = NAV
        .iter()
        .find(|(p, _)| *p == here)
        .map(|(_, t)| *t)
        .unwrap_or("labnet");
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · labnet · " (state.control.config.name) }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header {
                    strong { "labnet · " (state.control.config.name) }
                    @for (path, name) in NAV {
                        a href=(path) class=[(path == here).then_some("here")] { (name) }
                    }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    @match &banner {
                        Banner::Notice(n) => div.notice role="status" { (n) },
                        Banner::Error(e) => div.error role="alert" { (e) },
                        Banner::None => {},
                    }
                    (body)
                }
            }
        }
    };
    (status, markup).into_response()
}

/// The hidden CSRF field every POST form carries.
fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC, or `-`.
fn when(unix: Option<i64>) -> String {
    let Some(t) = unix.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()) else {
        return "-".into();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&format).unwrap_or_else(|_| "-".into())
}

/// A peer's link, as a link only when it is http(s); anything else (a
/// `javascript:` URL, a `data:` URL) is shown as text.
pub(super) fn safe_link(url: &str) -> Markup {
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    if (lower.starts_with("https://") || lower.starts_with("http://"))
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        html! { a href=(trimmed) rel="noopener noreferrer nofollow" target="_blank" { (trimmed) } }
    } else {
        html! { span.mono title="not an http(s) link: not linked" { (trimmed) } }
    }
}

fn yes_no(v: bool, yes: &str, no: &str) -> Markup {
    if v {
        html! { span.yes { (yes) } }
    } else {
        html! { span.no { (no) } }
    }
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

/// A peer's display name: the approved name, with the NodeId.
fn peer_name(name: Option<&str>, node_id: &str) -> Markup {
    html! {
        @if let Some(n) = name { (n) br; }
        code { (node_id) }
    }
}

// ---------------------------------------------------------------- overview

/// `GET /`: the node, its peers and how far each is.
pub(super) async fn overview(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    let status: StatusReport = match ask(&state, AdminRequest::Status).await {
        Ok(s) => s,
        Err(e) => return page(&state, &session, "/", Banner::Error(e), html! {}),
    };
    let audit: Vec<DisclosureEntry> = ask(
        &state,
        AdminRequest::Audit {
            peer: None,
            since: None,
        },
    )
    .await
    .unwrap_or_default();
    let names: std::collections::HashMap<&str, &str> = status
        .sync
        .iter()
        .filter_map(|s| s.name.as_deref().map(|n| (s.node_id.as_str(), n)))
        .collect();
    let publications = publication_progress(&audit, &status);
    let body = html! {
        table {
            tr { th { "Name" } td { (status.name) } }
            tr { th { "NodeId" } td { code { (status.node_id) } } }
            tr { th { "Role" } td { (role_name(status.role)) } }
            tr { th { "Listen" } td { code { (status.listen) } } }
            tr { th { "Uptime" } td { (status.uptime_secs) " s" } }
            tr { th { "Documents" } td { (status.documents.private) " private, " (status.documents.publication) " own publications, " (status.documents.replica) " held from peers" } }
            tr { th { "Peers" } td { (status.peers.approved) " approved, " (status.peers.connected) " connected, " a href="/pending" { (status.peers.pending) " pending" } } }
            tr { th { "Store" } td { (status.store_bytes) " bytes" } }
        }
        h2 { "Peers" }
        @if status.sync.is_empty() {
            p { "No approved peers yet: see " a href="/pending" { "Pending requests" } " and " a href="/invites" { "Invites" } "." }
        } @else {
            table #peers {
                tr { th { "Peer" } th { "Role" } th { "Connected" } th { "Last sync (UTC)" } th { "Our publications in scope" } th { "Behind" } }
                @for s in &status.sync {
                    tr data-peer=(s.node_id) {
                        td { (peer_name(s.name.as_deref(), &s.node_id)) }
                        td { (role_name(s.role)) }
                        td.connected { (yes_no(s.connected, "connected", "not connected")) }
                        td { (when(s.last_sync)) }
                        td { (s.in_scope) }
                        td { @if s.not_up_to_date == 0 { span.yes { "up to date" } } @else { span.no { (s.not_up_to_date) " behind" } } }
                    }
                }
            }
        }
        h2 { "Our publications" }
        @if publications.is_empty() {
            p { "Nothing shared yet: see " a href="/practices" { "Practices" } "." }
        } @else {
            table {
                tr { th { "Publication" } th { "Version" } th { "Up to date at" } }
                @for (doc, heads, got) in &publications {
                    tr {
                        td { code { (doc) } }
                        td { code { (short_heads(heads)) } }
                        td {
                            @if got.is_empty() { span.no { "no peer yet" } }
                            @for n in got { (names.get(n.as_str()).copied().unwrap_or(n.as_str())) br; }
                        }
                    }
                }
            }
        }
        @if !status.retractions.is_empty() {
            h2 { "Retractions" }
            table {
                tr { th { "Publication" } th { "Confirmed by" } }
                @for r in &status.retractions {
                    tr { td { code { (r.doc_id) } } td { @for n in &r.confirmed_by { (names.get(n.as_str()).copied().unwrap_or(n.as_str())) br; } } }
                }
            }
        }
    };
    page(&state, &session, "/", Banner::None, body)
}

fn short_heads(heads: &str) -> String {
    heads
        .split(',')
        .map(|h| h.get(..12).unwrap_or(h))
        .collect::<Vec<_>>()
        .join(",")
}

/// Per live publication of ours: its latest version (from the disclosure log)
/// and the peers that were sent that version.
fn publication_progress(
    audit: &[DisclosureEntry],
    status: &StatusReport,
) -> Vec<(String, String, Vec<String>)> {
    let retracted: std::collections::HashSet<&str> = status
        .retractions
        .iter()
        .map(|r| r.doc_id.as_str())
        .collect();
    let mut latest: std::collections::BTreeMap<&str, &str> = Default::default();
    for d in audit
        .iter()
        .filter(|d| d.action == "share" || d.action == "update")
    {
        latest.insert(d.doc_id.as_str(), d.heads.as_str());
    }
    latest
        .into_iter()
        .filter(|(doc, _)| !retracted.contains(doc))
        .map(|(doc, heads)| {
            let mut got: Vec<String> = audit
                .iter()
                .filter(|d| d.action == "sent" && d.doc_id == doc && d.heads == heads)
                .filter_map(|d| d.node_id.clone())
                .collect();
            got.sort();
            got.dedup();
            (doc.to_string(), heads.to_string(), got)
        })
        .collect()
}

// ---------------------------------------------------------------- pending

/// `GET /pending`.
pub(super) async fn pending(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    pending_page(&state, &session, Banner::None).await
}

async fn pending_page(state: &ConsoleState, session: &Session, banner: Banner) -> Response {
    let list: Vec<PendingEntry> = match ask(state, AdminRequest::PeersPending).await {
        Ok(l) => l,
        Err(e) => return page(state, session, "/pending", Banner::Error(e), html! {}),
    };
    let body = html! {
        p { "Nodes that connected without being approved. The name is what the node claims: check its NodeId with its admin before approving." }
        @if list.is_empty() {
            p #no-pending { "No pending requests." }
        } @else {
            table #pending {
                tr { th { "Claimed name" } th { "NodeId" } th { "From" } th { "Last attempt (UTC)" } th { "Attempts" } th { "Decision" } }
                @for p in &list {
                    tr data-node=(p.node_id) {
                        td { (p.name) }
                        td { code { (p.node_id) } }
                        td { code { (p.address) } }
                        td { (when(Some(p.last_seen))) }
                        td { (p.attempts) }
                        td {
                            form.inline method="post" action="/pending/approve" {
                                (csrf(session))
                                input type="hidden" name="node" value=(p.node_id);
                                select name="role" {
                                    option value="partner" { "as partner" }
                                    option value="subscriber" { "as subscriber" }
                                }
                                " "
                                button.approve type="submit" { "Approve" }
                            }
                            " "
                            form.inline method="post" action="/pending/decline" {
                                (csrf(session))
                                input type="hidden" name="node" value=(p.node_id);
                                button.danger.decline type="submit" { "Decline" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(state, session, "/pending", banner, body)
}

/// A form naming a node.
#[derive(Debug, Deserialize)]
pub(super) struct NodeForm {
    node: String,
    #[serde(default)]
    role: Option<String>,
}

/// `POST /pending/approve`.
pub(super) async fn approve(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<NodeForm>,
) -> Response {
    let role = match form.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(r) => r,
        Err(e) => return pending_page(&state, &session, Banner::Error(format!("role: {e}"))).await,
    };
    let banner = match ask::<PeerListEntry>(
        &state,
        AdminRequest::PeersApprove {
            node_id: form.node,
            role,
        },
    )
    .await
    {
        Ok(p) => Banner::Notice(format!(
            "Approved {} ({}) as {}.",
            p.name.as_deref().unwrap_or("the node"),
            p.node_id,
            p.role.as_str()
        )),
        Err(e) => Banner::Error(e),
    };
    pending_page(&state, &session, banner).await
}

/// `POST /pending/decline`: refuses the node from now on (a revocation).
pub(super) async fn decline(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<NodeForm>,
) -> Response {
    let banner = match ask::<PeerListEntry>(
        &state,
        AdminRequest::PeersRevoke { node_id: form.node },
    )
    .await
    {
        Ok(p) => Banner::Notice(format!(
            "Declined {}: it is refused from now on.",
            p.node_id
        )),
        Err(e) => Banner::Error(e),
    };
    pending_page(&state, &session, banner).await
}

// ---------------------------------------------------------------- peers

/// `GET /peers`.
pub(super) async fn peers(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    peers_page(&state, &session, Banner::None).await
}

async fn peers_page(state: &ConsoleState, session: &Session, banner: Banner) -> Response {
    let list: Vec<PeerListEntry> = match ask(state, AdminRequest::PeersList).await {
        Ok(l) => l,
        Err(e) => return page(state, session, "/peers", Banner::Error(e), html! {}),
    };
    let body = html! {
        @if list.is_empty() {
            p { "No peers yet." }
        } @else {
            table #peers {
                tr { th { "Peer" } th { "Role" } th { "State" } th { "Connected" } th { "Address" } th { "Last seen (UTC)" } th { "Decided" } th {} }
                @for p in &list {
                    tr data-peer=(p.node_id) {
                        td { (peer_name(p.name.as_deref(), &p.node_id)) }
                        td { (role_name(p.role)) }
                        td.state { (p.state) }
                        td.connected { (yes_no(p.connected == Some(true), "connected", "not connected")) }
                        td { code { (p.address.as_deref().unwrap_or("-")) } }
                        td { (when(p.last_seen)) }
                        td { (when(Some(p.decided_at))) " by " (p.decided_by) }
                        td {
                            @if p.state == "approved" {
                                a.revoke href={ "/peers/revoke?node=" (p.node_id) } { "Revoke…" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(state, session, "/peers", banner, body)
}

/// The node named in a query.
#[derive(Debug, Deserialize)]
pub(super) struct NodeQuery {
    node: String,
}

/// `GET /peers/revoke?node=`: the confirmation step.
pub(super) async fn revoke_confirm(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<NodeQuery>,
) -> Response {
    let list: Vec<PeerListEntry> = ask(&state, AdminRequest::PeersList)
        .await
        .unwrap_or_default();
    let Some(p) = list.iter().find(|p| p.node_id == q.node) else {
        return peers_page(
            &state,
            &session,
            Banner::Error(format!("{} is not a peer", q.node)),
        )
        .await;
    };
    let body = html! {
        div.error {
            p { "Revoke " strong { (p.name.as_deref().unwrap_or("this peer")) } " (" code { (p.node_id) } ")?" }
            p { "Its connection is closed at once and it is refused from now on. It keeps what it already received." }
        }
        form method="post" action="/peers/revoke" {
            (csrf(&session))
            input type="hidden" name="node" value=(p.node_id);
            button.danger #confirm-revoke type="submit" { "Yes, revoke" }
            " "
            a href="/peers" { "Cancel" }
        }
    };
    page(&state, &session, "/peers", Banner::None, body)
}

/// `POST /peers/revoke`.
pub(super) async fn revoke(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<NodeForm>,
) -> Response {
    let banner = match ask::<PeerListEntry>(
        &state,
        AdminRequest::PeersRevoke { node_id: form.node },
    )
    .await
    {
        Ok(p) => Banner::Notice(format!(
            "Revoked {} ({}).",
            p.name.as_deref().unwrap_or("the peer"),
            p.node_id
        )),
        Err(e) => Banner::Error(e),
    };
    peers_page(&state, &session, banner).await
}

// ---------------------------------------------------------------- invites

/// `GET /invites`.
pub(super) async fn invites(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    invites_page(&state, &session, Banner::None, None).await
}

async fn invites_page(
    state: &ConsoleState,
    session: &Session,
    banner: Banner,
    created: Option<InviteCreated>,
) -> Response {
    let list: Vec<InviteEntry> = match ask(state, AdminRequest::InviteList).await {
        Ok(l) => l,
        Err(e) => return page(state, session, "/invites", Banner::Error(e), html! {}),
    };
    let now = crate::store::unix_now();
    let body = html! {
        @if let Some(c) = &created {
            fieldset #created {
                legend { "Invite " (c.invite_id) " for a " (c.role.as_str()) }
                p { "Send this line to the other node's admin (it works " (c.uses) " time(s), until " (when(Some(c.expires_at))) " UTC). It is shown only now." }
                textarea.token #token readonly rows="3" { (c.token) }
                button type="button" data-copy="token" { "Copy" }
            }
        }
        fieldset {
            legend { "Create an invite" }
            form method="post" action="/invites/create" {
                (csrf(session))
                label { "The joiner becomes " select name="role" { option value="partner" { "a partner" } option value="subscriber" { "a subscriber" } } }
                " "
                label { "valid for " input type="number" name="days" value="7" min="1" max="30" size="3"; " days" }
                " "
                label { "uses " input type="number" name="uses" value="1" min="1" max="100" size="3"; }
                " "
                button #create-invite type="submit" { "Create" }
            }
        }
        @if list.is_empty() {
            p { "No invites." }
        } @else {
            table #invites {
                tr { th { "Invite" } th { "Role" } th { "Created (UTC)" } th { "Expires (UTC)" } th { "Uses left" } th { "State" } th {} }
                @for i in &list {
                    @let active = i.revoked_at.is_none() && i.expires_at > now && i.uses_left > 0;
                    tr {
                        td { code { (i.invite_id) } }
                        td { (i.role.as_str()) }
                        td { (when(Some(i.created_at))) }
                        td { (when(Some(i.expires_at))) }
                        td { (i.uses_left) }
                        td { @if i.revoked_at.is_some() { "revoked" } @else if active { "active" } @else { "spent or expired" } }
                        td {
                            @if active {
                                form.inline method="post" action="/invites/revoke" {
                                    (csrf(session))
                                    input type="hidden" name="invite" value=(i.invite_id);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(state, session, "/invites", banner, body)
}

/// The create-invite form.
#[derive(Debug, Deserialize)]
pub(super) struct InviteForm {
    role: String,
    days: u64,
    uses: u32,
}

/// `POST /invites/create`.
pub(super) async fn invite_create(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<InviteForm>,
) -> Response {
    let role = match form.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => {
            return invites_page(&state, &session, Banner::Error(format!("role: {e}")), None).await
        }
    };
    let request = AdminRequest::InviteCreate {
        role,
        expires_secs: form.days.saturating_mul(24 * 60 * 60),
        uses: form.uses,
    };
    match ask::<InviteCreated>(&state, request).await {
        Ok(c) => {
            let banner = Banner::Notice(format!("Created invite {}.", c.invite_id));
            invites_page(&state, &session, banner, Some(c)).await
        }
        Err(e) => invites_page(&state, &session, Banner::Error(e), None).await,
    }
}

/// The revoke-invite form.
#[derive(Debug, Deserialize)]
pub(super) struct InviteRevokeForm {
    invite: String,
}

/// `POST /invites/revoke`.
pub(super) async fn invite_revoke(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<InviteRevokeForm>,
) -> Response {
    let banner = match ask::<Value>(
        &state,
        AdminRequest::InviteRevoke {
            invite_id: form.invite.clone(),
        },
    )
    .await
    {
        Ok(_) => Banner::Notice(format!("Revoked invite {}.", form.invite)),
        Err(e) => Banner::Error(e),
    };
    invites_page(&state, &session, banner, None).await
}

// ---------------------------------------------------------------- practices

/// `GET /practices`.
pub(super) async fn practices(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    practices_page(&state, &session, Banner::None).await
}

async fn practices_page(state: &ConsoleState, session: &Session, banner: Banner) -> Response {
    let list: Vec<Practice> = match ask(state, AdminRequest::PracticeList).await {
        Ok(l) => l,
        Err(e) => return page(state, session, "/practices", Banner::Error(e), html! {}),
    };
    let body = html! {
        p { "Nothing leaves the node until it is shared; what is shared is the anonymized preview." }
        @if list.is_empty() {
            p { "No practices: import them with " code { "labnet practice import FILE" } "." }
        } @else {
            table #practices {
                tr { th { "Practice" } th { "Id" } th { "City" } th {} }
                @for p in &list {
                    tr data-practice=(p.id) {
                        td { (p.name) }
                        td { code { (p.id) } }
                        td { (p.city) }
                        td {
                            a.preview href={ "/practices/preview?id=" (urlencode(&p.id)) "&scope=partners" } { "Preview and share…" }
                            " "
                            form.inline method="post" action="/practices/unshare" {
                                (csrf(session))
                                input type="hidden" name="id" value=(p.id);
                                button.danger type="submit" { "Unshare" }
                            }
                        }
                    }
                }
            }
        }
    };
    page(state, session, "/practices", banner, body)
}

/// Percent-encodes a query value.
fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A practice and a scope.
#[derive(Debug, Deserialize)]
pub(super) struct ShareQuery {
    id: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /practices/preview?id=&scope=`: exactly what peers in the scope receive,
/// with what was removed or changed highlighted and why.
pub(super) async fn preview(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ShareQuery>,
) -> Response {
    let scope = q.scope.unwrap_or_else(|| "partners".into());
    let request = AdminRequest::SharePreview {
        practice_id: q.id.clone(),
        scope: scope.clone(),
    };
    match ask::<SharePreview>(&state, request).await {
        Ok(p) => {
            let body = preview_body(&session, &q.id, &scope, &p.json, &p.report.items);
            page(&state, &session, "/practices", Banner::None, body)
        }
        Err(e) => practices_page(&state, &session, Banner::Error(e)).await,
    }
}

fn preview_body(
    session: &Session,
    id: &str,
    scope: &str,
    json: &str,
    items: &[ShareReportItem],
) -> Markup {
    let value: Value = serde_json::from_str(json).unwrap_or(Value::String(json.to_string()));
    let mut shown = vec![false; items.len()];
    let tree = render_value(&value, "", items, &mut shown);
    html! {
        h2 { "Share preview: " code { (id) } " to " code { (scope) } }
        form.filters method="get" action="/practices/preview" {
            input type="hidden" name="id" value=(id);
            label { "Scope " input type="text" name="scope" value=(scope) size="40"; }
            button type="submit" { "Preview for this scope" }
            " (partners, public, or NodeIds separated by commas)"
        }
        h3 { "Removed or changed before publication" }
        @if items.is_empty() {
            p { "Nothing was removed." }
        } @else {
            table #report {
                tr { th { "Field" } th { "What" } th { "Why" } }
                @for i in items {
                    tr.removed data-path=(i.path) { td { code { (i.path) } } td { (i.action.as_str()) } td.reason { (i.reason) } }
                }
            }
        }
        h3 { "Exactly what peers receive" }
        div.tree #preview { (tree) }
        @let not_shown: Vec<&ShareReportItem> = items.iter().zip(&shown).filter(|(_, s)| !**s).map(|(i, _)| i).collect();
        @if !not_shown.is_empty() {
            p { "Left out entirely:" }
            ul {
                @for i in not_shown {
                    li.removed { code { (i.path) } " — " (i.action.as_str()) ": " span.reason { (i.reason) } }
                }
            }
        }
        form method="post" action="/practices/share" {
            (csrf(session))
            input type="hidden" name="id" value=(id);
            input type="hidden" name="scope" value=(scope);
            button #share type="submit" { "Share with " (scope) }
        }
    }
}

/// Whether a report path names the JSON path (ignoring a leading `practice.`
/// and list indices where the report gives none).
fn path_matches(report: &str, json_path: &str) -> bool {
    fn norm(p: &str) -> String {
        p.strip_prefix("practice.").unwrap_or(p).to_string()
    }
    fn no_index(p: &str) -> String {
        let mut out = String::new();
        let mut in_bracket = false;
        for c in p.chars() {
            match c {
                '[' => {
                    in_bracket = true;
                    out.push('[');
                }
                ']' => {
                    in_bracket = false;
                    out.push(']');
                }
                _ if in_bracket => {}
                c => out.push(c),
            }
        }
        out
    }
    let (r, j) = (norm(report), norm(json_path));
    r == j || no_index(&r) == no_index(&j) && !r.contains("[0") && r.contains("[]")
}

/// The preview as a tree; a field the report names is highlighted with its
/// reason. Peers' text is escaped by maud.
fn render_value(
    value: &Value,
    path: &str,
    items: &[ShareReportItem],
    shown: &mut [bool],
) -> Markup {
    match value {
        Value::Object(map) => html! {
            ul {
                @for (k, v) in map {
                    @let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    (field(&p, k, v, items, shown))
                }
            }
        },
        Value::Array(list) => html! {
            ul {
                @for (i, v) in list.iter().enumerate() {
                    @let p = format!("{path}[{i}]");
                    (field(&p, &format!("[{i}]"), v, items, shown))
                }
            }
        },
        Value::String(s) if looks_like_link(path) => safe_link(s),
        Value::String(s) => html! { span { (s) } },
        other => html! { span.mono { (other.to_string()) } },
    }
}

fn looks_like_link(path: &str) -> bool {
    path.ends_with("link") || path.ends_with("url")
}

fn field(
    path: &str,
    key: &str,
    v: &Value,
    items: &[ShareReportItem],
    shown: &mut [bool],
) -> Markup {
    let hit = items.iter().position(|i| path_matches(&i.path, path));
    if let Some(n) = hit {
        shown[n] = true;
    }
    let inner = render_value(v, path, items, shown);
    html! {
        li class=[hit.map(|_| "changed")] data-path=(path) {
            span.key { (key) } ": " (inner)
            @if let Some(n) = hit { " " span.reason { "← " (items[n].action.as_str()) ": " (items[n].reason) } }
        }
    }
}

/// The share form.
#[derive(Debug, Deserialize)]
pub(super) struct ShareForm {
    id: String,
    scope: String,
}

/// `POST /practices/share`.
pub(super) async fn share(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<ShareForm>,
) -> Response {
    let request = AdminRequest::Share {
        practice_id: form.id.clone(),
        scope: form.scope.clone(),
    };
    let banner = match ask::<Shared>(&state, request).await {
        Ok(s) => Banner::Notice(format!(
            "Shared {} with {} as {} ({:?}).",
            form.id, form.scope, s.doc_id, s.change
        )),
        Err(e) => Banner::Error(e),
    };
    practices_page(&state, &session, banner).await
}

/// The unshare form.
#[derive(Debug, Deserialize)]
pub(super) struct IdForm {
    id: String,
}

/// `POST /practices/unshare`.
pub(super) async fn unshare(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<IdForm>,
) -> Response {
    let banner = match ask::<Value>(
        &state,
        AdminRequest::Unshare {
            practice_id: form.id.clone(),
        },
    )
    .await
    {
        Ok(_) => Banner::Notice(format!(
            "Retracted {}: peers delete their copies and confirm.",
            form.id
        )),
        Err(e) => Banner::Error(e),
    };
    practices_page(&state, &session, banner).await
}

// ---------------------------------------------------------------- audit

/// The disclosure log's filters, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    peer: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /audit?peer=&from=&to=`: what left this node, to whom, which version;
/// and which peers confirmed our retractions.
pub(super) async fn audit(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let parse = |name: &str, v: Option<&str>| {
        v.map(|s| crate::feed::parse_date(s).map_err(|e| format!("{name} {e}")))
            .transpose()
    };
    let (from, to) = match (parse("from", blank(&q.from)), parse("to", blank(&q.to))) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            return page(&state, &session, "/audit", Banner::Error(e), html! {})
        }
    };
    let peer = blank(&q.peer).map(str::to_string);
    let lines: Vec<DisclosureEntry> = match ask(
        &state,
        AdminRequest::Audit {
            peer: peer.clone(),
            since: from,
        },
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return page(&state, &session, "/audit", Banner::Error(e), html! {}),
    };
    // `to` is a day: include all of it.
    let until = to.map(|t| {
        if blank(&q.to).is_some_and(|s| s.len() == 10) {
            t + 86_400
        } else {
            t + 1
        }
    });
    let lines: Vec<&DisclosureEntry> = lines
        .iter()
        .filter(|l| until.is_none_or(|u| l.at < u))
        .collect();
    let peers: Vec<PeerListEntry> = ask(&state, AdminRequest::PeersList)
        .await
        .unwrap_or_default();
    let status: Option<StatusReport> = ask(&state, AdminRequest::Status).await.ok();
    let name_of = |n: &str| {
        peers
            .iter()
            .find(|p| p.node_id == n)
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| n.to_string())
    };
    let body = html! {
        form.filters #audit-filter method="get" action="/audit" {
            label { "Peer " select name="peer" {
                option value="" { "all" }
                @for p in &peers {
                    option value=(p.node_id) selected[peer.as_deref() == Some(p.node_id.as_str())] { (p.name.as_deref().unwrap_or(&p.node_id)) }
                }
            } }
            label { "From " input type="date" name="from" value=(blank(&q.from).unwrap_or("")); }
            label { "To " input type="date" name="to" value=(blank(&q.to).unwrap_or("")); }
            button type="submit" { "Filter" }
        }
        @if lines.is_empty() {
            p #no-lines { "No lines match." }
        } @else {
            table #audit {
                tr { th { "When (UTC)" } th { "Action" } th { "Publication" } th { "Peer" } th { "Scope" } th { "Version" } }
                @for l in &lines {
                    tr data-action=(l.action) {
                        td { (when(Some(l.at))) }
                        td { (l.action) }
                        td { code { (l.doc_id) } }
                        td { @match &l.node_id { Some(n) => { (name_of(n)) br; code { (n) } }, None => "-" } }
                        td { (l.scope) }
                        td { code { (short_heads(&l.heads)) } }
                    }
                }
            }
        }
        @if let Some(s) = &status {
            @if !s.retractions.is_empty() {
                h2 { "Retractions and who confirmed them" }
                table #retractions {
                    tr { th { "Publication" } th { "Confirmed by" } }
                    @for r in &s.retractions {
                        @if peer.as_ref().is_none_or(|p| r.confirmed_by.contains(p) || lines.iter().any(|l| l.doc_id == r.doc_id)) {
                            tr { td { code { (r.doc_id) } } td { @if r.confirmed_by.is_empty() { span.no { "nobody yet" } } @for n in &r.confirmed_by { (name_of(n)) br; } } }
                        }
                    }
                }
            }
        }
    };
    page(&state, &session, "/audit", Banner::None, body)
}

// ---------------------------------------------------------------- feed

/// The feed's filters, as typed (the CLI's).
#[derive(Debug, Default, Deserialize)]
pub(super) struct FeedQuery {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

/// `GET /feed?city=&area=&since=`.
pub(super) async fn feed(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(q): Query<FeedQuery>,
) -> Response {
    let since = match blank(&q.since).map(crate::feed::parse_date).transpose() {
        Ok(s) => s,
        Err(e) => {
            return page(
                &state,
                &session,
                "/feed",
                Banner::Error(format!("since {e}")),
                html! {},
            )
        }
    };
    let request = AdminRequest::FeedList {
        city: blank(&q.city).map(str::to_string),
        area: blank(&q.area).map(str::to_string),
        since,
    };
    let (entries, banner): (Vec<FeedEntry>, Banner) = match ask(&state, request).await {
        Ok(e) => (e, Banner::None),
        Err(e) => (Vec::new(), Banner::Error(e)),
    };
    let area = blank(&q.area).unwrap_or("");
    let body = html! {
        form.filters method="get" action="/feed" {
            label { "City " input type="text" name="city" value=(blank(&q.city).unwrap_or("")); }
            label { "Area " select name="area" {
                option value="" { "any" }
                option value="education" selected[area == "education"] { "education" }
                option value="care" selected[area == "care"] { "care" }
            } }
            label { "Since " input type="date" name="since" value=(blank(&q.since).unwrap_or("")); }
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() {
            p { "No publications match." }
        } @else {
            @for e in &entries {
                article.feed-entry data-id=(e.id) {
                    h3 { (e.title) }
                    p { strong { (e.city) } " · " (e.area.as_deref().unwrap_or("-")) " · updated " (when(Some(e.updated))) " UTC" }
                    p { (e.summary) }
                    @if let Some(l) = &e.link { p { "Link: " (safe_link(l)) } }
                    @if !e.indicators.is_empty() {
                        ul { @for i in &e.indicators { li { (crate::feed::indicator_text(i)) } } }
                    }
                }
            }
        }
    };
    page(&state, &session, "/feed", banner, body)
}

/// The page for a request without a session.
pub(super) fn login_needed() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Log in · labnet" } link rel="stylesheet" href="/assets/console.css"; }
            body { main {
                h1 { "Log in to the labnet console" }
                p { "Run " code { "labnet console" } " on the node's machine and open the link it prints. Each link works once, for 15 minutes." }
            } }
        }
    }
}

//! The peer table: list, and revoke with a confirmation step.

use super::*;

/// `GET /peers`.
pub(in crate::console) async fn peers(
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
pub(in crate::console) struct NodeQuery {
    node: String,
}

/// `GET /peers/revoke?node=`: the confirmation step.
pub(in crate::console) async fn revoke_confirm(
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
pub(in crate::console) async fn revoke(
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

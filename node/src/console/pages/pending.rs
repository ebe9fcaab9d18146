//! The pending connection requests: list, approve, decline.

use super::*;

/// `GET /pending`.
pub(in crate::console) async fn pending(
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

/// `POST /pending/approve`.
pub(in crate::console) async fn approve(
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
pub(in crate::console) async fn decline(
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

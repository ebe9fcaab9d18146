//! The peer table: list, and revoke with a confirmation step.

use super::*;

/// The peers page, under `banner`.
pub(super) async fn peers_page(v: &Viewer, banner: Banner) -> Response {
    v.show("/peers", AdminRequest::PeersList, banner, |list: Vec<PeerListEntry>| {
        html! {
            (table(html! { p { "No peers yet." } }, "peers", &["Peer", "Role", "State", "Connected", "Address", "Last seen (UTC)", "Decided", ""], &list, |p| html! {
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
            }))
        }
    })
    .await
}

/// The node named in a query.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct NodeQuery {
    node: String,
}

/// `GET /peers/revoke?node=`: the confirmation step.
pub(in crate::console) async fn revoke_confirm(v: Viewer, Query(q): Query<NodeQuery>) -> Response {
    let list: Vec<PeerListEntry> = v.ask(AdminRequest::PeersList).await.unwrap_or_default();
    let Some(p) = list.iter().find(|p| p.node_id == q.node) else {
        return peers_page(&v, Banner::Error(format!("{} is not a peer", q.node))).await;
    };
    let body = html! {
        div.error {
            p { "Revoke " strong { (p.name.as_deref().unwrap_or("this peer")) } " (" code { (p.node_id) } ")?" }
            p { "Its connection is closed at once and it is refused from now on. It keeps what it already received." }
        }
        form method="post" action="/peers/revoke" {
            (v.csrf())
            input type="hidden" name="node" value=(p.node_id);
            button.danger #confirm-revoke type="submit" { "Yes, revoke" }
            " "
            a href="/peers" { "Cancel" }
        }
    };
    v.page("/peers", Banner::None, body)
}

/// `POST /peers/revoke`.
pub(in crate::console) async fn revoke(v: Viewer, Form(form): Form<NodeForm>) -> Response {
    let request = AdminRequest::PeersRevoke { node_id: form.node };
    let banner = v
        .act(request, |p: PeerListEntry| {
            let name = p.name.as_deref().unwrap_or("the peer");
            format!("Revoked {name} ({}).", p.node_id)
        })
        .await;
    peers_page(&v, banner).await
}

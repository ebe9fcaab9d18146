//! The pending connection requests: list, approve, decline.

use super::*;

/// The pending page, under `banner`.
pub(super) async fn pending_page(v: &Viewer, banner: Banner) -> Response {
    v.show("/pending", AdminRequest::PeersPending, banner, |list: Vec<PendingEntry>| {
        html! {
            p { "Nodes that connected without being approved. The name is what the node claims: check its NodeId with its admin before approving." }
            (table(html! { p #no-pending { "No pending requests." } }, "pending", &["Claimed name", "NodeId", "From", "Last attempt (UTC)", "Attempts", "Decision"], &list, |p| html! {
                tr data-node=(p.node_id) {
                    td { (p.name) }
                    td { code { (p.node_id) } }
                    td { code { (p.address) } }
                    td { (when(Some(p.last_seen))) }
                    td { (p.attempts) }
                    td {
                        (v.post_form("/pending/approve", &[("node", &p.node_id)], html! {
                            select name="role" {
                                option value="partner" { "as partner" }
                                option value="subscriber" { "as subscriber" }
                            }
                            " "
                            button.approve type="submit" { "Approve" }
                        }))
                        " "
                        (v.post_form("/pending/decline", &[("node", &p.node_id)], html! {
                            button.danger.decline type="submit" { "Decline" }
                        }))
                    }
                }
            }))
        }
    })
    .await
}

/// `POST /pending/approve`.
pub(in crate::console) async fn approve(v: Viewer, Form(form): Form<NodeForm>) -> Response {
    let role = match form.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(r) => r,
        Err(e) => return pending_page(&v, Banner::Error(format!("role: {e}"))).await,
    };
    let request = AdminRequest::PeersApprove {
        node_id: form.node,
        role,
    };
    let banner = v
        .act(request, |p: PeerListEntry| {
            let name = p.name.as_deref().unwrap_or("the node");
            format!("Approved {name} ({}) as {}.", p.node_id, p.role.as_str())
        })
        .await;
    pending_page(&v, banner).await
}

/// `POST /pending/decline`: refuses the node from now on (a revocation).
pub(in crate::console) async fn decline(v: Viewer, Form(form): Form<NodeForm>) -> Response {
    let request = AdminRequest::PeersRevoke { node_id: form.node };
    let banner = v
        .act(request, |p: PeerListEntry| {
            format!("Declined {}: it is refused from now on.", p.node_id)
        })
        .await;
    pending_page(&v, banner).await
}

//! `GET /`: the node, its peers, and how far each peer is with our publications.

use super::*;

/// `GET /`: the node, its peers and how far each is.
pub(in crate::console) async fn overview(v: Viewer) -> Response {
    let status: StatusReport = match v.ask(AdminRequest::Status).await {
        Ok(s) => s,
        Err(e) => return v.refused("/", e),
    };
    let everything = AdminRequest::Audit {
        peer: None,
        since: None,
    };
    let audit: Vec<DisclosureEntry> = v.ask(everything).await.unwrap_or_default();
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
    v.page("/", Banner::None, body)
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

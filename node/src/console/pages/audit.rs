//! The disclosure log, filtered by peer and date, with the confirmations of
//! each retraction.

use super::*;

/// The disclosure log's filters, as typed.
#[derive(Debug, Default, Deserialize)]
pub(in crate::console) struct AuditQuery {
    #[serde(default)]
    peer: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// `GET /audit?peer=&from=&to=`: what left this node, to whom, which version;
/// and which peers confirmed our retractions.
pub(in crate::console) async fn audit(v: Viewer, Query(q): Query<AuditQuery>) -> Response {
    let (from, to) = match (date_filter("from", &q.from), date_filter("to", &q.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return v.refused("/audit", e),
    };
    let peer = blank(&q.peer).map(str::to_string);
    let request = AdminRequest::Audit {
        peer: peer.clone(),
        since: from,
    };
    let lines: Vec<DisclosureEntry> = match v.ask(request).await {
        Ok(l) => l,
        Err(e) => return v.refused("/audit", e),
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
    let peers: Vec<PeerListEntry> = v.ask(AdminRequest::PeersList).await.unwrap_or_default();
    let status: Option<StatusReport> = v.ask(AdminRequest::Status).await.ok();
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
    v.page("/audit", Banner::None, body)
}

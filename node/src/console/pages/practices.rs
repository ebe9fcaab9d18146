//! Practices: the list, the share preview with each removal in context and its
//! rule, share and unshare.

use super::*;

/// The practices page, under `banner`.
pub(super) async fn practices_page(v: &Viewer, banner: Banner) -> Response {
    v.show("/practices", AdminRequest::PracticeList, banner, |list: Vec<Practice>| {
        html! {
            p { "Nothing leaves the node until it is shared; what is shared is the anonymized preview." }
            (table(html! { p { "No practices: import them with " code { "labnet practice import FILE" } "." } }, "practices", &["Practice", "Id", "City", ""], &list, |p| html! {
                tr data-practice=(p.id) {
                    td { (p.name) }
                    td { code { (p.id) } }
                    td { (p.city) }
                    td {
                        a.preview href={ "/practices/preview?id=" (urlencode(&p.id)) "&scope=partners" } { "Preview and share…" }
                        " "
                        (v.post_form("/practices/unshare", &[("id", &p.id)], html! {
                            button.danger type="submit" { "Unshare" }
                        }))
                    }
                }
            }))
        }
    })
    .await
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
pub(in crate::console) struct ShareQuery {
    id: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /practices/preview?id=&scope=`: exactly what peers in the scope receive,
/// with what was removed or changed highlighted and why.
pub(in crate::console) async fn preview(v: Viewer, Query(q): Query<ShareQuery>) -> Response {
    let scope = q.scope.unwrap_or_else(|| "partners".into());
    let request = AdminRequest::SharePreview {
        practice_id: q.id.clone(),
        scope: scope.clone(),
    };
    match v.ask::<SharePreview>(request).await {
        Ok(p) => {
            let body = preview_body(&v, &q.id, &scope, &p.json, &p.report.items);
            v.page("/practices", Banner::None, body)
        }
        Err(e) => practices_page(&v, Banner::Error(e)).await,
    }
}

fn preview_body(
    v: &Viewer,
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
            (v.csrf())
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
pub(in crate::console) struct ShareForm {
    id: String,
    scope: String,
}

/// `POST /practices/share`.
pub(in crate::console) async fn share(v: Viewer, Form(form): Form<ShareForm>) -> Response {
    let request = AdminRequest::Share {
        practice_id: form.id.clone(),
        scope: form.scope.clone(),
    };
    let banner = v
        .act(request, |s: Shared| {
            let (id, scope) = (&form.id, &form.scope);
            format!("Shared {id} with {scope} as {} ({:?}).", s.doc_id, s.change)
        })
        .await;
    practices_page(&v, banner).await
}

/// The unshare form.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct IdForm {
    id: String,
}

/// `POST /practices/unshare`.
pub(in crate::console) async fn unshare(v: Viewer, Form(form): Form<IdForm>) -> Response {
    let request = AdminRequest::Unshare {
        practice_id: form.id.clone(),
    };
    let banner = v
        .act(request, |_: Value| {
            format!(
                "Retracted {}: peers delete their copies and confirm.",
                form.id
            )
        })
        .await;
    practices_page(&v, banner).await
}

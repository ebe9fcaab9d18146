//! The feed of what peers published, as the CLI's `feed list` shows it.

use super::*;

/// The feed's filters, as typed (the CLI's).
#[derive(Debug, Default, Deserialize)]
pub(in crate::console) struct FeedQuery {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

/// `GET /feed?city=&area=&since=`.
pub(in crate::console) async fn feed(v: Viewer, Query(q): Query<FeedQuery>) -> Response {
    let since = match date_filter("since", &q.since) {
        Ok(s) => s,
        Err(e) => return v.refused("/feed", e),
    };
    let request = AdminRequest::FeedList {
        city: blank(&q.city).map(str::to_string),
        area: blank(&q.area).map(str::to_string),
        since,
    };
    let (entries, banner): (Vec<FeedEntry>, Banner) = match v.ask(request).await {
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
    v.page("/feed", banner, body)
}

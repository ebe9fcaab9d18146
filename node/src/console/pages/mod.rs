//! The console's pages: each one asks the same admin operations the CLI asks
//! (an [`AdminRequest`] to [`crate::control::Control::handle`]) and shows the
//! typed reply as HTML.
//!
//! Everything a peer could have written (names, titles, summaries, links, the
//! preview's text) goes through maud's escaping; links from peers are shown as
//! links only when they are `http:` or `https:` ([`safe_link`]). Forms that
//! change something are POSTs carrying the session's CSRF token; the checks are
//! in [`super::guard`].

mod audit;
mod feed;
mod invites;
mod overview;
mod peers;
mod pending;
mod practices;

pub(super) use audit::*;
pub(super) use feed::*;
pub(super) use invites::*;
pub(super) use overview::*;
pub(super) use peers::*;
pub(super) use pending::*;
pub(super) use practices::*;

use axum::extract::rejection::ExtensionRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
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

/// What every page handler works with: the console's state and the session of
/// the request ([`super::guard`] puts it there before any handler runs).
pub(in crate::console) struct Viewer {
    state: ConsoleState,
    session: Session,
}

impl FromRequestParts<ConsoleState> for Viewer {
    type Rejection = ExtensionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let Extension(session) = Extension::<Session>::from_request_parts(parts, state).await?;
        Ok(Viewer {
            state: state.clone(),
            session,
        })
    }
}

impl Viewer {
    /// Sends a request and reads the reply as `T`, or the refusal's reason.
    async fn ask<T: DeserializeOwned>(&self, request: AdminRequest) -> Result<T, String> {
        let value = self.state.control.handle(request).await.into_result()?;
        serde_json::from_value(value).map_err(|e| format!("unexpected reply: {e}"))
    }

    /// The page `here` showing the reply to `request` with `body`, under
    /// `banner`; or, when the request is refused, the page with only the reason.
    async fn show<T: DeserializeOwned>(
        &self,
        here: &str,
        request: AdminRequest,
        banner: Banner,
        body: impl FnOnce(T) -> Markup,
    ) -> Response {
        match self.ask(request).await {
            Ok(reply) => self.page(here, banner, body(reply)),
            Err(e) => self.refused(here, e),
        }
    }

    /// Carries out a form's request: a notice made of the reply, or the
    /// refusal's reason.
    async fn act<T: DeserializeOwned>(
        &self,
        request: AdminRequest,
        notice: impl FnOnce(T) -> String,
    ) -> Banner {
        match self.ask(request).await {
            Ok(reply) => Banner::Notice(notice(reply)),
            Err(e) => Banner::Error(e),
        }
    }

    /// The page `here` with only an error.
    fn refused(&self, here: &str, error: String) -> Response {
        self.page(here, Banner::Error(error), html! {})
    }

    /// A whole page: navigation, banner, content.
    fn page(&self, here: &str, banner: Banner, body: Markup) -> Response {
        let status = match banner {
            Banner::Error(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        let name = &self.state.control.config.name;
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
                    title { (title) " · labnet · " (name) }
                    link rel="stylesheet" href="/assets/console.css";
                    script src="/assets/console.js" defer {}
                }
                body {
                    header {
                        strong { "labnet · " (name) }
                        @for (path, name) in NAV {
                            a href=(path) class=[(path == here).then_some("here")] { (name) }
                        }
                        form method="post" action="/logout" {
                            (self.csrf())
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
    fn csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }

    /// A POST form to `action` carrying the CSRF token and the hidden
    /// `fields`, with `inner` (its button) after them.
    fn post_form(&self, action: &str, fields: &[(&str, &str)], inner: Markup) -> Markup {
        html! {
            form.inline method="post" action=(action) {
                (self.csrf())
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                (inner)
            }
        }
    }
}

/// The `GET` handlers of the pages that also show a form's outcome: the page
/// without a banner.
macro_rules! get_page {
    ($($(#[$doc:meta])* $handler:ident => $page:ident;)*) => {$(
        $(#[$doc])*
        pub(in crate::console) async fn $handler(v: Viewer) -> Response {
            $page(&v, Banner::None).await
        }
    )*};
}

get_page! {
    /// `GET /pending`.
    pending => pending_page;
    /// `GET /peers`.
    peers => peers_page;
    /// `GET /practices`.
    practices => practices_page;
}

/// A table: a header row of `heads`, then `row` of each item; or `empty`
/// when there are no items.
fn table<T>(
    empty: Markup,
    id: &str,
    heads: &[&str],
    items: &[T],
    row: impl Fn(&T) -> Markup,
) -> Markup {
    html! {
        @if items.is_empty() {
            (empty)
        } @else {
            table id=(id) {
                tr { @for h in heads { th { (h) } } }
                @for i in items { (row(i)) }
            }
        }
    }
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

fn short_heads(heads: &str) -> String {
    heads
        .split(',')
        .map(|h| h.get(..12).unwrap_or(h))
        .collect::<Vec<_>>()
        .join(",")
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A date filter as typed, in Unix seconds (none when left blank); the error
/// names the filter.
fn date_filter(name: &str, typed: &Option<String>) -> Result<Option<i64>, String> {
    blank(typed)
        .map(|s| crate::feed::parse_date(s).map_err(|e| format!("{name} {e}")))
        .transpose()
}

/// A form naming a node.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct NodeForm {
    node: String,
    #[serde(default)]
    role: Option<String>,
}

/// A peer's display name: the approved name, with the NodeId.
fn peer_name(name: Option<&str>, node_id: &str) -> Markup {
    html! {
        @if let Some(n) = name { (n) br; }
        code { (node_id) }
    }
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

//! The console: the local web console, the feed URLs and `/metrics`, over HTTP.
//!
//! Two listeners, both optional and both served by the daemon:
//! - `console.listen` (default loopback): the console pages for a city's data
//!   steward, behind a login token ([`auth`]), and `/metrics` ([`metrics`]),
//!   which needs no token;
//! - `feed.listen` (off by default): the read-only feed URLs ([`feed_http`]).
//!
//! Every page calls the same admin operations as the CLI
//! ([`crate::control::Control::handle`] with an [`crate::api::AdminRequest`]),
//! so the console cannot do anything the CLI cannot, nor do it differently.
//!
//! Map:
//! - [`auth`]: login tokens, sessions, CSRF, `Host` and `Origin` checks;
//! - `pages`: the pages and their forms;
//! - [`metrics`]: the Prometheus text and the event counters;
//! - [`feed_http`]: `/feed.atom`, `/feed.json`, `/feed.csv`.
//!
//! [`guard`] runs before every console request: it checks the `Host`, finds the
//! session, and for a POST checks the `Origin` and the CSRF token (reading the
//! form, bounded by [`FORM_BODY_BYTES_MAX`]) before the handler sees it.

pub mod auth;
pub mod feed_http;
pub mod metrics;
mod pages;

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::warn;

use self::auth::{Access, SESSION_COOKIE};
use self::metrics::MetricsSource;
use crate::control::Control;

/// The largest form a console page sends (a scope of many NodeIds is the
/// longest); anything larger is refused with `413` before it is read whole.
pub const FORM_BODY_BYTES_MAX: usize = 16 * 1024;

/// The stylesheet, embedded: no CDN, no build step.
const CSS: &str = include_str!("assets/console.css");
/// The one script (the invite's Copy button), embedded.
const JS: &str = include_str!("assets/console.js");

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    /// The admin operations.
    pub control: Control,
    /// Login tokens and sessions.
    pub access: Access,
    /// What `/metrics` reads.
    pub metrics: MetricsSource,
}

/// The console's router: pages, login, assets and `/metrics`.
pub fn router(state: ConsoleState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/pending", get(pages::pending))
        .route("/pending/approve", post(pages::approve))
        .route("/pending/decline", post(pages::decline))
        .route("/peers", get(pages::peers))
        .route(
            "/peers/revoke",
            get(pages::revoke_confirm).post(pages::revoke),
        )
        .route("/invites", get(pages::invites))
        .route("/invites/create", post(pages::invite_create))
        .route("/invites/revoke", post(pages::invite_revoke))
        .route("/practices", get(pages::practices))
        .route("/practices/preview", get(pages::preview))
        .route("/practices/share", post(pages::share))
        .route("/practices/unshare", post(pages::unshare))
        .route("/audit", get(pages::audit))
        .route("/feed", get(pages::feed))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .merge(pages)
        .route("/login", get(login))
        .route("/metrics", get(metrics_text))
        .route(
            "/assets/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn_with_state(state.clone(), host_check))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(FORM_BODY_BYTES_MAX))
        .with_state(state)
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// Headers on every answer: no framing, no sniffing, no caching, no referrer
/// to other sites, scripts and styles only from the console itself.
async fn security_headers(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: with it, browsers send `Origin: null` on the
        // console's own forms, and the Origin check would refuse them.
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Refuses a `Host` that is not this console (DNS rebinding), on every path.
async fn host_check(
    State(state): State<ConsoleState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let host = header_str(request.headers(), header::HOST).unwrap_or("");
    if !state.access.host_allowed(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this console answers only to its own address (127.0.0.1 or localhost)\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// A form's CSRF field; the handler's own form type reads the rest.
#[derive(Debug, Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// Authenticates a console request; for a POST also checks `Origin` and the
/// CSRF token. Puts the session into the request for the handler.
async fn guard(State(state): State<ConsoleState>, request: Request<Body>, next: Next) -> Response {
    let session = header_str(request.headers(), header::COOKIE)
        .and_then(|c| auth::cookie(c, SESSION_COOKIE))
        .and_then(|id| state.access.session(id));
    let Some(session) = session else {
        return (StatusCode::UNAUTHORIZED, pages::login_needed()).into_response();
    };
    let mut request = request;
    if request.method() == Method::POST {
        let host = header_str(request.headers(), header::HOST).unwrap_or("");
        let origin = header_str(request.headers(), header::ORIGIN);
        if !auth::origin_matches(origin, host) {
            return (
                StatusCode::FORBIDDEN,
                "refused: this form did not come from the console's own page\n",
            )
                .into_response();
        }
        let (parts, body) = request.into_parts();
        let bytes = match to_bytes(body, FORM_BODY_BYTES_MAX).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("refused: a form is at most {FORM_BODY_BYTES_MAX} bytes\n"),
                )
                    .into_response()
            }
        };
        let csrf = axum::extract::Query::<CsrfField>::try_from_uri(
            &format!("/?{}", String::from_utf8_lossy(&bytes))
                .parse()
                .unwrap_or_else(|_| axum::http::Uri::from_static("/")),
        )
        .ok()
        .and_then(|q| q.0.csrf);
        if !csrf.is_some_and(|c| auth::csrf_matches(&session, &c)) {
            return (
                StatusCode::FORBIDDEN,
                "refused: the form's CSRF token is missing or wrong; reload the page and try again\n",
            )
                .into_response();
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// `?token=` of the login link.
#[derive(Debug, Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

/// `GET /login?token=`: trades a fresh token for a session cookie.
async fn login(State(state): State<ConsoleState>, Query(q): Query<LoginQuery>) -> Response {
    match q.token.as_deref().and_then(|t| state.access.log_in(t)) {
        Some(id) => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&id)) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        None => (StatusCode::UNAUTHORIZED, pages::login_needed()).into_response(),
    }
}

/// `POST /logout`.
async fn logout(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(id) =
        header_str(&headers, header::COOKIE).and_then(|c| auth::cookie(c, SESSION_COOKIE))
    {
        state.access.log_out(id);
    }
    let mut response = (StatusCode::OK, pages::login_needed()).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("labnet_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

/// `GET /metrics`: no token, read-only.
async fn metrics_text(State(state): State<ConsoleState>) -> Response {
    match state.metrics.render().await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            warn!(error = %e, "rendering /metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, with client
/// addresses (the feed's rate limit needs them).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let stop = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "an HTTP listener stopped");
    }
}

/// Binds a TCP listener for the console or the feed URLs.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

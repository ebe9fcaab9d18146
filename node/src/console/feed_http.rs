//! The feed URLs: `GET /feed.atom`, `/feed.json` and `/feed.csv`, read-only, on
//! `feed.listen`, an address of its own (a subscriber node gives its members
//! this URL; the console stays on loopback).
//!
//! The query takes the CLI's filters (`city`, `area`, `since`) with the CLI's
//! validation; a bad one gets a `400` that says why. The body is exactly what
//! `labnet feed export` writes: the entries come from the same admin operation
//! (`FeedList`) and the same writers in [`crate::feed`]. Responses carry an
//! `ETag` (a hash of the body) and a `Last-Modified` (the newest entry), and a
//! reader that already has this version gets `304 Not Modified`.
//!
//! Limits: a per-address rate limit ([`FEED_BURST`], [`FEED_REFILL_PER_SEC`]),
//! a bounded query string ([`FEED_QUERY_BYTES_MAX`]) and no request bodies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::{AdminRequest, FeedEntry};
use crate::control::Control;
use crate::feed::{to_atom, to_csv, to_json_feed, FeedInfo};
use crate::trust::rate_limit::RateLimiter;

/// Requests one address may make at once: a feed reader polls a few feeds.
pub const FEED_BURST: u32 = 30;

/// Requests per second an address regains: one a second is far more than any
/// feed reader polls.
pub const FEED_REFILL_PER_SEC: f64 = 1.0;

/// Addresses the rate limiter tracks at once, so a scan of many addresses
/// cannot grow memory.
pub const FEED_CLIENTS_MAX: usize = 4096;

/// The longest query string read: three filters fit with room to spare.
pub const FEED_QUERY_BYTES_MAX: usize = 1024;

/// The three formats, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// Atom 1.0.
    Atom,
    /// JSON Feed 1.1.
    Json,
    /// CSV.
    Csv,
}

impl FeedFormat {
    /// The media type the response is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            FeedFormat::Atom => "application/atom+xml; charset=utf-8",
            FeedFormat::Json => "application/feed+json; charset=utf-8",
            FeedFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The filters as a query string gives them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    city: Option<String>,
    area: Option<String>,
    since: Option<String>,
}

/// What the feed server needs.
#[derive(Clone)]
struct FeedState {
    control: Control,
    info: Arc<FeedInfo>,
    limiter: Arc<Mutex<RateLimiter>>,
}

/// The feed URLs' router. Serve it with client addresses
/// (`into_make_service_with_connect_info::<SocketAddr>`), which the rate limit
/// needs.
pub fn router(control: Control) -> Router {
    let info = Arc::new(FeedInfo::for_node(&control.node_id.to_string()));
    let state = FeedState {
        control,
        info,
        limiter: Arc::new(Mutex::new(RateLimiter::new(
            FEED_BURST,
            FEED_REFILL_PER_SEC,
            FEED_CLIENTS_MAX,
        ))),
    };
    Router::new()
        .route("/feed.atom", get(atom))
        .route("/feed.json", get(json))
        .route("/feed.csv", get(csv))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: this address serves /feed.atom, /feed.json and /feed.csv\n",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(0))
        .with_state(state)
}

async fn rate_limit(
    State(state): State<FeedState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let allowed = state
        .limiter
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .allow(client.ip(), Instant::now());
    if !allowed {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address: poll the feed less often\n",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    }
    next.run(request).await
}

async fn atom(state: State<FeedState>, q: RawQuery, h: HeaderMap) -> Response {
    serve(state, q, h, FeedFormat::Atom).await
}

async fn json(state: State<FeedState>, q: RawQuery, h: HeaderMap) -> Response {
    serve(state, q, h, FeedFormat::Json).await
}

async fn csv(state: State<FeedState>, q: RawQuery, h: HeaderMap) -> Response {
    serve(state, q, h, FeedFormat::Csv).await
}

fn bad_request(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}

/// The filters of a query string, validated as the CLI validates its flags.
pub fn parse_query(query: Option<&str>) -> Result<AdminRequest, String> {
    let query = query.unwrap_or("");
    if query.len() > FEED_QUERY_BYTES_MAX {
        return Err(format!(
            "the query is longer than {FEED_QUERY_BYTES_MAX} bytes"
        ));
    }
    let q: FeedQuery = serde_urlencoded_query(query)?;
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let area = blank(q.area);
    if let Some(a) = &area {
        if a != "education" && a != "care" {
            return Err(format!("area '{a}': use education or care"));
        }
    }
    let since = blank(q.since)
        .map(|s| crate::feed::parse_date(&s).map_err(|e| format!("since {e}")))
        .transpose()?;
    Ok(AdminRequest::FeedList {
        city: blank(q.city),
        area,
        since,
    })
}

fn serde_urlencoded_query(query: &str) -> Result<FeedQuery, String> {
    axum::extract::Query::<FeedQuery>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| "the query is not a valid URI query".to_string())?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        format!(
            "{}: the parameters are city, area (education or care) and since (YYYY-MM-DD)",
            e.body_text()
        )
    })
}

async fn serve(
    State(state): State<FeedState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    format: FeedFormat,
) -> Response {
    let request = match parse_query(query.as_deref()) {
        Ok(r) => r,
        Err(reason) => return bad_request(reason),
    };
    let entries: Vec<FeedEntry> = match state.control.handle(request).await.into_result() {
        Ok(v) => match serde_json::from_value(v) {
            Ok(e) => e,
            Err(e) => return internal(e.to_string()),
        },
        Err(reason) => return bad_request(reason),
    };
    let body = match format {
        FeedFormat::Atom => to_atom(&state.info, &entries),
        FeedFormat::Json => to_json_feed(&state.info, &entries),
        FeedFormat::Csv => to_csv(&entries),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return internal(e.to_string()),
    };
    let etag = format!("\"{}\"", hex16(&Sha256::digest(body.as_bytes())));
    let newest = entries.iter().map(|e| e.updated).max().unwrap_or(0).max(0);
    let last_modified = UNIX_EPOCH + Duration::from_secs(newest.unsigned_abs());
    let not_modified = is_not_modified(&headers, &etag, last_modified);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(last_modified)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn internal(reason: String) -> Response {
    tracing::warn!(error = %reason, "serving the feed failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the feed could not be made; the node's log says why\n",
    )
        .into_response()
}

/// The first 16 bytes of a digest, hex.
fn hex16(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// RFC 9110's order: `If-None-Match` when present, else `If-Modified-Since`.
fn is_not_modified(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else {
            return false;
        };
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| last_modified <= since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_validated_as_the_cli_does() {
        assert_eq!(
            parse_query(Some("city=Modena&area=care&since=2026-01-01")).unwrap(),
            AdminRequest::FeedList {
                city: Some("Modena".into()),
                area: Some("care".into()),
                since: Some(1_767_225_600),
            }
        );
        assert_eq!(
            parse_query(None).unwrap(),
            AdminRequest::FeedList {
                city: None,
                area: None,
                since: None
            }
        );
        let e = parse_query(Some("area=sport")).unwrap_err();
        assert!(e.contains("education or care"), "{e}");
        let e = parse_query(Some("since=yesterday")).unwrap_err();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        let e = parse_query(Some("town=x")).unwrap_err();
        assert!(e.contains("town"), "{e}");
        let long = format!("city={}", "x".repeat(FEED_QUERY_BYTES_MAX));
        assert!(parse_query(Some(&long)).is_err());
    }

    #[test]
    fn conditional_get_follows_rfc_9110_order() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert!(!is_not_modified(&h, "\"a\"", t));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"b\", W/\"a\""),
        );
        assert!(is_not_modified(&h, "\"a\"", t));
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap(),
        );
        assert!(!is_not_modified(&h, "\"c\"", t), "If-None-Match wins");
        h.remove(header::IF_NONE_MATCH);
        assert!(is_not_modified(&h, "\"c\"", t));
        assert!(!is_not_modified(&h, "\"c\"", t + Duration::from_secs(1)));
    }
}

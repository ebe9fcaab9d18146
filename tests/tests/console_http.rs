//! The console, the feed URLs and `/metrics` over real HTTP: who is let in,
//! forged and oversized requests, escaping of peers' text, conditional GET of
//! the feeds (parsed with `feed-rs`, a parser labnet did not write) and the
//! metrics after a real sync (parsed with `prometheus-parse`).

mod console_common;

use std::time::Duration;

use console_common::*;
use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::console::FORM_BODY_BYTES_MAX;
use labnet_node::daemon::Daemon;
use labnet_tests::nodes::{admin, eventually, feed_entries, share};
use reqwest::header::{
    CONTENT_TYPE, COOKIE, ETAG, HOST, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, ORIGIN,
    SET_COOKIE,
};
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A GET of `url`, without a session.
async fn get(url: impl reqwest::IntoUrl) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// The answer's `Content-Type`.
fn content_type(r: &reqwest::Response) -> &str {
    r.headers()[CONTENT_TYPE].to_str().unwrap()
}

/// The text of the answer to `request`.
async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// A logged-in console: its address, the session cookie and the CSRF token.
struct Console {
    base: String,
    cookie: String,
    csrf: String,
}

impl Console {
    /// Logs in to `daemon`'s console with a fresh token.
    async fn log_in(daemon: &Daemon) -> Console {
        let url = daemon.console_login_url().unwrap();
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        let mut console = Console {
            base: base(daemon),
            cookie: set_cookie.split(';').next().unwrap().to_string(),
            csrf: String::new(),
        };
        let page = console.page("/").await;
        console.csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a CSRF field on the page")
            .to_string();
        console
    }

    /// A GET of `path` with the session cookie.
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
    }

    /// The page at `path`, as HTML.
    async fn page(&self, path: &str) -> String {
        text_of(self.get(path)).await
    }

    /// A form POST of `body` to `path` with the session cookie; `origin` is
    /// the `Origin` header, if any.
    fn post(&self, path: &str, origin: Option<&str>, body: String) -> reqwest::RequestBuilder {
        let r = client()
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        match origin {
            Some(o) => r.header(ORIGIN, o),
            None => r,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_strangers_forged_and_oversized_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = knocking(tmp.path(), "Modena").await;
    let base = base(&a);

    // No session: refused, on every page.
    for path in ["/", "/peers", "/pending", "/audit", "/feed", "/practices"] {
        let r = get(format!("{base}{path}")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = get(format!("{base}/login?token=0000")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a made-up token");
    // A token works once.
    let url = a.console_login_url().unwrap();
    assert_eq!(get(&url).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get(&url).await.status(),
        StatusCode::UNAUTHORIZED,
        "a used token"
    );

    let console = Console::log_in(&a).await;
    let origin = format!("http://{}", a.console_addr().unwrap());
    let form = |csrf: &str| format!("csrf={csrf}&node={}", b.node_id());
    let decline = async |origin: Option<&str>, body: String| {
        console
            .post("/pending/decline", origin, body)
            .send()
            .await
            .unwrap()
    };

    // Wrong or missing CSRF token; cross-origin, or no Origin at all, with the
    // right token; oversized.
    let oversized = format!(
        "{}&pad={}",
        form(&console.csrf),
        "x".repeat(FORM_BODY_BYTES_MAX)
    );
    for (what, origin, body, status) in [
        (
            "a wrong token",
            Some(origin.as_str()),
            form("wrong"),
            StatusCode::FORBIDDEN,
        ),
        (
            "no token",
            Some(&origin),
            format!("node={}", b.node_id()),
            StatusCode::FORBIDDEN,
        ),
        (
            "another origin",
            Some("http://evil.example"),
            form(&console.csrf),
            StatusCode::FORBIDDEN,
        ),
        (
            "no origin",
            None,
            form(&console.csrf),
            StatusCode::FORBIDDEN,
        ),
        (
            "oversized",
            Some(&origin),
            oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        assert_eq!(decline(origin, body).await.status(), status, "{what}");
    }
    // A Host that is not the console (DNS rebinding).
    let r = console
        .get("/")
        .header(HOST, "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    // Nothing above changed anything: the node is still pending.
    let pending = admin(&a, AdminRequest::PeersPending).await.unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");

    // The real thing.
    let r = decline(Some(&origin), form(&console.csrf)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Declined"));
    let pending = admin(&a, AdminRequest::PeersPending).await.unwrap();
    assert!(pending.as_array().unwrap().is_empty(), "{pending}");

    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_text_is_escaped_and_only_http_links_are_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = knocking(tmp.path(), "<script>alert('name')</script>").await;
    let console = Console::log_in(&a).await;
    let pending = console.page("/pending").await;
    assert!(
        !pending.contains("<script>alert") && pending.contains("&lt;script&gt;"),
        "{pending}"
    );
    approve(&a, &b).await;
    import_practice(
        &b,
        "evil",
        "<script>alert(1)</script> club",
        "javascript:alert(1)",
    )
    .await;
    import_practice(&b, "fine", "A fine club", "https://example.org/club").await;
    for id in ["evil", "fine"] {
        share(&b, id, "partners").await;
    }
    assert!(
        eventually(CONVERGE, async || has_entry(&a, "A fine club").await
            && has_entry(&a, "<script>alert(1)</script> club").await)
        .await
    );
    let feed = console.page("/feed").await;
    assert!(!feed.contains("<script>alert"), "{feed}");
    assert!(
        feed.contains("&lt;script&gt;alert(1)&lt;/script&gt; club"),
        "{feed}"
    );
    assert!(!feed.contains("href=\"javascript:"), "{feed}");
    assert!(feed.contains("javascript:alert(1)"), "shown, as text");
    assert!(feed.contains("href=\"https://example.org/club\""), "{feed}");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_urls_serve_the_export_with_conditional_get_and_say_why_on_400() {
    let tmp = tempfile::tempdir().unwrap();
    let a = node(tmp.path(), "Fuenlabrada", Role::Partner).await;
    import_practice(&a, "club", "Job club", "https://example.org/club").await;
    share(&a, "club", "public").await;
    let feed = format!("http://{}", a.feed_addr().expect("feed URLs on"));

    let r = get(format!("{feed}/feed.atom")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        content_type(&r).starts_with("application/atom+xml"),
        "{}",
        content_type(&r)
    );
    let etag = r.headers()[ETAG].to_str().unwrap().to_string();
    let modified = r.headers()[LAST_MODIFIED].to_str().unwrap().to_string();
    let atom = r.bytes().await.unwrap();
    let parsed = feed_rs::parser::parse(&atom[..]).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    let entry = &parsed.entries[0];
    assert_eq!(entry.title.as_ref().unwrap().content, "Job club");
    assert!(!String::from_utf8_lossy(&atom).contains("Pérez"));

    // What `feed export` writes, byte for byte.
    let entries = feed_entries(&a).await;
    let info = labnet_node::feed::FeedInfo::for_node(&a.node_id().to_string());
    assert_eq!(
        String::from_utf8_lossy(&atom),
        labnet_node::feed::to_atom(&info, &entries).unwrap()
    );

    for (header, value, status) in [
        (IF_NONE_MATCH, etag.as_str(), StatusCode::NOT_MODIFIED),
        (
            IF_MODIFIED_SINCE,
            modified.as_str(),
            StatusCode::NOT_MODIFIED,
        ),
        (IF_NONE_MATCH, "\"other\"", StatusCode::OK),
    ] {
        let request = client()
            .get(format!("{feed}/feed.atom"))
            .header(header.clone(), value);
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status, "{header}: {value}");
        if status == StatusCode::NOT_MODIFIED {
            assert!(r.bytes().await.unwrap().is_empty(), "{header}");
        }
    }

    let r = get(format!("{feed}/feed.json?area=education&city=fuenlabrada")).await;
    assert!(
        content_type(&r).starts_with("application/feed+json"),
        "{}",
        content_type(&r)
    );
    let parsed = feed_rs::parser::parse(&r.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    let r = get(format!("{feed}/feed.json?area=care")).await;
    let parsed = feed_rs::parser::parse(&r.bytes().await.unwrap()[..]).unwrap();
    assert!(parsed.entries.is_empty(), "the filter applies");
    let r = get(format!("{feed}/feed.csv")).await;
    assert!(
        content_type(&r).starts_with("text/csv"),
        "{}",
        content_type(&r)
    );
    assert_eq!(
        r.text().await.unwrap(),
        labnet_node::feed::to_csv(&entries).unwrap()
    );

    for (query, why) in [
        ("area=sport", "education or care"),
        ("since=last-week", "YYYY-MM-DD"),
        ("town=Modena", "town"),
    ] {
        let r = get(format!("{feed}/feed.atom?{query}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = r.text().await.unwrap();
        assert!(text.contains(why), "{query}: {text}");
    }
    // The console is not on the feed address, and the feed not on the console's.
    let r = get(format!("{feed}/")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_sync_count_what_the_node_holds_and_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = knocking(tmp.path(), "Modena").await;
    approve(&a, &b).await;
    import_practice(&a, "club", "Job club", "https://example.org/club").await;
    share(&a, "club", "partners").await;
    assert!(eventually(CONVERGE, async || has_entry(&b, "Job club").await).await);

    // No token needed.
    let text = text_of(client().get(format!("{}/metrics", base(&b)))).await;
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .sum()
    };
    assert_eq!(value("labnet_peers_connected", None), 1.0, "{text}");
    assert_eq!(
        value("labnet_peers", Some(("state", "approved"))),
        1.0,
        "{text}"
    );
    assert_eq!(value("labnet_pending_requests", None), 0.0, "{text}");
    assert!(
        value("labnet_publications", Some(("kind", "held"))) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value("labnet_publications", Some(("kind", "own"))),
        0.0,
        "{text}"
    );
    assert!(
        value(
            "labnet_peer_connection_bytes",
            Some(("direction", "received"))
        ) > 0.0,
        "{text}"
    );
    assert!(
        value("labnet_peer_connection_bytes", Some(("direction", "sent"))) > 0.0,
        "{text}"
    );
    assert!(value("labnet_store_bytes", None) > 0.0, "{text}");
    // The origin's disclosure log: one share, at least one version sent.
    let text_a = text_of(client().get(format!("{}/metrics", base(&a)))).await;
    assert!(
        text_a.contains("labnet_disclosures{action=\"share\"} 1"),
        "{text_a}"
    );
    assert!(
        text_a.contains("labnet_disclosures{action=\"sent\"}"),
        "{text_a}"
    );
    b.shutdown().await;
    a.shutdown().await;
}

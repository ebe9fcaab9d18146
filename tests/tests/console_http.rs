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
use labnet_tests::nodes::{admin, eventually};
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

/// Logs in with a fresh token; returns the cookie header and the CSRF token.
async fn log_in(daemon: &labnet_node::daemon::Daemon) -> (String, String) {
    let url = daemon.console_login_url().unwrap();
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = client()
        .get(base(daemon))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF field on the page")
        .to_string();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_strangers_forged_and_oversized_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let a = node(tmp.path(), "Fuenlabrada", Role::Partner).await;
    let b = node(tmp.path(), "Modena", Role::Partner).await;
    knock(&b, &a).await;
    let base = base(&a);
    let http = client();

    // No session: refused, on every page.
    for path in ["/", "/peers", "/pending", "/audit", "/feed", "/practices"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = http
        .get(format!("{base}/login?token=0000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a made-up token");
    // A token works once.
    let url = a.console_login_url().unwrap();
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a used token"
    );

    let (cookie, csrf) = log_in(&a).await;
    let host = a.console_addr().unwrap().to_string();
    let origin = format!("http://{host}");
    let decline = format!("{base}/pending/decline");
    let form = |csrf: &str| format!("csrf={csrf}&node={}", b.node_id());

    // Wrong or missing CSRF token.
    for body in [form("wrong"), format!("node={}", b.node_id())] {
        let r = http
            .post(&decline)
            .header(COOKIE, &cookie)
            .header(ORIGIN, &origin)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // Cross-origin, or no Origin at all, with the right token.
    for o in [Some("http://evil.example"), None] {
        let mut r = http
            .post(&decline)
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&csrf));
        if let Some(o) = o {
            r = r.header(ORIGIN, o);
        }
        assert_eq!(r.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    // A Host that is not the console (DNS rebinding).
    let r = http
        .get(&base)
        .header(COOKIE, &cookie)
        .header(HOST, "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    // Oversized.
    let r = http
        .post(&decline)
        .header(COOKIE, &cookie)
        .header(ORIGIN, &origin)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "{}&pad={}",
            form(&csrf),
            "x".repeat(FORM_BODY_BYTES_MAX)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing above changed anything: the node is still pending.
    let pending = admin(&a, AdminRequest::PeersPending).await.unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");

    // The real thing.
    let r = http
        .post(&decline)
        .header(COOKIE, &cookie)
        .header(ORIGIN, &origin)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&csrf))
        .send()
        .await
        .unwrap();
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
    let a = node(tmp.path(), "Fuenlabrada", Role::Partner).await;
    let b = node(tmp.path(), "<script>alert('name')</script>", Role::Partner).await;
    knock(&b, &a).await;
    let (cookie, _) = log_in(&a).await;
    let pending = client()
        .get(format!("{}/pending", base(&a)))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !pending.contains("<script>alert") && pending.contains("&lt;script&gt;"),
        "{pending}"
    );
    admin(
        &a,
        AdminRequest::PeersApprove {
            node_id: b.node_id().to_string(),
            role: Some(Role::Partner),
        },
    )
    .await
    .unwrap();
    import_practice(
        &b,
        "evil",
        "<script>alert(1)</script> club",
        "javascript:alert(1)",
    )
    .await;
    import_practice(&b, "fine", "A fine club", "https://example.org/club").await;
    for id in ["evil", "fine"] {
        admin(
            &b,
            AdminRequest::Share {
                practice_id: id.into(),
                scope: "partners".into(),
            },
        )
        .await
        .unwrap();
    }
    assert!(
        eventually(CONVERGE, async || has_entry(&a, "A fine club").await
            && has_entry(&a, "<script>alert(1)</script> club").await)
        .await
    );
    let feed = client()
        .get(format!("{}/feed", base(&a)))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    admin(
        &a,
        AdminRequest::Share {
            practice_id: "club".into(),
            scope: "public".into(),
        },
    )
    .await
    .unwrap();
    let feed = format!("http://{}", a.feed_addr().expect("feed URLs on"));
    let http = client();

    let r = http.get(format!("{feed}/feed.atom")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));
    let etag = r.headers()[ETAG].to_str().unwrap().to_string();
    let modified = r.headers()[LAST_MODIFIED].to_str().unwrap().to_string();
    let atom = r.bytes().await.unwrap();
    let parsed = feed_rs::parser::parse(&atom[..]).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    let entry = &parsed.entries[0];
    assert_eq!(entry.title.as_ref().unwrap().content, "Job club");
    assert!(!String::from_utf8_lossy(&atom).contains("Pérez"));

    // What `feed export` writes, byte for byte.
    let entries = labnet_tests::nodes::feed_entries(&a).await;
    let info = labnet_node::feed::FeedInfo::for_node(&a.node_id().to_string());
    assert_eq!(
        String::from_utf8_lossy(&atom),
        labnet_node::feed::to_atom(&info, &entries).unwrap()
    );

    for (header, value) in [
        (IF_NONE_MATCH, etag.as_str()),
        (IF_MODIFIED_SINCE, modified.as_str()),
    ] {
        let r = http
            .get(format!("{feed}/feed.atom"))
            .header(header.clone(), value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{header}");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = http
        .get(format!("{feed}/feed.atom"))
        .header(IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = http
        .get(format!("{feed}/feed.json?area=education&city=fuenlabrada"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/feed+json"));
    let parsed = feed_rs::parser::parse(&r.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    let r = http
        .get(format!("{feed}/feed.json?area=care"))
        .send()
        .await
        .unwrap();
    let parsed = feed_rs::parser::parse(&r.bytes().await.unwrap()[..]).unwrap();
    assert!(parsed.entries.is_empty(), "the filter applies");
    let r = http.get(format!("{feed}/feed.csv")).send().await.unwrap();
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(
        r.text().await.unwrap(),
        labnet_node::feed::to_csv(&entries).unwrap()
    );

    for (query, why) in [
        ("area=sport", "education or care"),
        ("since=last-week", "YYYY-MM-DD"),
        ("town=Modena", "town"),
    ] {
        let r = http
            .get(format!("{feed}/feed.atom?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = r.text().await.unwrap();
        assert!(text.contains(why), "{query}: {text}");
    }
    // The console is not on the feed address, and the feed not on the console's.
    let r = http.get(format!("{feed}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_sync_count_what_the_node_holds_and_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let a = node(tmp.path(), "Fuenlabrada", Role::Partner).await;
    let b = node(tmp.path(), "Modena", Role::Partner).await;
    knock(&b, &a).await;
    admin(
        &a,
        AdminRequest::PeersApprove {
            node_id: b.node_id().to_string(),
            role: Some(Role::Partner),
        },
    )
    .await
    .unwrap();
    import_practice(&a, "club", "Job club", "https://example.org/club").await;
    admin(
        &a,
        AdminRequest::Share {
            practice_id: "club".into(),
            scope: "partners".into(),
        },
    )
    .await
    .unwrap();
    assert!(eventually(CONVERGE, async || has_entry(&b, "Job club").await).await);

    // No token needed.
    let text = client()
        .get(format!("{}/metrics", base(&b)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let text_a = client()
        .get(format!("{}/metrics", base(&a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

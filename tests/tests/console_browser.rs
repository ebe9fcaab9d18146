//! The console in a real browser: headless Chromium (Debian's `chromium`)
//! driven through WebDriver (`chromedriver`, with `fantoccini`), against real
//! daemons in this process.
//!
//! One walk through what a data steward does: refused without the token, log
//! in with it, approve a pending city and see it connected, preview a practice
//! whose description names a roster member and see the removal highlighted,
//! share it and find it at the peer, filter the disclosure log by that peer,
//! create an invite, revoke the peer. A screenshot of each page goes to a
//! folder under the system's temp dir (printed), never into the repository.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the test fails and
//! says how to install them (`.ci/run` installs them).

mod console_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use console_common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use labnet_node::api::AdminRequest;
use labnet_tests::nodes::{admin, eventually};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long one page may take to show what the test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// chromedriver, killed when the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> (Driver, u16) {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: the browser tests need Debian's Chromium and its driver; \
             install them with `apt-get update && apt-get install -y chromium chromium-driver` \
             (.ci/run does this)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

async fn browser(port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// Where the screenshots go: outside the repository, kept after the test so
/// they can be looked at.
fn shots_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("labnet-console-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The text of the element `css` matches.
async fn text_of(c: &Client, css: &str) -> String {
    element(c, css).await.text().await.unwrap()
}

/// The element `css` matches, waiting up to [`PAGE_WAIT`] for it: after a
/// click that follows a link or posts a form, the page it loads may not be
/// there yet (each caller asks for an element only that page has).
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css} within {PAGE_WAIT:?}: {e}"))
}

/// Clicks the element `css` matches.
async fn click(c: &Client, css: &str) {
    element(c, css).await.click().await.unwrap();
}

/// Reloads `url` until `css` matches an element whose text contains `text`.
async fn wait_text(c: &Client, url: &str, css: &str, text: &str) -> String {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        c.goto(url).await.unwrap();
        if let Ok(e) = c.find(Locator::Css(css)).await {
            let t = e.text().await.unwrap_or_default();
            if t.contains(text) {
                return t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url}: no {css} with {text:?} in:\n{}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page's notice banner, once the page a form was posted to has loaded;
/// the page's text when there is none.
async fn notice_of(c: &Client) -> String {
    let found = c
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css(".notice"))
        .await;
    match found {
        Ok(e) => e.text().await.unwrap(),
        Err(_) => panic!(
            "no notice on {}:\n{}",
            c.current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default(),
            c.source().await.unwrap_or_default()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_steward_approves_previews_shares_audits_and_revokes_in_a_browser() {
    let (_driver, port) = start_driver();
    let tmp = tempfile::tempdir().unwrap();
    let shots = shots_dir();
    println!("screenshots in {}", shots.display());
    let (a, b) = knocking(tmp.path(), "Modena").await;
    import_practice(
        &a,
        "fuenlabrada-club",
        "Job club",
        "https://example.org/club",
    )
    .await;
    let c = browser(port, &tmp.path().join("profile")).await;
    let base_a = base(&a);
    let b_id = b.node_id().to_string();

    // Refused without the token.
    c.goto(&base_a).await.unwrap();
    let text = text_of(&c, "h1").await;
    assert!(text.contains("Log in"), "{text}");
    assert!(c.find(Locator::Css("#peers")).await.is_err());
    shot(&c, &shots, "01-refused").await;

    // Log in with the token.
    c.goto(&a.console_login_url().unwrap()).await.unwrap();
    let text = text_of(&c, "h1").await;
    assert_eq!(text, "Overview");
    shot(&c, &shots, "02-overview").await;

    // Approve the pending node and see it connected.
    c.goto(&format!("{base_a}/pending")).await.unwrap();
    shot(&c, &shots, "03-pending").await;
    click(&c, &format!("tr[data-node='{b_id}'] button.approve")).await;
    let notice = notice_of(&c).await;
    assert!(
        notice.contains("Approved") && notice.contains("partner"),
        "{notice}"
    );
    // `span.yes`: "not connected" contains "connected" too.
    let cell = format!("tr[data-peer='{b_id}'] td.connected span.yes");
    let t = wait_text(&c, &base_a, &cell, "connected").await;
    assert_eq!(t, "connected");
    shot(&c, &shots, "04-overview-connected").await;

    // Preview: the roster name removed, highlighted with its reason.
    c.goto(&format!("{base_a}/practices")).await.unwrap();
    shot(&c, &shots, "05-practices").await;
    click(&c, "tr[data-practice='fuenlabrada-club'] a.preview").await;
    let preview = text_of(&c, "#preview").await;
    assert!(
        !preview.contains(ROSTER_NAME) && !preview.contains("Pérez"),
        "{preview}"
    );
    let changed = c
        .find(Locator::Css("#preview li.changed"))
        .await
        .expect("a highlighted field in the preview");
    let changed = changed.text().await.unwrap();
    assert!(
        changed.contains("description") && changed.contains("scrubbed"),
        "{changed}"
    );
    let report = text_of(&c, "#report").await;
    assert!(
        report.contains("contacts") && report.contains("dropped"),
        "{report}"
    );
    shot(&c, &shots, "06-preview").await;

    // Share it, and find it at the peer.
    click(&c, "#share").await;
    let notice = notice_of(&c).await;
    assert!(notice.contains("Shared"), "{notice}");
    assert!(eventually(CONVERGE, async || has_entry(&b, "Job club").await).await);
    // The peer's console, on `localhost` so its cookie does not replace ours.
    let login_b = b
        .console_login_url()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    c.goto(&login_b).await.unwrap();
    let base_b = base(&b).replace("127.0.0.1", "localhost");
    let entry = wait_text(
        &c,
        &format!("{base_b}/feed"),
        "article.feed-entry",
        "Job club",
    )
    .await;
    assert!(!entry.contains("Pérez"), "{entry}");
    shot(&c, &shots, "07-peer-feed").await;

    // The disclosure log, filtered by that peer.
    c.goto(&format!("{base_a}/audit?peer={b_id}"))
        .await
        .unwrap();
    let rows = wait_text(&c, &format!("{base_a}/audit?peer={b_id}"), "#audit", "sent").await;
    assert!(rows.contains("Modena"), "{rows}");
    assert!(
        !rows.contains("share\n") && !rows.contains(" share "),
        "only what went to the peer: {rows}"
    );
    shot(&c, &shots, "08-audit-by-peer").await;

    // An invite to copy.
    c.goto(&format!("{base_a}/invites")).await.unwrap();
    click(&c, "#create-invite").await;
    let token = element(&c, "#token").await.prop("value").await.unwrap();
    assert!(token.unwrap_or_default().starts_with("labnet-invite:"));
    shot(&c, &shots, "09-invite").await;

    // Revoke, with a confirmation step.
    c.goto(&format!("{base_a}/peers")).await.unwrap();
    click(&c, &format!("tr[data-peer='{b_id}'] a.revoke")).await;
    shot(&c, &shots, "10-revoke-confirm").await;
    let listed = admin(&a, AdminRequest::PeersList).await.unwrap();
    assert_eq!(
        listed[0]["state"], "approved",
        "nothing happens before confirming"
    );
    click(&c, "#confirm-revoke").await;
    // The confirmation posts and the peers page loads again: wait for it
    // rather than read the page that is being replaced.
    let state = c
        .wait()
        .for_element(Locator::Css(&format!("tr[data-peer='{b_id}'] td.state")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "revoked");
    shot(&c, &shots, "11-revoked").await;
    assert!(
        eventually(CONVERGE, async || !a
            .context()
            .transport
            .is_connected(b.node_id()))
        .await
    );

    c.close().await.unwrap();
    b.shutdown().await;
    a.shutdown().await;
}

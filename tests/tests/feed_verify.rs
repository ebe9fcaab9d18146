//! `labnet feed verify` as a reader of an exported feed runs it: on the file
//! alone (no node, no data directory), on a good export, a tampered one, with
//! pins, and on files that are not feeds.

use std::path::Path;

use labnet_protocol::NodeId;
use labnet_tests::{json_of, labnet_ok, partner_practices, run_labnet, stderr, stdout, write_file};

/// A stopped node that shared two practices publicly, with its exports.
struct Exported {
    node_id: String,
    ids: Vec<String>,
    titles: Vec<String>,
    atom: String,
    json: String,
}

fn export(dir: &Path) -> Exported {
    let init = json_of(
        dir,
        &[
            "init",
            "--name",
            "Fuenlabrada",
            "--listen",
            "127.0.0.1:0",
            "--json",
        ],
    );
    let node_id = init["node_id"].as_str().unwrap().to_string();
    labnet_ok(dir, &["practice", "import", &partner_practices()]);
    let practices = json_of(dir, &["practice", "list", "--json"]);
    for p in practices.as_array().unwrap().iter().take(2) {
        labnet_ok(
            dir,
            &["share", p["id"].as_str().unwrap(), "--scope", "public"],
        );
    }
    let feed = json_of(dir, &["feed", "list", "--json"]);
    let entries = feed.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let field = |name: &str| -> Vec<String> {
        entries
            .iter()
            .map(|e| e[name].as_str().unwrap().to_string())
            .collect()
    };
    let atom = stdout(&labnet_ok(dir, &["feed", "export", "--format", "atom"]));
    let json = stdout(&labnet_ok(dir, &["feed", "export", "--format", "jsonfeed"]));
    Exported {
        node_id,
        ids: field("id"),
        titles: field("title"),
        atom,
        json,
    }
}

/// `labnet feed verify ARGS...` with a data directory that does not exist.
fn verify(tmp: &Path, args: &[&str]) -> std::process::Output {
    let nowhere = tmp.join("no-node-here");
    let mut all = vec!["feed", "verify"];
    all.extend_from_slice(args);
    let out = run_labnet(&nowhere, &all);
    assert!(!nowhere.exists(), "verify must not create a data directory");
    out
}

#[test]
fn feed_verify_accepts_an_export_and_fails_a_tampered_one() {
    let tmp = tempfile::tempdir().unwrap();
    let e = export(&tmp.path().join("fuenlabrada"));

    for (name, text) in [("feed.xml", &e.atom), ("feed.json", &e.json)] {
        let file = write_file(tmp.path(), name, text);
        let file = file.to_str().unwrap();

        // Good: one `ok` line per entry, with its origin NodeId.
        let out = verify(tmp.path(), &[file]);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let printed = stdout(&out);
        for id in &e.ids {
            let line = format!("ok   {id}  origin {}  Fuenlabrada", e.node_id);
            assert!(printed.contains(&line), "{name}: no '{line}' in\n{printed}");
        }
        assert!(printed.contains("All 2 entries"), "{printed}");

        // Pinned to the right NodeId: still good.
        let pin = format!("Fuenlabrada={}", e.node_id);
        let out = verify(tmp.path(), &[file, "--origin", &pin]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));

        // Pinned to another NodeId: both entries fail, saying why.
        let other = NodeId::from_public_key(&[9; 32]).to_string();
        let pin = format!("fuenlabrada={other}");
        let out = verify(tmp.path(), &[file, "--origin", &pin]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        let printed = stdout(&out);
        for id in &e.ids {
            assert!(printed.contains(&format!("FAIL {id}: ")), "{printed}");
        }
        assert!(printed.contains("(--origin)"), "{printed}");
        assert!(stderr(&out).contains("2 of 2 entries"), "{}", stderr(&out));

        // One byte of one title changed: that entry fails, by id; the other is ok.
        let title = &e.titles[0];
        let mut changed = title.clone();
        let last = changed.pop().unwrap();
        changed.push(if last == 'x' { 'y' } else { 'x' });
        let tampered = text.replacen(title.as_str(), &changed, 1);
        assert_ne!(&tampered, text);
        let file = write_file(tmp.path(), &format!("tampered-{name}"), &tampered);
        let out = verify(tmp.path(), &[file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        let printed = stdout(&out);
        assert!(
            printed.contains(&format!("FAIL {}: ", e.ids[0])),
            "{name}: {printed}"
        );
        assert!(printed.contains(&format!("ok   {}", e.ids[1])), "{printed}");
        assert_eq!(printed.lines().count(), 2, "{printed}");
        let err = stderr(&out);
        assert!(err.contains("1 of 2 entries"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn feed_verify_says_what_is_wrong_with_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = write_file(tmp.path(), "notes.txt", "just some notes\n");
    let broken = write_file(
        tmp.path(),
        "broken.xml",
        "<feed xmlns=\"http://www.w3.org/2005/Atom\">",
    );
    let missing = tmp.path().join("missing.xml");
    for (input, says) in [
        (&garbage, "not an Atom feed or a JSON Feed"),
        (&broken, "not well-formed XML"),
        (&missing, "missing.xml"),
    ] {
        let out = verify(tmp.path(), &[input.to_str().unwrap()]);
        let name = input.display();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains(says), "{name}: {}", stderr(&out));
    }

    for bad in ["Fuenlabrada", "Fuenlabrada=not-a-node", "=ABC"] {
        let out = verify(tmp.path(), &[garbage.to_str().unwrap(), "--origin", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("--origin"), "{bad}: {err}");
        assert!(
            err.contains("NAME=NODEID") || err.contains("NodeId"),
            "{bad}: {err}"
        );
    }
}

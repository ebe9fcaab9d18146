//! Sharing from the command line, with the real `labnet` binary on real data
//! directories: imports, previews, publications, the disclosure log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use labnet_node::share::Publication;
use labnet_node::store::Store;
use labnet_tests::{
    json_of, labnet, labnet_ok, partner_practices, run_labnet, stderr, stdout, write_file,
};

/// A fresh data directory with a node initialized in it, and the `labnet`
/// commands a test runs on it.
struct Node {
    tmp: tempfile::TempDir,
}

impl Node {
    /// A node `name` of `role`, in a fresh temporary directory.
    fn init(name: &str, role: &str) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        labnet_ok(
            tmp.path(),
            &[
                "init",
                "--name",
                name,
                "--listen",
                "127.0.0.1:0",
                "--role",
                role,
            ],
        );
        Node { tmp }
    }

    /// The data directory.
    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A `labnet` command on this node, not yet run.
    fn labnet(&self) -> Command {
        labnet(self.path())
    }

    /// Runs `labnet ARGS` to completion.
    fn run(&self, args: &[&str]) -> Output {
        run_labnet(self.path(), args)
    }

    /// Runs `labnet ARGS` and asserts that it succeeded.
    fn ok(&self, args: &[&str]) -> Output {
        labnet_ok(self.path(), args)
    }

    /// Runs a `labnet` command that prints JSON and parses what it printed.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        json_of(self.path(), args)
    }

    /// Runs `labnet ARGS`, asserts that it failed with exit code 1, and
    /// returns what it wrote to stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        stderr(&out)
    }

    /// Writes `text` to the file `name` in the data directory; returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        write_file(self.path(), name, text)
    }

    /// Writes an executable shell script `name` (a stand-in for `$EDITOR`).
    fn write_script(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = self.write(name, text);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }
}

/// Asserts that `text` says every one of `expected`.
fn assert_mentions(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "missing {e}: {text}");
    }
}

#[test]
fn imports_validate_the_whole_file_and_write_nothing_on_error() {
    let node = Node::init("Modena", "partner");
    let bad = node.write(
        "bad.json",
        r#"{"practices": [
            {"id": "ok", "city": "Modena", "name": "Fine"},
            {"id": "x", "city": "Modena", "name": "Bad", "thematic_area": "sport", "colour": "red"},
            {"id": "y", "city": "Modena", "name": "Worse", "indicators": [{"label": "l", "achieved": "many"}]}
        ]}"#,
    );
    let err = node.refused(&["practice", "import", bad.to_str().unwrap()]);
    assert_mentions(
        &err,
        &[
            "practices[1].thematic_area",
            "colour",
            "practices[2].indicators[0].achieved",
            "nothing was imported",
        ],
    );
    assert_eq!(
        node.json(&["practice", "list", "--json"]),
        serde_json::json!([]),
        "nothing written"
    );

    let csv = node.write(
        "bad.csv",
        "id,city,name,thematic_area\nok,Modena,Fine,care\nbad,Modena,Bad,sport\n",
    );
    let err = node.refused(&["practice", "import", csv.to_str().unwrap()]);
    assert_mentions(&err, &["row 2", "thematic_area"]);
    assert_eq!(
        node.json(&["practice", "list", "--json"]),
        serde_json::json!([])
    );

    // The partner practices import cleanly; a second import updates and says so.
    let first = node.json(&["practice", "import", &partner_practices(), "--json"]);
    assert_eq!(first["created"].as_array().unwrap().len(), 25);
    let again = node.json(&["practice", "import", &partner_practices(), "--json"]);
    assert_eq!(again["updated"].as_array().unwrap().len(), 25);
    assert_eq!(
        node.json(&["practice", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        25
    );
}

#[test]
fn preview_is_exactly_the_publication_and_roster_names_never_leave() {
    let node = Node::init("Fuenlabrada", "partner");
    let practices = node.write(
        "p.json",
        r#"{"practices": [{"id": "fuenlabrada-club", "city": "Fuenlabrada", "name": "Job club",
            "description": "Run with José Pérez (jose.perez@example.org, +34 612 345 678) since 2019-03-14.",
            "indicators": [{"label": "participants", "achieved": 7, "unit": "people"},
                           {"label": "found a job", "achieved": 40, "unit": "%"}],
            "contacts": [{"name": "José Pérez", "role": "coordinator", "email": "jose.perez@example.org"}],
            "internal_notes": "call Pérez on Fridays"}]}"#,
    );
    let roster = node.write(
        "roster.json",
        r#"{"stakeholders": [{"name": "José Pérez", "organisation": "Asociación Vecinal", "area": "civil-society",
            "email": "jose.perez@example.org", "phone": "+34 612 345 678", "migrant_background": true,
            "nationality": "Colombia", "groups": ["lsrg"], "notes": "prefers WhatsApp"}]}"#,
    );
    node.ok(&["practice", "import", practices.to_str().unwrap()]);
    let out = node.ok(&["stakeholder", "import", roster.to_str().unwrap()]);
    assert!(
        !stdout(&out).contains("Pérez"),
        "the CLI does not echo personal data"
    );

    let preview = node.ok(&[
        "share",
        "preview",
        "fuenlabrada-club",
        "--scope",
        "partners",
    ]);
    let preview_text = stdout(&preview);
    for private in [
        "Pérez",
        "Perez",
        "jose.perez",
        "612 345",
        "coordinator",
        "Fridays",
        "Colombia",
        "2019-03-14",
    ] {
        assert!(
            !preview_text.contains(private),
            "{private} in the preview:\n{preview_text}"
        );
    }
    assert!(
        preview_text.contains("2019-03"),
        "dates are coarsened to the month"
    );
    assert!(
        stderr(&preview).contains("suppressed") || stderr(&preview).contains("indicators"),
        "{}",
        stderr(&preview)
    );

    let shared = node.json(&["share", "fuenlabrada-club", "--scope", "partners", "--json"]);
    let doc_id = shared["doc_id"].as_str().unwrap().to_string();
    // The publication as stored (with its whole history) holds exactly the preview.
    let store = Store::open(node.path()).unwrap();
    let (_, doc) = store.load_document(&doc_id).unwrap().unwrap();
    let bytes = doc.clone().save();
    let publication = Publication::from_replica(doc).unwrap();
    assert_eq!(
        publication.preview_json().unwrap().trim(),
        preview_text.trim(),
        "preview equals the publication byte for byte"
    );
    for private in ["Pérez", "jose.perez", "Fridays"] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(private),
            "{private} in the publication's saved bytes"
        );
    }
}

#[test]
fn the_audit_log_answers_what_left_the_node() {
    let node = Node::init("Mechelen", "partner");
    node.ok(&["practice", "import", &partner_practices()]);
    let ids: Vec<String> = node
        .json(&["practice", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let (a, b) = (&ids[0], &ids[1]);
    node.ok(&["share", a, "--scope", "partners"]);
    node.ok(&["share", b, "--scope", "public"]);
    // Sharing again without an edit changes nothing and logs nothing.
    assert!(stdout(&node.run(&["share", a, "--scope", "partners"])).contains("nothing changed"));
    // A new scope is an update.
    node.ok(&["share", a, "--scope", "public"]);
    node.ok(&["unshare", b]);
    let out = node.run(&["unshare", b]);
    assert_eq!(out.status.code(), Some(1), "unsharing twice is an error");
    // Sharing again after unshare publishes anew.
    let again = node.run(&["share", b, "--scope", "public"]);
    assert!(stdout(&again).contains("Shared"), "{}", stdout(&again));

    let log = node.json(&["audit", "--json"]);
    let lines: Vec<(String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let name = d["doc_id"]
                .as_str()
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .to_string();
            (
                d["action"].as_str().unwrap().to_string(),
                name,
                d["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = vec![
        ("share".to_string(), a.clone(), "partners".to_string()),
        ("share".to_string(), b.clone(), "public".to_string()),
        ("update".to_string(), a.clone(), "public".to_string()),
        ("unshare".to_string(), b.clone(), "public".to_string()),
        ("share".to_string(), b.clone(), "public".to_string()),
    ];
    assert_eq!(lines, expected);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["settings"] == "{\"min_count\":10}" || d["action"] == "unshare"));
    let since_tomorrow = node.json(&["audit", "--since", "2999-01-01", "--json"]);
    assert_eq!(since_tomorrow, serde_json::json!([]));
    let nobody = labnet_protocol::NodeId::from_public_key(&[1; 32]).to_string();
    assert_eq!(
        node.json(&["audit", "--peer", &nobody, "--json"]),
        serde_json::json!([])
    );
    let err = node.refused(&["audit", "--since", "yesterday"]);
    assert_mentions(&err, &["YYYY-MM-DD"]);
}

#[test]
fn a_subscriber_holds_no_lab_data_and_cannot_share() {
    let node = Node::init("ISRG", "subscriber");
    let err = node.refused(&["practice", "import", &partner_practices()]);
    assert_mentions(&err, &["subscriber"]);
    node.refused(&["share", "anything", "--scope", "public"]);
    assert_eq!(
        node.json(&["practice", "list", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn the_lab_record_is_stored_and_bad_files_are_refused() {
    let node = Node::init("Livadia", "partner");
    let bad = node.write(
        "bad.json",
        "{\n  \"profile\": {\"name\": \"Livadia\", \"country\": \"Greece\", \"mayor\": \"X\"}\n}\n",
    );
    let err = node.refused(&["lab", "import", bad.to_str().unwrap()]);
    assert_mentions(&err, &["mayor", "line 2"]);
    let good = node.write(
        "lab.json",
        r#"{"profile": {"name": "Livadia", "country": "Greece", "population": 32000, "main_nationalities": ["Albania"]},
            "labs": [{"id": "care", "topic": "childcare", "thematic_area": "care",
                      "sessions": [{"date": "2023-05-10", "topic": "kick-off", "attendance": 17}]}],
            "experiments": [{"id": "e1", "lab_id": "care", "hypothesis": "play group", "start": "2023-09-01",
                             "measurements": [{"label": "attending", "date": "2023-12-01", "numerator": 9, "denominator": 14}]}]}"#,
    );
    node.ok(&["lab", "import", good.to_str().unwrap()]);
    let shown = node.json(&["lab", "show"]);
    assert_eq!(shown["profile"]["population"], 32000);
    assert_eq!(shown["labs"][0]["sessions"][0]["attendance"], 17);
    assert_eq!(
        shown["experiments"][0]["measurements"][0]["denominator"],
        14
    );
}

#[test]
fn practice_edit_validates_what_the_editor_saved() {
    let node = Node::init("Antwerp", "partner");
    node.ok(&["practice", "import", &partner_practices()]);
    let id = node.json(&["practice", "list", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An "editor" that renames the practice.
    let script = node.write_script(
        "rename.sh",
        "#!/bin/sh\nsed -i 's/\"name\": \"[^\"]*\"/\"name\": \"Renamed by the editor\"/' \"$1\"\n",
    );
    let out = node
        .labnet()
        .args(["practice", "edit", &id])
        .env("EDITOR", &script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = node.json(&["practice", "show", &id]);
    assert_eq!(shown["name"], "Renamed by the editor");
    // An "editor" that breaks the JSON: refused, nothing saved (the retry prompt
    // reads "n" from stdin).
    let breaker = node.write_script(
        "break.sh",
        "#!/bin/sh\nsed -i 's/\"systematized\": [a-z]*/\"systematized\": \"maybe\"/' \"$1\"\n",
    );
    let mut child = node
        .labnet()
        .args(["practice", "edit", &id])
        .env("EDITOR", &breaker)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("systematized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        node.json(&["practice", "show", &id])["name"],
        "Renamed by the editor",
        "nothing was saved"
    );
    assert!(
        std::fs::read_dir(node.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("edit-")),
        "the temporary file is gone"
    );
}

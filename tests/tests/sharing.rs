//! Sharing from the command line, with the real `labnet` binary on real data
//! directories: imports, previews, publications, the disclosure log.

use std::path::{Path, PathBuf};

use labnet_node::share::Publication;
use labnet_node::store::Store;
use labnet_tests::{json_of, labnet_ok, partner_practices, run_labnet, stderr, stdout, write_file};

/// A fresh data directory with a node `name` of `role` initialized in it.
fn init_node(name: &str, role: &str) -> tempfile::TempDir {
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
    tmp
}

/// Runs `labnet ARGS` on `dir`, asserts that it failed with exit code 1, and
/// returns what it wrote to stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = run_labnet(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    stderr(&out)
}

/// Writes an executable shell script `dir/name` (a stand-in for `$EDITOR`).
fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = write_file(dir, name, text);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn imports_validate_the_whole_file_and_write_nothing_on_error() {
    let tmp = init_node("Modena", "partner");
    let bad = write_file(
        tmp.path(),
        "bad.json",
        r#"{"practices": [
            {"id": "ok", "city": "Modena", "name": "Fine"},
            {"id": "x", "city": "Modena", "name": "Bad", "thematic_area": "sport", "colour": "red"},
            {"id": "y", "city": "Modena", "name": "Worse", "indicators": [{"label": "l", "achieved": "many"}]}
        ]}"#,
    );
    let err = refused(tmp.path(), &["practice", "import", bad.to_str().unwrap()]);
    for expected in [
        "practices[1].thematic_area",
        "colour",
        "practices[2].indicators[0].achieved",
        "nothing was imported",
    ] {
        assert!(err.contains(expected), "missing {expected}: {err}");
    }
    assert_eq!(
        json_of(tmp.path(), &["practice", "list", "--json"]),
        serde_json::json!([]),
        "nothing written"
    );

    let csv = write_file(
        tmp.path(),
        "bad.csv",
        "id,city,name,thematic_area\nok,Modena,Fine,care\nbad,Modena,Bad,sport\n",
    );
    let err = refused(tmp.path(), &["practice", "import", csv.to_str().unwrap()]);
    assert!(
        err.contains("row 2") && err.contains("thematic_area"),
        "{err}"
    );
    assert_eq!(
        json_of(tmp.path(), &["practice", "list", "--json"]),
        serde_json::json!([])
    );

    // The partner practices import cleanly; a second import updates and says so.
    let first = json_of(
        tmp.path(),
        &["practice", "import", &partner_practices(), "--json"],
    );
    assert_eq!(first["created"].as_array().unwrap().len(), 25);
    let again = json_of(
        tmp.path(),
        &["practice", "import", &partner_practices(), "--json"],
    );
    assert_eq!(again["updated"].as_array().unwrap().len(), 25);
    assert_eq!(
        json_of(tmp.path(), &["practice", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        25
    );
}

#[test]
fn preview_is_exactly_the_publication_and_roster_names_never_leave() {
    let tmp = init_node("Fuenlabrada", "partner");
    let practices = write_file(
        tmp.path(),
        "p.json",
        r#"{"practices": [{"id": "fuenlabrada-club", "city": "Fuenlabrada", "name": "Job club",
            "description": "Run with José Pérez (jose.perez@example.org, +34 612 345 678) since 2019-03-14.",
            "indicators": [{"label": "participants", "achieved": 7, "unit": "people"},
                           {"label": "found a job", "achieved": 40, "unit": "%"}],
            "contacts": [{"name": "José Pérez", "role": "coordinator", "email": "jose.perez@example.org"}],
            "internal_notes": "call Pérez on Fridays"}]}"#,
    );
    let roster = write_file(
        tmp.path(),
        "roster.json",
        r#"{"stakeholders": [{"name": "José Pérez", "organisation": "Asociación Vecinal", "area": "civil-society",
            "email": "jose.perez@example.org", "phone": "+34 612 345 678", "migrant_background": true,
            "nationality": "Colombia", "groups": ["lsrg"], "notes": "prefers WhatsApp"}]}"#,
    );
    labnet_ok(
        tmp.path(),
        &["practice", "import", practices.to_str().unwrap()],
    );
    let out = labnet_ok(
        tmp.path(),
        &["stakeholder", "import", roster.to_str().unwrap()],
    );
    assert!(
        !stdout(&out).contains("Pérez"),
        "the CLI does not echo personal data"
    );

    let preview = labnet_ok(
        tmp.path(),
        &[
            "share",
            "preview",
            "fuenlabrada-club",
            "--scope",
            "partners",
        ],
    );
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

    let shared = json_of(
        tmp.path(),
        &["share", "fuenlabrada-club", "--scope", "partners", "--json"],
    );
    let doc_id = shared["doc_id"].as_str().unwrap().to_string();
    // The publication as stored (with its whole history) holds exactly the preview.
    let store = Store::open(tmp.path()).unwrap();
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
    let tmp = init_node("Mechelen", "partner");
    labnet_ok(tmp.path(), &["practice", "import", &partner_practices()]);
    let ids: Vec<String> = json_of(tmp.path(), &["practice", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let (a, b) = (&ids[0], &ids[1]);
    labnet_ok(tmp.path(), &["share", a, "--scope", "partners"]);
    labnet_ok(tmp.path(), &["share", b, "--scope", "public"]);
    // Sharing again without an edit changes nothing and logs nothing.
    assert!(stdout(&run_labnet(
        tmp.path(),
        &["share", a, "--scope", "partners"]
    ))
    .contains("nothing changed"));
    // A new scope is an update.
    labnet_ok(tmp.path(), &["share", a, "--scope", "public"]);
    labnet_ok(tmp.path(), &["unshare", b]);
    let out = run_labnet(tmp.path(), &["unshare", b]);
    assert_eq!(out.status.code(), Some(1), "unsharing twice is an error");
    // Sharing again after unshare publishes anew.
    let again = run_labnet(tmp.path(), &["share", b, "--scope", "public"]);
    assert!(stdout(&again).contains("Shared"), "{}", stdout(&again));

    let log = json_of(tmp.path(), &["audit", "--json"]);
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
    let since_tomorrow = json_of(tmp.path(), &["audit", "--since", "2999-01-01", "--json"]);
    assert_eq!(since_tomorrow, serde_json::json!([]));
    let nobody = labnet_protocol::NodeId::from_public_key(&[1; 32]).to_string();
    assert_eq!(
        json_of(tmp.path(), &["audit", "--peer", &nobody, "--json"]),
        serde_json::json!([])
    );
    let err = refused(tmp.path(), &["audit", "--since", "yesterday"]);
    assert!(err.contains("YYYY-MM-DD"));
}

#[test]
fn a_subscriber_holds_no_lab_data_and_cannot_share() {
    let tmp = init_node("ISRG", "subscriber");
    let err = refused(tmp.path(), &["practice", "import", &partner_practices()]);
    assert!(err.contains("subscriber"), "{err}");
    refused(tmp.path(), &["share", "anything", "--scope", "public"]);
    assert_eq!(
        json_of(tmp.path(), &["practice", "list", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn the_lab_record_is_stored_and_bad_files_are_refused() {
    let tmp = init_node("Livadia", "partner");
    let bad = write_file(
        tmp.path(),
        "bad.json",
        "{\n  \"profile\": {\"name\": \"Livadia\", \"country\": \"Greece\", \"mayor\": \"X\"}\n}\n",
    );
    let err = refused(tmp.path(), &["lab", "import", bad.to_str().unwrap()]);
    assert!(err.contains("mayor") && err.contains("line 2"), "{err}");
    let good = write_file(
        tmp.path(),
        "lab.json",
        r#"{"profile": {"name": "Livadia", "country": "Greece", "population": 32000, "main_nationalities": ["Albania"]},
            "labs": [{"id": "care", "topic": "childcare", "thematic_area": "care",
                      "sessions": [{"date": "2023-05-10", "topic": "kick-off", "attendance": 17}]}],
            "experiments": [{"id": "e1", "lab_id": "care", "hypothesis": "play group", "start": "2023-09-01",
                             "measurements": [{"label": "attending", "date": "2023-12-01", "numerator": 9, "denominator": 14}]}]}"#,
    );
    labnet_ok(tmp.path(), &["lab", "import", good.to_str().unwrap()]);
    let shown = json_of(tmp.path(), &["lab", "show"]);
    assert_eq!(shown["profile"]["population"], 32000);
    assert_eq!(shown["labs"][0]["sessions"][0]["attendance"], 17);
    assert_eq!(
        shown["experiments"][0]["measurements"][0]["denominator"],
        14
    );
}

#[test]
fn practice_edit_validates_what_the_editor_saved() {
    let tmp = init_node("Antwerp", "partner");
    labnet_ok(tmp.path(), &["practice", "import", &partner_practices()]);
    let id = json_of(tmp.path(), &["practice", "list", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An "editor" that renames the practice.
    let script = write_script(
        tmp.path(),
        "rename.sh",
        "#!/bin/sh\nsed -i 's/\"name\": \"[^\"]*\"/\"name\": \"Renamed by the editor\"/' \"$1\"\n",
    );
    let out = labnet_tests::labnet(tmp.path())
        .args(["practice", "edit", &id])
        .env("EDITOR", &script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = json_of(tmp.path(), &["practice", "show", &id]);
    assert_eq!(shown["name"], "Renamed by the editor");
    // An "editor" that breaks the JSON: refused, nothing saved (the retry prompt
    // reads "n" from stdin).
    let breaker = write_script(
        tmp.path(),
        "break.sh",
        "#!/bin/sh\nsed -i 's/\"systematized\": [a-z]*/\"systematized\": \"maybe\"/' \"$1\"\n",
    );
    let mut child = labnet_tests::labnet(tmp.path())
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
        json_of(tmp.path(), &["practice", "show", &id])["name"],
        "Renamed by the editor",
        "nothing was saved"
    );
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("edit-")),
        "the temporary file is gone"
    );
}

//! What ships beside the code: the systemd unit passes `systemd-analyze
//! verify`, and `dist/config.example.toml` is exactly the config `labnet init`
//! writes, so every later setting lands in both.
//!
//! Regenerate the example after changing the config template with:
//! `LABNET_WRITE_EXAMPLE=1 cargo test -p labnet-tests --test packaging`

use std::path::{Path, PathBuf};
use std::process::Command;

use labnet_config::{default_file, Config, Role, DEFAULT_LISTEN};

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// The example: a header, then what `labnet init --name "My City"` writes.
fn example() -> String {
    format!(
        "# Example labnet config: what `labnet init --name \"My City\"` writes to\n\
         # DATA_DIR/config.toml, every setting at its default, each with what it means.\n\
         # Generated; regenerate with\n\
         #   LABNET_WRITE_EXAMPLE=1 cargo test -p labnet-tests --test packaging\n\n{}",
        default_file("My City", Role::Partner, DEFAULT_LISTEN)
    )
}

#[test]
fn config_example_is_what_init_writes() {
    let path = dist().join("config.example.toml");
    let expected = example();
    if std::env::var_os("LABNET_WRITE_EXAMPLE").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "{} differs from the config `labnet init` writes; regenerate it with\n  \
         LABNET_WRITE_EXAMPLE=1 cargo test -p labnet-tests --test packaging",
        path.display()
    );
    // It is a valid config, and every setting has a comment above it.
    Config::from_toml("config.example.toml", &found).unwrap();
    let lines: Vec<&str> = found.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(" = ") && !line.starts_with('#') {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "setting without a comment: {line}"
            );
        }
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(dist().join("labnet.service")).unwrap();
    for needed in [
        "User=labnet",
        "StateDirectory=labnet",
        "ExecStart=/usr/local/bin/labnet --data-dir /var/lib/labnet run",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "UMask=0077",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed:?}");
    }
    let sysusers = std::fs::read_to_string(dist().join("labnet.sysusers")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u labnet ")));

    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        println!("skipped: /usr/bin/systemd-analyze is not on this machine");
        return;
    }
    let bin = labnet_tests::labnet_bin();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("labnet.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/labnet", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A machine without the `labnet` user says so; anything else is a fault.
    let faults: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("labnet") || !l.to_lowercase().contains("user"))
        .collect();
    assert!(
        out.status.success() && faults.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

//! Replaying fuzz inputs as a test: every file of a target's committed
//! crashers (`fuzz/regressions/<target>/`) and seed corpus
//! (`fuzz/corpus/<target>/`), run through the entry point the fuzzer ran.
//!
//! Shared by the protocol's and the node's `fuzz_regressions` tests (the node
//! includes this file by path), which differ only in their targets.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A target's seeds: each file name with its bytes.
pub(crate) type Seeds = Vec<(&'static str, Vec<u8>)>;

/// The entry point of a set of targets: runs the named target on the bytes,
/// and says whether the name was one of its targets.
pub(crate) type Run = fn(&str, &[u8]) -> bool;

/// The fuzz workspace, next to the crate running the test.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `target` on every file of `dir`; returns how many ran, and panics
/// naming every file that made the target panic.
pub(crate) fn replay(run: Run, target: &str, dir: &Path) -> usize {
    let mut failed = Vec::new();
    let list = files(dir);
    for path in &list {
        let data = fs::read(path).unwrap();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            assert!(run(target, &data), "no such target {target}");
        }));
        if ran.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} panics on {failed:?}");
    list.len()
}

/// Runs every target on its committed crashers.
pub(crate) fn replay_crashers(run: Run, all_seeds: Vec<(&'static str, Seeds)>) {
    for (target, _) in all_seeds {
        replay(run, target, &fuzz_dir().join("regressions").join(target));
    }
}

/// Runs every target on its seed corpus, and checks that the corpus holds
/// each seed the generator writes today, byte for byte where `exact` says
/// the target's seeds come out the same each time.
pub(crate) fn replay_seed_corpora(
    run: Run,
    all_seeds: Vec<(&'static str, Seeds)>,
    exact: impl Fn(&str) -> bool,
) {
    for (target, seeds) in all_seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        let ran = replay(run, target, &dir);
        assert!(ran >= seeds.len(), "{target}: {ran} files in {dir:?}");
        for (name, bytes) in seeds {
            run(target, &bytes);
            if exact(target) {
                let on_disk = fs::read(dir.join(name))
                    .unwrap_or_else(|e| panic!("{target}/{name}: {e}; regenerate the corpus"));
                assert_eq!(on_disk, bytes, "{target}/{name} is stale; regenerate");
            }
        }
    }
}

/// Writes every target's seeds under `fuzz/corpus/<target>/`.
pub(crate) fn write_seed_corpora(all_seeds: Vec<(&'static str, Seeds)>) {
    for (target, seeds) in all_seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

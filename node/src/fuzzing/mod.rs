//! Entry points for the fuzz targets in `fuzz/`, and the seeds of their corpora.
//!
//! Built only with the `fuzzing` feature, so nothing here widens the crate's
//! API in a normal build. Each entry point takes the fuzzer's bytes, drives
//! the real code a peer's (or an export's, or an operator's) bytes reach, and
//! panics only when an invariant the code promises is broken: a panic here is
//! a finding. The same functions replay the committed crashers and the seed
//! corpora in `node/tests/fuzz_regressions.rs`.
//!
//! | target | what it drives | what must hold |
//! |---|---|---|
//! | `deliver` | one `Deliver` to a real [`Session`](crate::sync::Session), chunks from the fuzzer, statement really signed | nothing stored unless it reloads to the signed heads as a publication |
//! | `session` | whole messages from the fuzzer into a [`Session`](crate::sync::Session) holding a replica | the same, for every message |
//! | `cert_pin` | the pinned TLS verifiers on arbitrary DER | a pin accepts exactly the key it names |
//! | `scrub` | the free-text scrubber | what would be published is a fixed point |
//! | `anonymize` | the anonymizer on a fuzzer practice | anonymizing its own output changes nothing |
//! | `config` | the config file and overrides | an accepted config's `init` file parses back the same |
//! | `feed_export` | Atom, JSON Feed, CSV of fuzzer text | the output parses back as XML, JSON and CSV |
//! | `feed_verify` | `feed verify` on arbitrary text | never panics |
//!
//! Under `--cfg fuzzing` the session's and the feed verifier's panic guards
//! are off, so a panic inside Automerge reaches the fuzzer.
//!
//! Input formats are simple on purpose (flag bytes, then length-prefixed or
//! separator-split fields), so the seeds and the fuzzer's mutations of
//! them stay meaningful.

mod config;
mod feed;
mod share;
mod sync;
mod tls;
mod view;

pub use config::{config, config_seeds};
pub use feed::{feed_export, feed_export_seeds, feed_verify, feed_verify_seeds};
pub use share::{anonymize, anonymize_seeds, scrub, scrub_seeds};
pub use sync::{deliver, deliver_seeds, session, session_seeds, DeliverOutcome};
pub use tls::{cert_pin, cert_pin_seeds};
pub use view::{fuzz_key, FuzzKey};

/// A seed: its file name in the corpus, and its bytes.
pub type Seed = (&'static str, Vec<u8>);

// ---- input helpers -----------------------------------------------------------

/// A cursor over fuzzer bytes that never fails: past the end, it reads zeros.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Input<'a> {
        Input { rest: data }
    }

    fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, tail)) => {
                self.rest = tail;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for (i, v) in self.take(8).iter().enumerate() {
            b[i] = *v;
        }
        u64::from_le_bytes(b)
    }

    /// `u16` little-endian length, then that many bytes, until the input ends.
    fn chunks(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !self.rest.is_empty() {
            let len = usize::from(self.u16());
            out.push(self.take(len).to_vec());
        }
        out
    }
}

/// Appends a chunk in the format [`Input::chunks`] reads.
fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let len = u16::try_from(chunk.len()).expect("seed chunks are under 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(chunk);
}

/// Fields separated by `0xff`, a byte UTF-8 never uses, so every other
/// character (NUL and control characters included) can appear in a field.
fn fields(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0xff)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// Joins fields in the format [`fields`] reads.
fn join_raw(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(0xff);
        }
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// A target's name, its seed generator and its entry point.
type Target = (&'static str, fn() -> Vec<Seed>, fn(&[u8]));

/// Every node target, once: its name (its directory under `fuzz/corpus/` and
/// `fuzz/regressions/`), its seeds and its entry point.
const TARGETS: [Target; 8] = [
    ("deliver", deliver_seeds, |data| {
        let _ = deliver(data);
    }),
    ("session", session_seeds, session),
    ("cert_pin", cert_pin_seeds, cert_pin),
    ("scrub", scrub_seeds, scrub),
    ("anonymize", anonymize_seeds, anonymize),
    ("config", config_seeds, config),
    ("feed_export", feed_export_seeds, feed_export),
    ("feed_verify", feed_verify_seeds, feed_verify),
];

/// Every node target's seeds, by target name: what the corpus generator
/// writes to `fuzz/corpus/<target>/` and the regression test replays.
pub fn all_seeds() -> Vec<(&'static str, Vec<Seed>)> {
    TARGETS
        .iter()
        .map(|&(name, seeds, _)| (name, seeds()))
        .collect()
}

/// Runs the node target called `target` on `data`; `false` if no target has
/// that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|&&(name, _, _)| name == target) {
        Some(&(_, _, entry)) => {
            entry(data);
            true
        }
        None => false,
    }
}

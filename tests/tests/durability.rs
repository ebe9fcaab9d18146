//! Acknowledged writes survive `kill -9`.
//!
//! A child process (`store-writer`) writes documents and prints each write the
//! store acknowledged. The test kills it with SIGKILL at a random moment, reopens
//! the store, and checks that every acknowledged write is there and that SQLite's
//! integrity check passes. Rounds reuse the same store, so later rounds also
//! recover from the WAL left by earlier kills.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use automerge::ReadDoc;
use labnet_node::store::Store;
use rand::Rng;

const ROUNDS: i64 = 24;

fn counter_value(doc: &automerge::AutoCommit) -> i64 {
    match doc.get(automerge::ROOT, "n") {
        Ok(Some((automerge::Value::Scalar(s), _))) => s.as_i64().unwrap_or(-1),
        _ => -1,
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = env!("CARGO_BIN_EXE_store-writer");
    let mut rng = rand::thread_rng();
    let mut total_acked = 0usize;
    let mut last_counter_ack = -1i64;
    for round in 0..ROUNDS {
        let first = round * 1_000_000;
        let mut child = Command::new(writer)
            .arg(tmp.path())
            .arg(first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning store-writer");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first ack so the child is really writing, then kill it at
        // a random moment during its writes.
        let first_ack = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the writer acknowledged nothing");
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..120)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        reader.join().expect("reader thread");
        // Every line the child printed before it died was an acknowledgement.
        let acks: Vec<String> = std::iter::once(first_ack).chain(rx.try_iter()).collect();

        let store = Store::open(tmp.path()).expect("reopening the store after SIGKILL");
        store
            .integrity_check()
            .expect("integrity check after SIGKILL");
        for ack in &acks {
            let parts: Vec<&str> = ack.split_whitespace().collect();
            let n: i64 = parts[2].parse().expect("ack number");
            match parts[1] {
                "doc" => {
                    let (_, doc) = store
                        .load_document(&format!("doc-{n}"))
                        .expect("loading a document")
                        .unwrap_or_else(|| {
                            panic!("round {round}: acknowledged doc-{n} is missing")
                        });
                    assert_eq!(
                        counter_value(&doc),
                        n,
                        "round {round}: doc-{n} has the wrong value"
                    );
                }
                "counter" => last_counter_ack = last_counter_ack.max(n),
                other => panic!("unexpected ack {other}"),
            }
        }
        if last_counter_ack >= 0 {
            let (_, counter) = store
                .load_document("counter")
                .expect("loading counter")
                .expect("counter exists");
            assert!(
                counter_value(&counter) >= last_counter_ack,
                "round {round}: counter is {} but {last_counter_ack} was acknowledged",
                counter_value(&counter)
            );
        }
        total_acked += acks.len();
    }
    assert!(
        total_acked >= ROUNDS as usize,
        "each round acknowledged at least one write"
    );
}

//! The network of the harness: [`Net`] wires sessions between [`MemNode`]s
//! and delivers their bytes one message at a time, logging what crossed.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::SyncMessage;
use labnet_protocol::NodeId;

use super::MemNode;
use crate::sync::{Event, PeerInfo, Session, SessionConfig};

/// One delivered message, as seen on the wire.
pub(crate) struct Delivered {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) len_bytes: usize,
    pub(crate) msg: SyncMessage,
}

/// N nodes and the sessions between them.
pub(crate) struct Net {
    pub(crate) nodes: Vec<MemNode>,
    /// Session of node `.0` with node `.1`.
    pub(crate) sessions: BTreeMap<(usize, usize), Session>,
    in_flight: VecDeque<(usize, usize, Vec<u8>)>,
    pub(crate) log: Vec<Delivered>,
    pub(crate) config: SessionConfig,
    /// The harness's clock.
    pub(crate) now: Instant,
}

impl Net {
    pub(crate) fn new(nodes: Vec<MemNode>) -> Net {
        Net {
            nodes,
            sessions: BTreeMap::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            config: SessionConfig::default(),
            now: Instant::now(),
        }
    }

    /// A net of `nodes` in full mesh, run until no bytes are in flight.
    pub(crate) fn synced(nodes: Vec<MemNode>) -> Net {
        let mut net = Net::new(nodes);
        net.connect_all();
        net.run();
        net
    }

    /// The session of node `me` with node `them`, as the transport would
    /// start it (the peer's role is the role `me` approved it with).
    fn open(&mut self, me: usize, them: usize) {
        let info = PeerInfo {
            local: self.nodes[me].id,
            local_role: self.nodes[me].role,
            peer: self.nodes[them].id,
            peer_role: self.nodes[them].role,
            signer: self.nodes[me].key.clone(),
        };
        let session = Session::new(info, self.config, &self.nodes[me], self.now);
        self.sessions.insert((me, them), session);
    }

    /// Opens a session in both directions between `a` and `b`.
    pub(crate) fn connect(&mut self, a: usize, b: usize) {
        self.open(a, b);
        self.open(b, a);
    }

    pub(crate) fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.connect(a, b);
            }
        }
    }

    /// Closes the sessions between `a` and `b` and drops their bytes in flight.
    pub(crate) fn disconnect(&mut self, a: usize, b: usize) {
        for key in [(a, b), (b, a)] {
            self.sessions.remove(&key);
        }
        self.in_flight
            .retain(|(f, t, _)| !((*f == a && *t == b) || (*f == b && *t == a)));
    }

    /// Closes every session and drops bytes in flight.
    pub(crate) fn disconnect_all(&mut self) {
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for key in keys {
            self.drain(key);
        }
        self.sessions.clear();
        self.in_flight.clear();
    }

    /// Tells every session of `node` that what it serves changed.
    pub(crate) fn local_change(&mut self, node: usize) {
        let keys: Vec<_> = self
            .sessions
            .keys()
            .copied()
            .filter(|(me, _)| *me == node)
            .collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_local_change(&self.nodes[node], self.now);
            }
        }
    }

    /// Moves the clock and fires the sessions' timers that are due.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_timeout(self.now);
            }
            self.drain(key);
        }
    }

    /// Moves a session's effects into its node, events into the log, and bytes
    /// onto the wire; then, as the driver does, tells the node's other
    /// sessions about anything stored that they relay or forward.
    fn drain(&mut self, (me, them): (usize, usize)) {
        let Some(session) = self.sessions.get_mut(&(me, them)) else {
            return;
        };
        let peer = self.nodes[them].id;
        while let Some(effect) = session.poll_effect() {
            self.nodes[me].apply(effect);
        }
        let mut relay = false;
        while let Some(event) = session.poll_event() {
            relay |= matches!(
                event,
                Event::ReplicaChanged { relayed: true, .. }
                    | Event::RetractionReceived { relayed: true, .. }
                    | Event::ConfirmationToForward { .. }
            );
            self.nodes[me].events.push((peer, event));
        }
        while let Some(bytes) = session.poll_transmit() {
            self.in_flight.push_back((me, them, bytes));
        }
        if relay {
            self.local_change(me);
            let keys: Vec<_> = self
                .sessions
                .keys()
                .copied()
                .filter(|(m, t)| *m == me && *t != them)
                .collect();
            for key in keys {
                if let Some(session) = self.sessions.get_mut(&key) {
                    while let Some(bytes) = session.poll_transmit() {
                        self.in_flight.push_back((key.0, key.1, bytes));
                    }
                }
            }
        }
    }

    /// Delivers raw bytes from `from` to `to`, bypassing `from`'s session.
    pub(crate) fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.in_flight.push_back((from, to, bytes));
    }

    /// Takes the bytes in flight from `from` to `to` off the wire.
    pub(crate) fn take_in_flight(&mut self, from: usize, to: usize) -> Vec<Vec<u8>> {
        let mut taken = Vec::new();
        self.in_flight.retain(|(f, t, bytes)| {
            let hit = *f == from && *t == to;
            if hit {
                taken.push(bytes.clone());
            }
            !hit
        });
        taken
    }

    /// Delivers one message, if any is in flight.
    pub(crate) fn step(&mut self) -> bool {
        let Some((from, to, bytes)) = self.in_flight.pop_front() else {
            return false;
        };
        if let Ok(msg) = SyncMessage::decode(&bytes) {
            self.log.push(Delivered {
                from,
                to,
                len_bytes: bytes.len(),
                msg,
            });
        }
        if let Some(session) = self.sessions.get_mut(&(to, from)) {
            session.handle_message(&self.nodes[to], self.now, &bytes);
        }
        self.drain((to, from));
        true
    }

    /// Runs until no bytes are in flight. Returns the number of messages delivered.
    pub(crate) fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let keys: Vec<_> = self.sessions.keys().copied().collect();
            for key in keys {
                self.drain(key);
            }
            if !self.step() {
                return delivered;
            }
            delivered += 1;
            assert!(delivered < 10_000_000, "sync does not converge");
        }
    }

    /// `Deliver` messages delivered since log position `since`.
    pub(crate) fn deliveries_since(&self, since: usize) -> usize {
        self.log
            .get(since..)
            .unwrap_or_default()
            .iter()
            .filter(|d| matches!(d.msg, SyncMessage::Deliver { .. }))
            .count()
    }

    /// The violation node `me`'s session with node `them` closed with, if any.
    pub(crate) fn closed_with(&self, me: usize, them: usize) -> Option<ViolationCode> {
        self.sessions
            .get(&(me, them))
            .and_then(|s| s.closed_by().map(|(code, _)| code))
    }

    /// Events at one node.
    pub(crate) fn events(&self, node: usize) -> impl Iterator<Item = &(NodeId, Event)> {
        self.nodes[node].events.iter()
    }
}

//! The application handshake: the first thing said on a labnet connection.
//!
//! TLS has already proven which key each side holds (the NodeId). The handshake
//! adds what TLS does not carry: which protocol version each side speaks, the
//! name it goes by, the role it claims, and, for a node joining through an
//! invite, the invite's secret. Then the accepting side decides.
//!
//! ```text
//!  dialer                                   acceptor
//!  Handshake::dialer(hello)  ──Hello──▶     Handshake::acceptor()
//!                                           handle_bytes → Event::Hello(hello)
//!                                           (the node looks the NodeId up)
//!                           ◀─Welcome──     accept(welcome)
//!  handle_bytes → Event::Welcome            or
//!                           ◀─Refused──     refuse(code, reason), then close
//!  handle_bytes → Event::Refused{code, reason}
//! ```
//!
//! Call order: feed received bytes to `handle_bytes`, then drain `poll_event`
//! and `poll_transmit`. After `Welcome` the stream carries sync frames; bytes that
//! arrived behind the handshake are returned by `into_remaining`.
//!
//! Every refusal carries a [`CloseCode`] (also used to close the QUIC
//! connection) and a reason the other side shows its operator.
//!
//! Names and reasons are shown to an operator, on a terminal and in the
//! console, so they must read as what they are. A string with a character
//! that [`hidden_kind`] flags (a control character, a bidi control, a
//! zero-width or other invisible format character) is refused, not cleaned:
//! the handshake fails with [`CloseCode::Malformed`] and a reason naming the
//! character and its position, and nothing the peer said is stored. Cleaning
//! would store a name its sender never chose, and a node whose config passes
//! `labnet-config`'s check (the same character class, from `labnet-text`)
//! never sends one.
//!
//! ```
//! use labnet_protocol::handshake::{Event, Handshake, Hello, PeerRole, Welcome, PROTOCOL_VERSION};
//!
//! let hello = Hello::new("Modena", PeerRole::Partner);
//! assert_eq!(hello.version, PROTOCOL_VERSION);
//! let mut dialer = Handshake::dialer(hello.clone());
//! let mut acceptor = Handshake::acceptor();
//! // A node writes `poll_transmit`'s bytes to its stream; here both ends are in memory.
//! dialer.transmit_to(&mut acceptor);
//! assert_eq!(acceptor.poll_event(), Some(Event::Hello(hello)));
//! acceptor.accept(Welcome { name: "Mechelen".into(), role: PeerRole::Partner });
//! acceptor.transmit_to(&mut dialer);
//! assert!(matches!(dialer.poll_event(), Some(Event::Welcome(w)) if w.name == "Mechelen"));
//! ```

use std::collections::VecDeque;

use crate::close::CloseCode;
use crate::frame::{encode_frame, FrameDecoder};

/// The character class shown text must not hold, shared with `labnet-config`.
pub use labnet_text::{check_shown_text, hidden_kind, HiddenChar, HiddenKind};

/// The protocol version this code speaks. Version 2 is the signed wire:
/// publications travel with their origin's statements and no Automerge sync
/// message is exchanged. A version 1 node is closed with
/// [`CloseCode::VersionMismatch`], whose reason tells its admin to upgrade.
pub const PROTOCOL_VERSION: u16 = 2;

/// The ALPN protocol id of labnet connections.
pub const ALPN: &[u8] = b"labnet/1";

/// The longest handshake frame: names and reasons are short.
pub const HANDSHAKE_FRAME_LEN_MAX: usize = 1024;

/// The longest node name on the wire, in bytes of UTF-8: room for a name of
/// the config's `NAME_CHARS_MAX` (64) characters at four bytes each, the most
/// UTF-8 takes for one character. This crate cannot see the config's limit, so
/// `labnet-node` checks at compile time that the two agree.
pub const NAME_BYTES_MAX: usize = 256;

/// The longest refusal reason, in bytes of UTF-8.
pub const REASON_LEN_MAX: usize = 512;

/// The length of an invite secret.
pub const INVITE_SECRET_LEN: usize = 32;

const TAG_HELLO: u8 = 1;
const TAG_WELCOME: u8 = 2;
const TAG_REFUSED: u8 = 3;

/// The role a node claims (the accepting admin decides what it gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// A city.
    Partner,
    /// An international network, read-only.
    Subscriber,
}

/// What the dialing node says first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Its protocol version.
    pub version: u16,
    /// Its name (at most [`NAME_BYTES_MAX`] bytes, nothing [`hidden_kind`] flags).
    pub name: String,
    /// The role it claims.
    pub role: PeerRole,
    /// The secret of the invite it is joining with, if any.
    pub invite_secret: Option<[u8; INVITE_SECRET_LEN]>,
}

impl Hello {
    /// The hello of a node speaking this code's [`PROTOCOL_VERSION`] and
    /// joining without an invite (set `invite_secret` for one).
    pub fn new(name: impl Into<String>, role: PeerRole) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            role,
            invite_secret: None,
        }
    }
}

/// The accepting node's answer when it lets the dialer in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: PeerRole,
}

/// What the handshake learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Acceptor: the dialer said hello; decide with `accept` or `refuse`.
    Hello(Hello),
    /// Dialer: we are in.
    Welcome(Welcome),
    /// Dialer: we were refused.
    Refused {
        /// The code.
        code: u32,
        /// The reason, to show the operator.
        reason: String,
    },
    /// The other side's bytes broke the handshake; close with this code.
    Failed {
        /// The code to close with.
        code: CloseCode,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    DialerWaiting,
    AcceptorWaiting,
    AcceptorDeciding,
    Done,
}

/// One side of a handshake; see the module docs.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    decoder: FrameDecoder,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl Handshake {
    /// The dialing side, which speaks first.
    pub fn dialer(hello: Hello) -> Handshake {
        let mut h = Handshake::new(State::DialerWaiting);
        h.send(&encode_hello(&hello));
        h
    }

    /// The accepting side.
    pub fn acceptor() -> Handshake {
        Handshake::new(State::AcceptorWaiting)
    }

    fn new(state: State) -> Handshake {
        Handshake {
            state,
            decoder: FrameDecoder::new(HANDSHAKE_FRAME_LEN_MAX),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    fn send(&mut self, body: &[u8]) {
        let mut out = Vec::with_capacity(body.len() + 4);
        encode_frame(body, &mut out);
        self.transmits.push_back(out);
    }

    fn fail(&mut self, code: CloseCode, reason: impl Into<String>) {
        self.state = State::Done;
        self.events.push_back(Event::Failed {
            code,
            reason: reason.into(),
        });
    }

    /// Feeds bytes received from the other side.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Done | State::AcceptorDeciding) {
            // Bytes after the handshake belong to whoever reads the stream next.
            self.decoder.push(bytes);
            return;
        }
        self.decoder.push(bytes);
        let frame = match self.decoder.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => return self.fail(CloseCode::FrameTooLarge, e.to_string()),
        };
        match (self.state, decode(&frame)) {
            (_, Err(reason)) => self.fail(CloseCode::Malformed, reason),
            (State::AcceptorWaiting, Ok(Message::Hello(hello))) => {
                self.state = State::AcceptorDeciding;
                self.events.push_back(Event::Hello(hello));
            }
            (State::DialerWaiting, Ok(Message::Welcome(welcome))) => {
                self.state = State::Done;
                self.events.push_back(Event::Welcome(welcome));
            }
            (State::DialerWaiting, Ok(Message::Refused { code, reason })) => {
                self.state = State::Done;
                self.events.push_back(Event::Refused { code, reason });
            }
            (_, Ok(_)) => self.fail(CloseCode::Malformed, "unexpected handshake message"),
        }
    }

    /// Acceptor: lets the dialer in.
    pub fn accept(&mut self, welcome: Welcome) {
        if self.state == State::AcceptorDeciding {
            self.state = State::Done;
            self.send(&encode_welcome(&welcome));
        }
    }

    /// Acceptor: refuses the dialer; the caller then closes with `code`.
    pub fn refuse(&mut self, code: CloseCode, reason: &str) {
        if self.state != State::Done {
            self.state = State::Done;
            self.send(&encode_refused(code.as_u32(), reason));
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// Hands everything this side has to send to `other`: for both ends in
    /// one process (examples, tests, fuzzing), where `other` stands for the
    /// stream a node writes [`poll_transmit`](Handshake::poll_transmit)'s
    /// bytes to.
    pub fn transmit_to(&mut self, other: &mut Handshake) {
        while let Some(bytes) = self.poll_transmit() {
            other.handle_bytes(&bytes);
        }
    }

    /// The next thing learned.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes that arrived behind the handshake (the start of the sync stream).
    pub fn into_remaining(self) -> Vec<u8> {
        self.decoder.into_remaining()
    }
}

enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Refused { code: u32, reason: String },
}

fn role_byte(role: PeerRole) -> u8 {
    match role {
        PeerRole::Partner => 1,
        PeerRole::Subscriber => 2,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, max: usize) {
    // Truncate on a character boundary: our own names are validated shorter, so
    // this only guards against a bug producing an unsendable handshake.
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = &s.as_bytes()[..end];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_hello(h: &Hello) -> Vec<u8> {
    let mut out = vec![TAG_HELLO];
    out.extend_from_slice(&h.version.to_be_bytes());
    put_str(&mut out, &h.name, NAME_BYTES_MAX);
    out.push(role_byte(h.role));
    match &h.invite_secret {
        Some(secret) => {
            out.push(1);
            out.extend_from_slice(secret);
        }
        None => out.push(0),
    }
    out
}

fn encode_welcome(w: &Welcome) -> Vec<u8> {
    let mut out = vec![TAG_WELCOME];
    put_str(&mut out, &w.name, NAME_BYTES_MAX);
    out.push(role_byte(w.role));
    out
}

fn encode_refused(code: u32, reason: &str) -> Vec<u8> {
    let mut out = vec![TAG_REFUSED];
    out.extend_from_slice(&code.to_be_bytes());
    put_str(&mut out, reason, REASON_LEN_MAX);
    out
}

/// A bounds-checked reader over one frame.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("handshake message is truncated".into());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, max: usize, what: &str) -> Result<String, String> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(format!("{what} is longer than {max} bytes"));
        }
        let s = std::str::from_utf8(self.take(len)?).map_err(|_| format!("{what} is not UTF-8"))?;
        check_shown_text(s).map_err(|problem| format!("{what} contains {problem}"))?;
        Ok(s.to_string())
    }
    fn role(&mut self) -> Result<PeerRole, String> {
        match self.u8()? {
            1 => Ok(PeerRole::Partner),
            2 => Ok(PeerRole::Subscriber),
            other => Err(format!("unknown role {other}")),
        }
    }
    fn finish(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the handshake message".into())
        }
    }
}

fn decode(frame: &[u8]) -> Result<Message, String> {
    let mut r = Reader { bytes: frame };
    let message = match r.u8()? {
        TAG_HELLO => {
            let version = r.u16()?;
            if version != PROTOCOL_VERSION {
                // Nothing after the version can be trusted to mean the same thing.
                return Ok(Message::Hello(Hello {
                    version,
                    name: String::new(),
                    role: PeerRole::Partner,
                    invite_secret: None,
                }));
            }
            let name = r.string(NAME_BYTES_MAX, "the node name")?;
            if name.trim().is_empty() {
                return Err("the node name is empty".into());
            }
            let role = r.role()?;
            let invite_secret = match r.u8()? {
                0 => None,
                1 => {
                    let mut secret = [0u8; INVITE_SECRET_LEN];
                    secret.copy_from_slice(r.take(INVITE_SECRET_LEN)?);
                    Some(secret)
                }
                other => return Err(format!("unknown invite flag {other}")),
            };
            Message::Hello(Hello {
                version,
                name,
                role,
                invite_secret,
            })
        }
        TAG_WELCOME => {
            let name = r.string(NAME_BYTES_MAX, "the node name")?;
            let role = r.role()?;
            Message::Welcome(Welcome { name, role })
        }
        TAG_REFUSED => {
            let code = r.u32()?;
            let reason = r.string(REASON_LEN_MAX, "the reason")?;
            Message::Refused { code, reason }
        }
        other => return Err(format!("unknown handshake message type {other}")),
    };
    r.finish()?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hello(secret: Option<[u8; 32]>) -> Hello {
        Hello {
            invite_secret: secret,
            ..Hello::new("Pont-de-Claix", PeerRole::Subscriber)
        }
    }

    #[test]
    fn refusal_reaches_the_dialer_with_code_and_reason() {
        let mut d = Handshake::dialer(hello(Some([9; 32])));
        let mut a = Handshake::acceptor();
        d.transmit_to(&mut a);
        assert_eq!(a.poll_event(), Some(Event::Hello(hello(Some([9; 32])))));
        a.refuse(CloseCode::InviteExpired, CloseCode::InviteExpired.reason());
        a.transmit_to(&mut d);
        assert_eq!(
            d.poll_event(),
            Some(Event::Refused {
                code: CloseCode::InviteExpired.as_u32(),
                reason: CloseCode::InviteExpired.reason().into()
            })
        );
    }

    #[test]
    fn another_version_is_reported_as_such() {
        let mut d = Handshake::dialer(Hello {
            version: 7,
            ..hello(None)
        });
        let mut a = Handshake::acceptor();
        d.transmit_to(&mut a);
        assert!(matches!(
            a.poll_event(),
            Some(Event::Hello(Hello { version: 7, .. }))
        ));
    }

    #[test]
    fn bytes_behind_the_handshake_are_kept() {
        let mut d = Handshake::dialer(hello(None));
        let mut a = Handshake::acceptor();
        d.transmit_to(&mut a);
        a.accept(Welcome {
            name: "x".into(),
            role: PeerRole::Partner,
        });
        let mut wire: Vec<u8> = std::iter::from_fn(|| a.poll_transmit()).flatten().collect();
        wire.extend_from_slice(b"sync bytes");
        d.handle_bytes(&wire);
        assert!(matches!(d.poll_event(), Some(Event::Welcome(_))));
        assert_eq!(d.into_remaining(), b"sync bytes");
    }

    /// The code an acceptor fails with on these raw bytes, if it fails.
    fn acceptor_failure(raw: &[u8]) -> Option<CloseCode> {
        let mut a = Handshake::acceptor();
        a.handle_bytes(raw);
        match a.poll_event() {
            Some(Event::Failed { code, .. }) => Some(code),
            _ => None,
        }
    }

    /// The code an acceptor fails with on one frame holding `body`.
    fn acceptor_failure_on_frame(body: &[u8]) -> Option<CloseCode> {
        let mut framed = Vec::new();
        encode_frame(body, &mut framed);
        acceptor_failure(&framed)
    }

    #[test]
    fn malformed_and_oversized_input_fail_with_their_codes() {
        assert_eq!(
            acceptor_failure(&[0, 0, 0, 2, 99, 1]),
            Some(CloseCode::Malformed)
        );
        assert_eq!(
            acceptor_failure(&(HANDSHAKE_FRAME_LEN_MAX as u32 + 1).to_be_bytes()),
            Some(CloseCode::FrameTooLarge)
        );
        // A name with a control character (a terminal escape) is refused.
        assert_eq!(
            acceptor_failure_on_frame(&[TAG_HELLO, 0, 2, 0, 3, b'a', 0x1b, b'b', 1, 0]),
            Some(CloseCode::Malformed)
        );
        // Trailing bytes are refused.
        let mut body = encode_hello(&hello(None));
        body.push(0);
        assert_eq!(acceptor_failure_on_frame(&body), Some(CloseCode::Malformed));
    }

    /// The acceptor's failure on a Hello whose name is `name`.
    fn failure_on_hello_named(name: &str) -> Option<(CloseCode, String)> {
        let mut d = Handshake::dialer(Hello {
            name: name.into(),
            ..hello(None)
        });
        let mut a = Handshake::acceptor();
        d.transmit_to(&mut a);
        match a.poll_event() {
            Some(Event::Failed { code, reason }) => Some((code, reason)),
            _ => None,
        }
    }

    /// A peer that calls itself "Bologna" with a right-to-left override, a
    /// zero-width space or a terminal escape in the name (to read as another
    /// city, or to rewrite the admin's terminal) is refused, the reason naming
    /// the character and where it is.
    #[test]
    fn names_with_bidi_invisible_or_escape_characters_are_refused_with_their_position() {
        for (name, kind, code_point, position) in [
            ("Bo\u{202E}angol", "bidi control", "U+202E", 3),
            ("\u{2067}Modena", "bidi control", "U+2067", 1),
            ("Bolo\u{200B}gna", "invisible character", "U+200B", 5),
            ("Bologna\u{FEFF}", "invisible character", "U+FEFF", 8),
            ("x\u{1b}]0;pwned\u{7}", "control character", "U+001B", 2),
            ("Bo\u{9b}31m", "control character", "U+009B", 3),
        ] {
            let (code, reason) =
                failure_on_hello_named(name).unwrap_or_else(|| panic!("{name:?} was let through"));
            assert_eq!(code, CloseCode::Malformed, "{name:?}");
            assert!(
                reason.contains(kind)
                    && reason.contains(code_point)
                    && reason.contains(&format!("character {position}")),
                "{name:?}: {reason}"
            );
        }
        // Letters of every script the partner cities write, with their accents,
        // pass as they are.
        for name in [
            "Thessaloníki",
            "Fuenlabrada",
            "Θεσσαλονίκη",
            "Київ",
            "Łódź",
            "Mechelen-Zuid",
        ] {
            assert_eq!(failure_on_hello_named(name), None, "{name}");
        }
    }

    /// The dialer holds the acceptor to the same rule: a Welcome naming the
    /// node with a bidi control fails the handshake instead of being shown.
    #[test]
    fn a_welcome_with_a_bidi_name_fails_the_dialer() {
        let mut d = Handshake::dialer(hello(None));
        let mut a = Handshake::acceptor();
        d.transmit_to(&mut a);
        let _ = a.poll_event();
        a.accept(Welcome {
            name: "Modena\u{202D}".into(),
            role: PeerRole::Partner,
        });
        a.transmit_to(&mut d);
        assert!(matches!(
            d.poll_event(),
            Some(Event::Failed { code: CloseCode::Malformed, reason }) if reason.contains("U+202D")
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_either_side(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut a = Handshake::acceptor();
            a.handle_bytes(&bytes);
            while a.poll_event().is_some() {}
            let mut d = Handshake::dialer(hello(None));
            d.handle_bytes(&bytes);
            while d.poll_event().is_some() {}
        }

        #[test]
        fn framed_arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut framed = Vec::new();
            encode_frame(&body, &mut framed);
            let mut a = Handshake::acceptor();
            a.handle_bytes(&framed);
            let _ = a.poll_event();
            let mut d = Handshake::dialer(hello(None));
            d.handle_bytes(&framed);
            let _ = d.poll_event();
        }

        #[test]
        fn hello_round_trips(name in "[a-zA-Z0-9 éü-]{1,60}", secret in proptest::option::of(proptest::array::uniform32(any::<u8>()))) {
            let h = Hello { invite_secret: secret, ..Hello::new(name.trim(), PeerRole::Partner) };
            prop_assume!(!h.name.is_empty());
            let mut d = Handshake::dialer(h.clone());
            let mut a = Handshake::acceptor();
            d.transmit_to(&mut a);
            prop_assert_eq!(a.poll_event(), Some(Event::Hello(h)));
        }
    }
}

//! Who may use the console: login tokens, sessions, and the checks every
//! request passes.
//!
//! The flow, as Jupyter's: `labnet console` asks the daemon (over the admin
//! socket, which only the node's own user can open) for a fresh login token and
//! prints `http://ADDR/login?token=...`. Opening it trades the token (once) for a
//! session cookie (`HttpOnly`, `SameSite=Strict`), and the browser is sent on
//! to the overview. Every page needs the cookie. Every request that changes
//! something is a POST that also carries the session's CSRF token in its form,
//! and comes with an `Origin` matching its `Host`; the `Host` itself must name
//! this console (loopback, or the address it is bound to), which defeats DNS
//! rebinding.
//!
//! Tokens and session ids are 256-bit random values, compared in constant time.
//! Both tables are bounded; the oldest entry makes way for a new one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "labnet_session";

/// How long a login link works: long enough to copy it from a terminal into a
/// browser, short enough that one left in a scrollback is soon worthless.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Unused login tokens kept at once: `labnet console` run again and again must
/// not grow memory.
pub const LOGIN_TOKENS_MAX: usize = 32;

/// How long a session lasts without use: a working day.
pub const SESSION_IDLE_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Sessions kept at once; a steward has a browser or two, not hundreds.
pub const SESSIONS_MAX: usize = 64;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The value every state-changing form must carry.
    pub csrf: String,
    /// Last request, for the idle limit.
    last_used: Instant,
}

#[derive(Debug, Default)]
struct Tables {
    /// Login token -> when it was issued.
    login_tokens: HashMap<String, Instant>,
    /// Session id -> session.
    sessions: HashMap<String, Session>,
}

/// The console's login tokens and sessions. Cloning shares them: the admin
/// operation that issues tokens and the HTTP server that accepts them hold the
/// same tables.
#[derive(Debug, Clone)]
pub struct Access {
    /// Where the console listens, for the login URL and the `Host` check.
    addr: SocketAddr,
    tables: Arc<Mutex<Tables>>,
}

/// A fresh 256-bit random value, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entry of `map` whose key equals `key`, compared in constant time per key
/// (so timing does not reveal how much of a guess was right).
fn find_key<'a, V>(map: &'a HashMap<String, V>, key: &str) -> Option<&'a str> {
    map.keys()
        .find(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())))
        .map(String::as_str)
}

impl Access {
    /// Empty tables for a console bound to `addr`.
    pub fn new(addr: SocketAddr) -> Access {
        Access {
            addr,
            tables: Arc::default(),
        }
    }

    /// The address the console is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh login URL, valid once for [`LOGIN_TOKEN_TTL`].
    pub fn login_url(&self) -> String {
        let token = random_token();
        let mut t = self.tables();
        let now = Instant::now();
        t.login_tokens
            .retain(|_, issued| now.duration_since(*issued) < LOGIN_TOKEN_TTL);
        while t.login_tokens.len() >= LOGIN_TOKENS_MAX {
            let oldest = t
                .login_tokens
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => t.login_tokens.remove(&k),
                None => break,
            };
        }
        t.login_tokens.insert(token.clone(), now);
        let host = if self.addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", self.addr.port())
        } else {
            self.addr.to_string()
        };
        format!("http://{host}/login?token={token}")
    }

    /// Trades a login token for a new session id; `None` when the token is
    /// unknown, used or expired.
    pub fn log_in(&self, token: &str) -> Option<String> {
        let mut t = self.tables();
        let found = find_key(&t.login_tokens, token)?.to_string();
        let issued = t.login_tokens.remove(&found)?;
        if issued.elapsed() >= LOGIN_TOKEN_TTL {
            return None;
        }
        let now = Instant::now();
        t.sessions
            .retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE_TTL);
        while t.sessions.len() >= SESSIONS_MAX {
            let oldest = t
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => t.sessions.remove(&k),
                None => break,
            };
        }
        let id = random_token();
        t.sessions.insert(
            id.clone(),
            Session {
                csrf: random_token(),
                last_used: now,
            },
        );
        Some(id)
    }

    /// The live session with this id, its idle clock restarted.
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut t = self.tables();
        let found = find_key(&t.sessions, id)?.to_string();
        let session = t.sessions.get_mut(&found)?;
        if session.last_used.elapsed() >= SESSION_IDLE_TTL {
            t.sessions.remove(&found);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.clone())
    }

    /// Ends a session (log out).
    pub fn log_out(&self, id: &str) {
        let mut t = self.tables();
        if let Some(found) = find_key(&t.sessions, id).map(str::to_string) {
            t.sessions.remove(&found);
        }
    }

    /// Whether a `Host` header names this console: a loopback name or address
    /// (any port, for SSH port forwarding), or the address it is bound to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        match name {
            "localhost" | "127.0.0.1" | "[::1]" => true,
            _ => {
                !self.addr.ip().is_unspecified()
                    && host.eq_ignore_ascii_case(&self.addr.to_string())
            }
        }
    }
}

/// The name part of a `Host` header (`[::1]` kept in brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

/// Whether a state-changing request's `Origin` is this console as its `Host`
/// names it. A missing `Origin` is refused: every browser that can run the
/// console sends it on POST.
pub fn origin_matches(origin: Option<&str>, host: &str) -> bool {
    origin.is_some_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")))
}

/// Whether a submitted CSRF token is the session's (constant time).
pub fn csrf_matches(session: &Session, submitted: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(submitted.as_bytes()))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value that installs a session.
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new("127.0.0.1:7448".parse().unwrap())
    }

    fn token_of(url: &str) -> &str {
        url.split("token=").nth(1).unwrap()
    }

    #[test]
    fn a_login_token_works_once_and_gives_a_session() {
        let a = access();
        let url = a.login_url();
        assert!(
            url.starts_with("http://127.0.0.1:7448/login?token="),
            "{url}"
        );
        let id = a.log_in(token_of(&url)).expect("first use");
        assert!(a.log_in(token_of(&url)).is_none(), "a token is single-use");
        assert!(a.log_in("").is_none() && a.log_in("00").is_none());
        let s = a.session(&id).expect("session");
        assert!(csrf_matches(&s, &s.csrf.clone()));
        assert!(!csrf_matches(&s, "nope"));
        a.log_out(&id);
        assert!(a.session(&id).is_none());
    }

    #[test]
    fn the_tables_are_bounded() {
        let a = access();
        let urls: Vec<String> = (0..LOGIN_TOKENS_MAX + 5).map(|_| a.login_url()).collect();
        assert_eq!(a.tables().login_tokens.len(), LOGIN_TOKENS_MAX);
        assert!(
            a.log_in(token_of(&urls[0])).is_none(),
            "the oldest made way"
        );
        for _ in 0..SESSIONS_MAX + 3 {
            let url = a.login_url();
            a.log_in(token_of(&url)).unwrap();
        }
        assert_eq!(a.tables().sessions.len(), SESSIONS_MAX);
    }

    #[test]
    fn host_and_origin_checks() {
        let a = access();
        for (host, allowed) in [
            ("127.0.0.1:7448", true),
            ("localhost:9000", true),
            ("[::1]:7448", true),
            ("localhost", true),
            ("evil.example:7448", false),
            ("127.0.0.1.evil.example", false),
            ("10.0.0.1:7448", false),
        ] {
            assert_eq!(a.host_allowed(host), allowed, "{host}");
        }
        for (origin, matches) in [
            (Some("http://127.0.0.1:7448"), true),
            (Some("http://evil.example"), false),
            (None, false),
        ] {
            assert_eq!(
                origin_matches(origin, "127.0.0.1:7448"),
                matches,
                "{origin:?}"
            );
        }
        assert_eq!(
            cookie("a=1; labnet_session=xyz", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("labnet_sessionx=1", SESSION_COOKIE), None);
    }
}

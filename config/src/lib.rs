//! labnet-config: the node's config file, its defaults and its validation.
//!
//! A node's settings live in `config.toml` in its data directory. They are read in
//! two stages, as ripgrep reads its flags:
//!
//! 1. [`RawConfig`]: the file as serde sees it, every value wrapped in
//!    [`toml::Spanned`] so a bad value can be reported with its line. Unknown keys
//!    and wrong types are refused by serde itself (`deny_unknown_fields`).
//! 2. [`Config`]: validated, typed settings (`SocketAddr`, [`Role`], bounded
//!    numbers). Every optional setting has a documented default.
//!
//! Precedence, lowest first: built-in defaults, the file, environment variables
//! (`LABNET_*`, see [`Overrides::from_env`]), command-line flags.
//!
//! [`default_file`] writes the commented file `labnet init` creates, with every
//! setting present at its default, so an operator sees what can be changed.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

/// The UDP port a node listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7447;
/// The listen address a node uses unless told otherwise: every interface.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7447";
/// The smallest count the anonymizer publishes unless told otherwise.
pub const DEFAULT_MIN_COUNT: u32 = 10;
/// The most `anonymization.min_count` may be: a threshold above any count a
/// Policy Lab reports suppresses everything, which is allowed, but a number
/// past a million is a typo.
pub const MIN_COUNT_LIMIT: u32 = 1_000_000;
/// The web console's address with the default `node.listen`: loopback only, so
/// it is reached from elsewhere through SSH port forwarding, never openly.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:7448";
/// What `console.listen` and `feed.listen` take to serve nothing.
pub const LISTEN_OFF: &str = "off";
/// The longest node name, in characters. It travels in every handshake, where
/// the wire's `NAME_BYTES_MAX` (in `labnet-protocol`) holds it at four bytes a
/// character.
pub const NAME_CHARS_MAX: usize = 64;
/// The most words `anonymization.not_names` may list: each is an exception to
/// the name rule that a data steward answers for, so the list stays short
/// enough to review.
pub const NOT_NAMES_MAX: usize = 1000;
/// The longest word `anonymization.not_names` may list, in characters: a word,
/// not a sentence.
pub const NOT_NAME_CHARS_MAX: usize = 64;
/// Copies of one origin's publications a node keeps unless told otherwise. A
/// city publishes its practices: the partner cities of DESIGN.md have 25 each,
/// and a city with a thousand would be a large one. Every origin's copies may
/// also arrive through relays (public ones), so without a cap one origin, or a
/// relay forwarding what one origin signed, could fill the disk.
pub const DEFAULT_REPLICAS_PER_ORIGIN: u32 = 1_000;
/// The most `limits.replicas_per_origin` may be raised to: a million copies of
/// one origin is already more than a network of cities publishes, and the
/// count is kept in memory per origin.
pub const REPLICAS_PER_ORIGIN_LIMIT: u32 = 1_000_000;
/// Stored MiB of one origin's copies a node keeps unless told otherwise. A
/// practice-sized publication is a few KiB to tens of KiB with its history, so
/// 1,000 of them fit in 64 MiB many times over; one delivery is at most 8 MiB,
/// so an origin must also be stopped by bytes before its count runs out.
pub const DEFAULT_REPLICA_MIB_PER_ORIGIN: u32 = 64;
/// The most `limits.replica_mib_per_origin` may be raised to (64 GiB): the
/// cap is there to keep one origin from filling a city's disk.
pub const REPLICA_MIB_PER_ORIGIN_LIMIT: u32 = 65_536;

/// What kind of node this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A city: keeps lab data, shares and receives publications.
    Partner,
    /// An international network: receives public publications, read-only.
    Subscriber,
}

impl Role {
    /// The role's name as written in config files, flags and the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Partner => "partner",
            Role::Subscriber => "subscriber",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str, so tables can align roles with `{:<10}`.
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "partner" => Ok(Role::Partner),
            "subscriber" => Ok(Role::Subscriber),
            other => Err(format!(
                "'{other}' is not a role: use partner or subscriber"
            )),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event, for a terminal or journald.
    Human,
    /// One JSON object per event, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("'{other}' is not a log format: use human or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// The config file as written, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[node]`: who this node is and where it listens.
    #[serde(default)]
    pub node: RawNode,
    /// `[log]`: how it logs.
    #[serde(default)]
    pub log: RawLog,
    /// `[anonymization]`: what may leave the node.
    #[serde(default)]
    pub anonymization: RawAnonymization,
    /// `[console]`: the local web console and `/metrics`.
    #[serde(default)]
    pub console: RawListener,
    /// `[feed]`: the read-only feed URLs.
    #[serde(default)]
    pub feed: RawListener,
    /// `[limits]`: how much of other origins' data the node keeps.
    #[serde(default)]
    pub limits: RawLimits,
}

/// The `[limits]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Copies of one origin's publications kept at most.
    pub replicas_per_origin: Option<Spanned<i64>>,
    /// Stored MiB of one origin's copies kept at most.
    pub replica_mib_per_origin: Option<Spanned<i64>>,
}

/// A `[console]` or `[feed]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// `IP:PORT` to serve HTTP on (TCP), or `off`.
    pub listen: Option<Spanned<String>>,
}

/// The `[node]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Shown to peers and operators.
    pub name: Option<Spanned<String>>,
    /// `partner` or `subscriber`.
    pub role: Option<Spanned<String>>,
    /// `IP:PORT` to listen on for peers (UDP, QUIC).
    pub listen: Option<Spanned<String>>,
    /// `HOST:PORT` peers should dial, when it differs from `listen`.
    pub advertise: Option<Spanned<String>>,
}

/// The `[log]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `human` or `json`.
    pub format: Option<Spanned<String>>,
}

/// The `[anonymization]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnonymization {
    /// Counts below this are not published.
    pub min_count: Option<Spanned<i64>>,
    /// Words that merely look like a name, exempted from the name rule.
    pub not_names: Option<Spanned<Vec<String>>>,
}

/// Validated node settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The node's name, shown to peers; 1 to [`NAME_CHARS_MAX`] characters,
    /// none of which [`hidden_kind`] flags.
    pub name: String,
    /// Partner (a city) or subscriber (a network).
    pub role: Role,
    /// Where the node listens for peers. Default [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// What peers are told to dial (`host:port`). When absent, the listen address,
    /// with the host name in place of an unspecified IP.
    pub advertise: Option<String>,
    /// How logs are written. Default human.
    pub log_format: LogFormat,
    /// Counts (and denominators of percentages) below this are suppressed from
    /// publications. Default [`DEFAULT_MIN_COUNT`]; at least 1.
    pub min_count: u32,
    /// Words a data steward declared are not names although a known person
    /// bears them (a family name "Green" and the "green spaces" of a practice):
    /// the anonymizer leaves them where they stand alone, and the preview says
    /// so. A whole name is still removed. Default: none, so every part of every
    /// known name is removed. Set in the file only, never by an environment
    /// variable or a flag: an exemption is a decision a steward writes down.
    /// Each a single word of 1 to [`NOT_NAME_CHARS_MAX`] characters, at most
    /// [`NOT_NAMES_MAX`] of them.
    pub not_names: Vec<String>,
    /// Where the web console and `/metrics` listen (TCP); `None` when `off`.
    /// Default: see [`default_console_listen`].
    pub console_listen: Option<SocketAddr>,
    /// Where the read-only feed URLs listen (TCP); `None` (the default) when `off`.
    pub feed_listen: Option<SocketAddr>,
    /// `[limits]`: how much of other origins' data the node keeps.
    pub limits: Limits,
}

/// How much of other origins' data a node keeps (`[limits]`). Set in the file
/// only: raising what a peer may make this node store is a decision an
/// operator writes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Copies of one origin's publications kept at most; a new one beyond is
    /// refused. Default [`DEFAULT_REPLICAS_PER_ORIGIN`], 1 to
    /// [`REPLICAS_PER_ORIGIN_LIMIT`].
    pub replicas_per_origin: u32,
    /// Stored bytes of one origin's copies kept at most, from
    /// `limits.replica_mib_per_origin` (default
    /// [`DEFAULT_REPLICA_MIB_PER_ORIGIN`] MiB, 1 to
    /// [`REPLICA_MIB_PER_ORIGIN_LIMIT`]).
    pub replica_bytes_per_origin: u64,
}

/// Why a config could not be used. Every variant names the key and, when it came
/// from the file, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("{file}: line {line}: {message}")]
    Syntax {
        /// Where the config came from.
        file: String,
        /// 1-based line.
        line: usize,
        /// What toml/serde said, which names the key and what it expected.
        message: String,
    },
    /// A value has the right type but is not allowed.
    #[error("{source_name}: {key} = {value:?}: {problem}")]
    Invalid {
        /// Where the value came from: `config.toml line 3`, `LABNET_LISTEN`, `--listen`.
        source_name: String,
        /// The key, as `table.key`.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong and what would be valid.
        problem: String,
    },
}

/// Settings given outside the file: environment variables or flags. `None` leaves
/// the setting as the file (or default) has it.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Where these came from, for error messages (`environment`, `command line`).
    pub origin: OverrideOrigin,
    /// Overrides `node.name`.
    pub name: Option<String>,
    /// Overrides `node.role`.
    pub role: Option<String>,
    /// Overrides `node.listen`.
    pub listen: Option<String>,
    /// Overrides `node.advertise`.
    pub advertise: Option<String>,
    /// Overrides `log.format`.
    pub log_format: Option<String>,
    /// Overrides `anonymization.min_count`.
    pub min_count: Option<String>,
}

/// Where a set of overrides came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OverrideOrigin {
    /// `LABNET_*` environment variables.
    #[default]
    Environment,
    /// Command-line flags.
    CommandLine,
}

impl Overrides {
    /// Reads `LABNET_NAME`, `LABNET_ROLE`, `LABNET_LISTEN`, `LABNET_ADVERTISE`,
    /// `LABNET_LOG_FORMAT` and `LABNET_MIN_COUNT`.
    pub fn from_env() -> Overrides {
        Overrides::from_lookup(|key| std::env::var(key).ok())
    }

    /// As [`Overrides::from_env`], from any lookup (tests use a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Overrides {
        Overrides {
            origin: OverrideOrigin::Environment,
            name: lookup("LABNET_NAME"),
            role: lookup("LABNET_ROLE"),
            listen: lookup("LABNET_LISTEN"),
            advertise: lookup("LABNET_ADVERTISE"),
            log_format: lookup("LABNET_LOG_FORMAT"),
            min_count: lookup("LABNET_MIN_COUNT"),
        }
    }

    fn source_name(&self, env: &str, flag: &str) -> String {
        match self.origin {
            OverrideOrigin::Environment => env.to_string(),
            OverrideOrigin::CommandLine => flag.to_string(),
        }
    }
}

/// Where a value being validated came from.
struct Origin {
    name: String,
}

impl Config {
    /// Parses and validates a config file's text. `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Config, ConfigError> {
        Config::load(file, text, &[])
    }

    /// Parses the file, then applies each set of overrides in order (environment
    /// before command line), then validates everything.
    pub fn load(file: &str, text: &str, overrides: &[Overrides]) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
        let at = |span: std::ops::Range<usize>| Origin {
            name: format!("{file} line {}", line_of(text, span.start)),
        };
        let default_origin = || Origin {
            name: format!("{file} (default)"),
        };

        let mut name = raw
            .node
            .name
            .map(|s| (at(s.span()), s.into_inner()))
            .unwrap_or_else(|| (default_origin(), String::new()));
        let mut role = raw
            .node
            .role
            .map(|s| (at(s.span()), s.into_inner()))
            .unwrap_or_else(|| (default_origin(), "partner".to_string()));
        let mut listen = raw
            .node
            .listen
            .map(|s| (at(s.span()), s.into_inner()))
            .unwrap_or_else(|| (default_origin(), DEFAULT_LISTEN.to_string()));
        let mut advertise = raw.node.advertise.map(|s| (at(s.span()), s.into_inner()));
        let mut log_format = raw
            .log
            .format
            .map(|s| (at(s.span()), s.into_inner()))
            .unwrap_or_else(|| (default_origin(), "human".to_string()));
        let mut min_count = raw
            .anonymization
            .min_count
            .map(|s| (at(s.span()), s.into_inner().to_string()))
            .unwrap_or_else(|| (default_origin(), DEFAULT_MIN_COUNT.to_string()));
        let console_listen = raw.console.listen.map(|s| (at(s.span()), s.into_inner()));
        let feed_listen = raw
            .feed
            .listen
            .map(|s| (at(s.span()), s.into_inner()))
            .unwrap_or_else(|| (default_origin(), LISTEN_OFF.to_string()));
        let limit = |value: Option<Spanned<i64>>, default: u32| {
            value
                .map(|s| (at(s.span()), s.into_inner().to_string()))
                .unwrap_or_else(|| (default_origin(), default.to_string()))
        };
        let replicas_per_origin =
            limit(raw.limits.replicas_per_origin, DEFAULT_REPLICAS_PER_ORIGIN);
        let replica_mib_per_origin = limit(
            raw.limits.replica_mib_per_origin,
            DEFAULT_REPLICA_MIB_PER_ORIGIN,
        );

        for o in overrides {
            let origin = |env: &str, flag: &str| Origin {
                name: o.source_name(env, flag),
            };
            if let Some(v) = &o.name {
                name = (origin("LABNET_NAME", "--name"), v.clone());
            }
            if let Some(v) = &o.role {
                role = (origin("LABNET_ROLE", "--role"), v.clone());
            }
            if let Some(v) = &o.listen {
                listen = (origin("LABNET_LISTEN", "--listen"), v.clone());
            }
            if let Some(v) = &o.advertise {
                advertise = Some((origin("LABNET_ADVERTISE", "--advertise"), v.clone()));
            }
            if let Some(v) = &o.log_format {
                log_format = (origin("LABNET_LOG_FORMAT", "--log-format"), v.clone());
            }
            if let Some(v) = &o.min_count {
                min_count = (origin("LABNET_MIN_COUNT", "--min-count"), v.clone());
            }
        }

        let not_names = match raw.anonymization.not_names {
            Some(words) => {
                let origin = at(words.span());
                let words = words.into_inner();
                parse_not_names(&words).map_err(|problem| ConfigError::Invalid {
                    source_name: origin.name,
                    key: "anonymization.not_names",
                    value: format!("{words:?}"),
                    problem,
                })?
            }
            None => Vec::new(),
        };

        let listen = validate_with(listen, "node.listen", parse_listen)?;
        let console_listen = console_listen.unwrap_or_else(|| {
            (
                default_origin(),
                default_console_listen(&listen.to_string()),
            )
        });
        Ok(Config {
            name: validate_name(name)?,
            role: validate_with(role, "node.role", |v| v.parse::<Role>())?,
            listen,
            advertise: advertise
                .map(|a| validate_with(a, "node.advertise", parse_advertise))
                .transpose()?,
            log_format: validate_with(log_format, "log.format", |v| v.parse::<LogFormat>())?,
            min_count: validate_with(min_count, "anonymization.min_count", |v| {
                parse_count_up_to(v, MIN_COUNT_LIMIT, "10")
            })?,
            not_names,
            console_listen: validate_with(console_listen, "console.listen", parse_http_listen)?,
            feed_listen: validate_with(feed_listen, "feed.listen", parse_http_listen)?,
            limits: Limits {
                replicas_per_origin: validate_with(
                    replicas_per_origin,
                    "limits.replicas_per_origin",
                    |v| parse_count_up_to(v, REPLICAS_PER_ORIGIN_LIMIT, "1000"),
                )?,
                replica_bytes_per_origin: u64::from(validate_with(
                    replica_mib_per_origin,
                    "limits.replica_mib_per_origin",
                    |v| parse_count_up_to(v, REPLICA_MIB_PER_ORIGIN_LIMIT, "64"),
                )?) << 20,
            },
        })
    }

    /// The address peers should dial to reach this node, as `host:port`.
    ///
    /// `bound` is the address the running daemon actually bound, which differs
    /// from `listen` when the configured port is 0.
    pub fn contact_address(&self, host_name: &str, bound: Option<SocketAddr>) -> String {
        if let Some(a) = &self.advertise {
            return a.clone();
        }
        let addr = bound.unwrap_or(self.listen);
        if addr.ip().is_unspecified() {
            format!("{host_name}:{}", addr.port())
        } else {
            addr.to_string()
        }
    }
}

fn validate_with<T>(
    (origin, value): (Origin, String),
    key: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parse(&value).map_err(|problem| ConfigError::Invalid {
        source_name: origin.name,
        key,
        value,
        problem,
    })
}

fn validate_name(name: (Origin, String)) -> Result<String, ConfigError> {
    validate_with(name, "node.name", |v| {
        let trimmed = v.trim();
        if trimmed.is_empty() {
            Err(
                "the name is empty: give the city's or network's name, e.g. name = \"Modena\""
                    .into(),
            )
        } else if trimmed.chars().count() > NAME_CHARS_MAX {
            Err(format!(
                "the name is longer than {NAME_CHARS_MAX} characters"
            ))
        } else if let Some(hidden) = first_hidden(v) {
            Err(format!(
                "the name contains {hidden}: a name is printable text, \
                 since peers show it to their admins as it is"
            ))
        } else {
            Ok(trimmed.to_string())
        }
    })
}

/// The character class a node name must not hold: the one
/// `labnet_protocol::handshake` refuses a peer's Hello for, from the same
/// crate, so a name this config lets through is one every peer accepts.
pub use labnet_text::{hidden_kind, HiddenKind};

/// The first character of the name between its leading and trailing blanks
/// (which are trimmed, not refused) that [`hidden_kind`] flags, with its
/// position in the name as given, counted from 1.
fn first_hidden(given: &str) -> Option<labnet_text::HiddenChar> {
    let leading = given.chars().take_while(|c| c.is_whitespace()).count();
    labnet_text::check_shown_text(given.trim())
        .err()
        .map(|hidden| labnet_text::HiddenChar {
            position: leading + hidden.position,
            ..hidden
        })
}

fn parse_listen(v: &str) -> Result<SocketAddr, String> {
    if let Some((_, port)) = v.rsplit_once(':') {
        if let Ok(n) = port.parse::<u64>() {
            if n > u64::from(u16::MAX) {
                return Err(format!(
                    "port {n} is out of range: use 1-65535 (or 0 for any free port)"
                ));
            }
        }
    }
    v.parse::<SocketAddr>()
        .map_err(|_| "not an IP:PORT address: use e.g. 0.0.0.0:7447 or [::]:7447".to_string())
}

/// The console's address when the file does not set one: loopback, on the port
/// after `node.listen`'s (so [`DEFAULT_CONSOLE_LISTEN`] with the default
/// [`DEFAULT_LISTEN`], and nodes side by side on one machine do not collide), or
/// any free port when `node.listen`'s port is 0 (tests and the demo).
pub fn default_console_listen(node_listen: &str) -> String {
    match node_listen.parse::<SocketAddr>().map(|a| a.port()) {
        Ok(0) => "127.0.0.1:0".to_string(),
        Ok(port) => format!("127.0.0.1:{}", port.checked_add(1).unwrap_or(0)),
        Err(_) => DEFAULT_CONSOLE_LISTEN.to_string(),
    }
}

/// An HTTP listener's address: `IP:PORT`, or `off`.
fn parse_http_listen(v: &str) -> Result<Option<SocketAddr>, String> {
    if v.trim().eq_ignore_ascii_case(LISTEN_OFF) {
        return Ok(None);
    }
    parse_listen(v)
        .map(Some)
        .map_err(|_| "not an IP:PORT address or \"off\": use e.g. 127.0.0.1:7448".to_string())
}

fn parse_advertise(v: &str) -> Result<String, String> {
    let (host, port) = v.rsplit_once(':').ok_or_else(|| {
        "not a HOST:PORT address: use e.g. labnet.modena.example:7447".to_string()
    })?;
    let port: u32 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port: use 1-65535"))?;
    if port == 0 || port > u32::from(u16::MAX) {
        return Err(format!("port {port} is out of range: use 1-65535"));
    }
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c == '/')
    {
        return Err("the host part is empty or has spaces, '@' or '/'".into());
    }
    Ok(v.to_string())
}

/// A whole number from 1 to `max`; `example` is shown when it is not one.
fn parse_count_up_to(v: &str, max: u32, example: &str) -> Result<u32, String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (1..=i64::from(max)).contains(&n) => Ok(n as u32),
        Ok(n) => Err(format!(
            "{n} is out of range: use a whole number from 1 to {max}"
        )),
        Err(_) => Err(format!("not a whole number: use e.g. {example}")),
    }
}

/// The exempted words: single words, trimmed.
fn parse_not_names(words: &[String]) -> Result<Vec<String>, String> {
    let words: Vec<String> = words.iter().map(|w| w.trim().to_string()).collect();
    if words.len() > NOT_NAMES_MAX {
        return Err(format!(
            "{} words: list at most {NOT_NAMES_MAX}",
            words.len()
        ));
    }
    for w in &words {
        if w.is_empty() {
            return Err("an empty word: list single words, e.g. [\"green\", \"rosa\"]".into());
        }
        if w.chars().count() > NOT_NAME_CHARS_MAX {
            return Err(format!(
                "a word is longer than {NOT_NAME_CHARS_MAX} characters"
            ));
        }
        if w.chars()
            .any(|c| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        {
            return Err(format!(
                "'{w}' is not a single word (letters only): a whole name cannot be exempted"
            ));
        }
    }
    Ok(words)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|t| t.matches('\n').count() + 1)
        .unwrap_or(1)
}

fn syntax_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
    ConfigError::Syntax {
        file: file.to_string(),
        line,
        message: e.message().to_string(),
    }
}

/// The commented config file that `labnet init` writes: every setting at its
/// default (or the values given to `init`), with what it means.
pub fn default_file(name: &str, role: Role, listen: &str) -> String {
    let name = toml::Value::String(name.to_string()).to_string();
    let console = default_console_listen(listen);
    format!(
        r#"# labnet node configuration.
# Environment variables (LABNET_NAME, LABNET_ROLE, LABNET_LISTEN, LABNET_ADVERTISE,
# LABNET_LOG_FORMAT, LABNET_MIN_COUNT) override this file; command-line flags
# override both. `labnet run` refuses to start if a key is unknown or invalid.

[node]
# Shown to peers in the handshake and to their operators. 1-{NAME_CHARS_MAX} characters
# of printable text: no control, bidi or zero-width characters.
name = {name}
# partner: a city that keeps lab data and shares publications.
# subscriber: an international network that receives public publications only.
role = "{role}"
# UDP address (QUIC) where peers reach this node. Default "{DEFAULT_LISTEN}".
listen = "{listen}"
# HOST:PORT to put in contact strings and invites when peers must dial something
# other than the listen address (NAT, DNS name). Default: the listen address, with
# this machine's host name in place of 0.0.0.0.
# advertise = "labnet.example.org:{DEFAULT_PORT}"

[log]
# human (default) or json. RUST_LOG filters what is logged, e.g. RUST_LOG=debug.
format = "human"

[anonymization]
# Counts of people below this, and percentages whose numerator, denominator or
# remainder is below this, are never published; counts at or above it are
# published rounded to a multiple of it. Default {DEFAULT_MIN_COUNT}.
min_count = {DEFAULT_MIN_COUNT}
# Words that merely look like a name of someone on the roster or in a contact
# (a family name "Green" and the "green spaces" of a practice). Only a data
# steward should list one: an exempted word is left in published text where it
# stands alone, and `labnet share preview` says where. Default: none.
# not_names = ["green"]

[console]
# TCP address of the web console and of /metrics, or "off". `labnet console`
# prints its URL with a login token. Keep it on loopback and reach it from
# elsewhere with SSH port forwarding (ssh -L 7448:127.0.0.1:7448 HOST). /metrics
# needs no token: it is read-only. Default: 127.0.0.1 on the port after
# node.listen's ("{DEFAULT_CONSOLE_LISTEN}" with the default), any free port when
# node.listen's port is 0.
listen = "{console}"

[feed]
# TCP address of the read-only feed URLs (/feed.atom, /feed.json, /feed.csv,
# with ?city=&area=&since=) for feed readers, or "off" (the default). Anyone who
# reaches it reads the feed: it holds only publications, e.g. "0.0.0.0:7449".
listen = "{LISTEN_OFF}"

[limits]
# How much of other origins' data this node keeps. A peer's publications beyond
# either limit are refused (the sync notice and log say so); raise them only
# for a network whose cities publish more. Not set by environment variables.
# Copies of one origin's publications, 1-{REPLICAS_PER_ORIGIN_LIMIT}. Default {DEFAULT_REPLICAS_PER_ORIGIN}.
replicas_per_origin = {DEFAULT_REPLICAS_PER_ORIGIN}
# Stored MiB of one origin's copies, 1-{REPLICA_MIB_PER_ORIGIN_LIMIT}. Default {DEFAULT_REPLICA_MIB_PER_ORIGIN}.
replica_mib_per_origin = {DEFAULT_REPLICA_MIB_PER_ORIGIN}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> String {
        default_file(name, Role::Partner, DEFAULT_LISTEN)
    }

    #[test]
    fn default_file_parses_to_defaults() {
        let c = Config::from_toml("config.toml", &file("Modena")).unwrap();
        assert_eq!(c.name, "Modena");
        assert_eq!(c.role, Role::Partner);
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.min_count, DEFAULT_MIN_COUNT);
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.advertise, None);
    }

    #[test]
    fn names_with_quotes_are_escaped() {
        let c = Config::from_toml("c", &file("Vienna \"7th\" district")).unwrap();
        assert_eq!(c.name, "Vienna \"7th\" district");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[node]\nname = \"A\"\nlisten_addr = \"1.2.3.4:5\"\n";
        let err = Config::from_toml("config.toml", text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("listen_addr"), "{msg}");
        assert!(msg.contains("listen"), "valid keys should be listed: {msg}");
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let text = "[node]\nname = \"A\"\n\n[anonymization]\nmin_count = \"ten\"\n";
        let msg = Config::from_toml("config.toml", text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 5"), "{msg}");
    }

    #[test]
    fn invalid_values_name_key_line_and_what_is_valid() {
        let cases = [
            (
                "[node]\nname = \"A\"\nlisten = \"0.0.0.0:70000\"\n",
                "node.listen",
                "line 3",
                "1-65535",
            ),
            (
                "[node]\nname = \"A\"\nlisten = \"nowhere\"\n",
                "node.listen",
                "line 3",
                "IP:PORT",
            ),
            ("[node]\nname = \"  \"\n", "node.name", "line 2", "empty"),
            (
                "[node]\nname = \"A\"\nrole = \"admin\"\n",
                "node.role",
                "line 3",
                "partner or subscriber",
            ),
            (
                "[node]\nname = \"A\"\n[anonymization]\nmin_count = 0\n",
                "anonymization.min_count",
                "line 4",
                "1 to",
            ),
            (
                "[node]\nname = \"A\"\n[log]\nformat = \"xml\"\n",
                "log.format",
                "line 4",
                "human or json",
            ),
            (
                "[node]\nname = \"A\"\n[limits]\nreplicas_per_origin = 0\n",
                "limits.replicas_per_origin",
                "line 4",
                "from 1 to 1000000",
            ),
            (
                "[node]\nname = \"A\"\n[limits]\n\nreplicas_per_origin = 1000001\n",
                "limits.replicas_per_origin",
                "line 5",
                "from 1 to 1000000",
            ),
            (
                "[node]\nname = \"A\"\n[limits]\nreplica_mib_per_origin = 65537\n",
                "limits.replica_mib_per_origin",
                "line 4",
                "from 1 to 65536",
            ),
        ];
        for (text, key, line, hint) in cases {
            let msg = Config::from_toml("config.toml", text)
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key), "{key}: {msg}");
            assert!(msg.contains(line), "{key}: {msg}");
            assert!(msg.contains(hint), "{key}: {msg}");
        }
    }

    /// A node name that would rewrite a peer admin's terminal (an escape
    /// sequence) or read as another city there (a bidi override, a zero-width
    /// space) is refused, from the file and from an override alike, the error
    /// naming the character and its position in the name as given.
    #[test]
    fn names_with_control_bidi_or_zero_width_characters_are_refused_with_their_position() {
        for (name, expected) in [
            ("Bo\u{202E}angol", "a bidi control (U+202E) at character 3"),
            ("Modena\u{2066}", "a bidi control (U+2066) at character 7"),
            (
                "Mo\u{200B}dena",
                "an invisible character (U+200B) at character 3",
            ),
            (
                "x\u{1b}]0;pwned\u{7}",
                "a control character (U+001B) at character 2",
            ),
            ("Bo\tlogna", "a control character (U+0009) at character 3"),
        ] {
            let text = file(name);
            let err = Config::from_toml("config.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("node.name") && err.contains(expected),
                "{name:?}: {err}"
            );
            let over = Overrides {
                origin: OverrideOrigin::Environment,
                name: Some(name.to_string()),
                ..Overrides::default()
            };
            let err = Config::load("config.toml", &file("Modena"), &[over])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("LABNET_NAME") && err.contains(expected),
                "{name:?}: {err}"
            );
        }
        // Leading blanks are trimmed and do not shift the count off the name as given.
        let over = Overrides {
            origin: OverrideOrigin::Environment,
            name: Some("  Mo\u{200D}dena".into()),
            ..Overrides::default()
        };
        let err = Config::load("config.toml", &file("Modena"), &[over]).unwrap_err();
        assert!(err.to_string().contains("at character 5"), "{err}");
        for name in [
            "Thessaloníki",
            "Θεσσαλονίκη",
            "Київ",
            "Pont-de-Claix",
            " Łódź ",
        ] {
            let config = Config::from_toml("config.toml", &file(name)).unwrap();
            assert_eq!(config.name, name.trim());
        }
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let text = file("FromFile");
        let env = Overrides::from_lookup(|k| match k {
            "LABNET_NAME" => Some("FromEnv".into()),
            "LABNET_LISTEN" => Some("127.0.0.1:9000".into()),
            _ => None,
        });
        let flags = Overrides {
            origin: OverrideOrigin::CommandLine,
            listen: Some("127.0.0.1:9001".into()),
            ..Overrides::default()
        };
        let c = Config::load("c", &text, std::slice::from_ref(&env)).unwrap();
        assert_eq!(c.name, "FromEnv");
        assert_eq!(c.listen.port(), 9000);
        let c = Config::load("c", &text, &[env, flags]).unwrap();
        assert_eq!(
            c.name, "FromEnv",
            "a flag that is not given leaves the env value"
        );
        assert_eq!(c.listen.port(), 9001);
    }

    #[test]
    fn bad_override_names_its_source() {
        let env = Overrides::from_lookup(|k| (k == "LABNET_MIN_COUNT").then(|| "-3".to_string()));
        let msg = Config::load("c", &file("A"), &[env])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("LABNET_MIN_COUNT"), "{msg}");
        let flags = Overrides {
            origin: OverrideOrigin::CommandLine,
            listen: Some("x".into()),
            ..Overrides::default()
        };
        let msg = Config::load("c", &file("A"), &[flags])
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("--listen"), "{msg}");
    }

    #[test]
    fn not_names_are_single_words_from_the_file_only() {
        let c = Config::from_toml("c", &file("A")).unwrap();
        assert!(c.not_names.is_empty());
        let text = "[node]\nname = \"A\"\n[anonymization]\nnot_names = [\"green\", \"Rosa\"]\n";
        let c = Config::from_toml("c", text).unwrap();
        assert_eq!(c.not_names, ["green", "Rosa"]);
        for bad in ["[\"Rosa Green\"]", "[\"\"]", "[\"a@b\"]"] {
            let text = format!("[node]\nname = \"A\"\n[anonymization]\nnot_names = {bad}\n");
            let msg = Config::from_toml("config.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(msg.contains("anonymization.not_names"), "{msg}");
            assert!(msg.contains("line 4"), "{msg}");
        }
    }

    #[test]
    fn contact_address_replaces_unspecified_ip_with_host() {
        let c = Config::from_toml("c", &file("A")).unwrap();
        assert_eq!(c.contact_address("modena-lab", None), "modena-lab:7447");
        let bound = "0.0.0.0:9999".parse().ok();
        assert_eq!(c.contact_address("modena-lab", bound), "modena-lab:9999");
        let text = "[node]\nname = \"A\"\nadvertise = \"lab.example.org:9\"\n";
        let c = Config::from_toml("c", text).unwrap();
        assert_eq!(c.contact_address("h", None), "lab.example.org:9");
    }

    /// The replica quota is the default unless the file raises (or lowers) it;
    /// MiB become bytes; no override can touch it; a wrong type names its line.
    #[test]
    fn limits_default_and_set_in_the_file() {
        let c = Config::from_toml("c", &file("A")).unwrap();
        assert_eq!(c.limits.replicas_per_origin, DEFAULT_REPLICAS_PER_ORIGIN);
        assert_eq!(
            c.limits.replica_bytes_per_origin,
            u64::from(DEFAULT_REPLICA_MIB_PER_ORIGIN) << 20
        );
        let bare = Config::from_toml("c", "[node]\nname = \"A\"\n").unwrap();
        assert_eq!(
            bare.limits, c.limits,
            "a file without [limits] gets what `init` writes"
        );
        let text = "[node]\nname = \"A\"\n[limits]\nreplicas_per_origin = 20000\nreplica_mib_per_origin = 65536\n";
        let c = Config::from_toml("c", text).unwrap();
        assert_eq!(c.limits.replicas_per_origin, 20_000);
        assert_eq!(c.limits.replica_bytes_per_origin, 64 << 30);
        let text = "[node]\nname = \"A\"\n[limits]\nreplicas_per_origin = \"many\"\n";
        let msg = Config::from_toml("c", text).unwrap_err().to_string();
        assert!(msg.contains("line 4"), "{msg}");
        let text = "[node]\nname = \"A\"\n[limits]\nreplicas = 5\n";
        let msg = Config::from_toml("c", text).unwrap_err().to_string();
        assert!(msg.contains("replicas") && msg.contains("line 4"), "{msg}");
    }

    #[test]
    fn console_and_feed_listen_defaults_off_and_bad_values() {
        let c = Config::from_toml("c", &file("A")).unwrap();
        assert_eq!(c.console_listen, DEFAULT_CONSOLE_LISTEN.parse().ok());
        assert_eq!(c.feed_listen, None, "the feed URLs are off by default");
        let c = Config::from_toml("c", &default_file("A", Role::Partner, "127.0.0.1:0")).unwrap();
        assert_eq!(c.console_listen, "127.0.0.1:0".parse().ok());
        let c =
            Config::from_toml("c", "[node]\nname = \"A\"\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        assert_eq!(c.console_listen, "127.0.0.1:9001".parse().ok());
        let text = "[node]\nname = \"A\"\n[console]\nlisten = \"off\"\n[feed]\nlisten = \"127.0.0.1:7449\"\n";
        let c = Config::from_toml("c", text).unwrap();
        assert_eq!(c.console_listen, None);
        assert_eq!(c.feed_listen, "127.0.0.1:7449".parse().ok());
        let msg = Config::from_toml("c", "[node]\nname = \"A\"\n[feed]\nlisten = \"on\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("feed.listen") && msg.contains("line 4"),
            "{msg}"
        );
    }
}

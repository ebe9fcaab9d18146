//! Logging setup: tracing to stderr, filtered by `RUST_LOG`, human or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `format` is `human` (default) or `json`, from
/// the flag, else `LABNET_LOG_FORMAT`, else the config file (see `main`).
/// `default_level` applies when `RUST_LOG` is unset: the daemon logs at info, a
/// one-shot command only warns, so its output stays what the user asked for.
pub(crate) fn init(flag: Option<&str>, config_file: Option<&str>, default_level: &str) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Whatever RUST_LOG says: these crates log document contents (see the doc).
    for directive in labnet_node::daemon::FORCED_LOG_DIRECTIVES {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let format = flag
        .map(str::to_string)
        .or_else(|| std::env::var("LABNET_LOG_FORMAT").ok())
        .or_else(|| config_file.map(str::to_string))
        .unwrap_or_default();
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format.eq_ignore_ascii_case("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

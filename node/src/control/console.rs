//! `console`: a fresh login link for the web console, as `labnet console`
//! prints it. Only the running daemon can give one (it holds the sessions), and
//! only over the admin socket, which only the node's own user can open.

use super::{Control, ControlError};
use crate::api::ConsoleLogin;

impl Control {
    /// A login link for the console, valid once.
    pub fn console_login(&self) -> Result<ConsoleLogin, ControlError> {
        let Some(live) = &self.live else {
            return Err(ControlError::NeedsDaemon("console"));
        };
        live.console_login_url()
            .map(|url| ConsoleLogin { url })
            .ok_or_else(|| {
                ControlError::BadInput(
                    "the console is off: set console.listen in config.toml (e.g. \"127.0.0.1:7448\") and restart the daemon".into(),
                )
            })
    }
}

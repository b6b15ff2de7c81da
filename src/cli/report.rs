//! Everything herald prints for people that is not a command's result: errors, warnings,
//! and the logs, with one rule for colour and every text scrubbed of secrets.
//!
//! Colour: on when stderr is a terminal, unless `NO_COLOR` is set to anything but an empty
//! string (<https://no-color.org>). The logs follow the same rule.

use std::fmt::Display;
use std::io::{IsTerminal as _, Write as _};

use crate::secret::scrub;

/// Whether stderr gets colour.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn prefixed(label: &str, code: &str, message: impl Display) {
    let message = message.to_string();
    let prefix = if colour() {
        format!("\x1b[1;{code}m{label}\x1b[0m:")
    } else {
        format!("{label}:")
    };
    let _ = writeln!(std::io::stderr(), "{prefix} {}", scrub(&message));
}

/// Prints one error line to stderr.
pub fn error(message: impl Display) {
    prefixed("error", "31", message);
}

/// Prints one warning line to stderr.
pub fn warning(message: impl Display) {
    prefixed("warning", "33", message);
}

/// Prints a line for people to stderr, scrubbed, without a prefix.
pub fn note(message: impl Display) {
    let _ = writeln!(std::io::stderr(), "{}", scrub(&message.to_string()));
}

/// Prints why `campaign` was refused before anything was sent to it.
pub fn refused(campaign: &str, reason: impl Display) {
    error(format_args!(
        "campaign `{campaign}`: {reason}; nothing was sent"
    ));
}

/// Logs go to stderr, filtered by `RUST_LOG` (warnings only by default), scrubbed. sled's
/// own are off by default: every store failure reaches people as herald's error line,
/// which says what to do; sled's would say it again, in its words, several times.
pub fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sled=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Scrubbed(std::io::stderr()))
        .with_ansi(colour())
        .try_init();
}

/// A writer that scrubs secrets from what passes through it. The log formatter writes
/// each event whole, so a secret is never split across two writes.
struct Scrubbed<W>(W);

impl<W: std::io::Write> std::io::Write for Scrubbed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

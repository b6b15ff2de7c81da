//! Printing errors to people: `error:` in red on a terminal unless `NO_COLOR` is set.

use std::io::IsTerminal;

/// The `error:` prefix, coloured when stderr is a terminal and `NO_COLOR` is unset.
pub fn error_prefix() -> &'static str {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if colour {
        "\x1b[1;31merror\x1b[0m:"
    } else {
        "error:"
    }
}

/// Prints one error line to stderr.
pub fn error(message: impl std::fmt::Display) {
    eprintln!("{} {message}", error_prefix());
}

/// Prints why `campaign` was refused before anything was sent to it.
pub fn refused(campaign: &str, reason: impl std::fmt::Display) {
    error(format_args!(
        "campaign `{campaign}`: {reason}; nothing was sent"
    ));
}

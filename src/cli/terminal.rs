//! What a command reads from and writes to the operator's terminal: times
//! typed on the command line, who the operator is, and printing (JSON or
//! text, partner text made visible, a closed pipe ending quietly).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An RFC 3339 time on the command line.
pub(super) fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| "expected an RFC 3339 time, e.g. 2026-11-24T00:00:00Z".into())
}

/// Who the history names for a change made here.
pub(super) fn operator_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| "operator".into())
}

/// Partner text as a terminal should show it: control and invisible
/// formatting characters (direction overrides, zero-width spaces) spelled out
/// as `\u{…}`, so they cannot reorder or hide what the operator reads.
/// `--json` output stays exact.
pub(super) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() || crate::domain::order::is_formatting(c);
    if !text.chars().any(hidden) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Prints either JSON (`--json`) or text for people.
pub(super) struct Output {
    pub(super) json: bool,
}

impl Output {
    pub(super) fn print(&self, json: &serde_json::Value, text: &str) {
        if self.json {
            print_line(&format!("{json:#}"));
        } else {
            print_line(text);
        }
    }
}

/// Writes `text` and a newline to stdout: every command's printing goes
/// through here. When the reader has gone (`| head` has its lines), the
/// command ends quietly with status 0, as `order export` does, where
/// `println!` would panic. Restoring SIGPIPE's default would also end it
/// quietly, but this binary is the server too, which must outlive a client
/// that hangs up. The print is each command's last step, so nothing is left
/// undone by ending here.
pub(super) fn print_line(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("error: cannot write to standard output: {error}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_text_shows_its_hidden_characters_to_the_operator() {
        assert_eq!(shown("PO-1"), "PO-1");
        assert_eq!(shown("PO-1\u{202e}lmx.exe"), "PO-1\\u{202e}lmx.exe");
        assert_eq!(shown("a\rb\u{200b}"), "a\\u{d}b\\u{200b}");
    }
}

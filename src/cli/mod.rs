//! The `sales-order-api` command line: one module per command.

mod kit;
mod order;
mod partner;
mod serve;

use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::DatabaseUrl;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "sales-order-api",
    version,
    about = "Signed sales-order intake for authorised partner systems"
)]
pub struct Cli {
    /// Database to use: sqlite://PATH (created on first use) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://sales-orders.db"
    )]
    pub database_url: DatabaseUrl,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Register and manage partners, their secrets and keys.
    Partner(partner::PartnerArgs),
    /// Look at orders, move them through their statuses, export them to the ERP.
    Order(order::OrderArgs),
    /// Partner side: make an RSA key pair (private.pem stays, public.pem goes to the operator).
    Keygen(kit::KeygenArgs),
    /// Partner side: print the signature headers for a request.
    Sign(kit::SignArgs),
    /// Partner side: log in, sign and send an order, and print the answer.
    Send(kit::SendArgs),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve::run(args, self.database_url).await,
            Command::Migrate => {
                open_store(&self.database_url).await?;
                eprintln!("migrations applied to {}", self.database_url);
                Ok(())
            }
            Command::Partner(args) => {
                partner::run(args, &open_store(&self.database_url).await?).await
            }
            Command::Order(args) => order::run(args, &open_store(&self.database_url).await?).await,
            Command::Keygen(args) => kit::keygen(args),
            Command::Sign(args) => kit::sign(args),
            Command::Send(args) => kit::send(args).await,
        }
    }
}

async fn open_store(url: &DatabaseUrl) -> anyhow::Result<Store> {
    // An operator command run from another directory than the server's would
    // otherwise quietly make a second, empty SQLite database, and the partner
    // registered in it could never log in.
    let sqlite_file = url
        .expose()
        .starts_with("sqlite:")
        .then(|| crate::store::sqlite::database_file(url.expose()))
        .flatten();
    if sqlite_file.as_ref().is_some_and(|path| !path.exists()) {
        eprintln!(
            "note: creating a new database {url}; a server must be started with the same \
             --database-url to see what this command stores"
        );
    }
    if let Some(path) = sqlite_file
        && let Ok(Some(warning)) = crate::store::sqlite::secure_file(&path)
    {
        eprintln!("warning: {warning}");
    }
    // One command at a time: two connections are plenty.
    let store = Store::connect(url, 2).await?;
    store.migrate().await?;
    Ok(store)
}

/// An RFC 3339 time on the command line.
fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| "expected an RFC 3339 time, e.g. 2026-11-24T00:00:00Z".into())
}

/// Who the history names for a change made here.
fn operator_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| "operator".into())
}

/// Partner text as a terminal should show it: control and invisible
/// formatting characters (direction overrides, zero-width spaces) spelled out
/// as `\u{…}`, so they cannot reorder or hide what the operator reads.
/// `--json` output stays exact.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
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
struct Output {
    json: bool,
}

impl Output {
    fn print(&self, json: &serde_json::Value, text: &str) {
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
fn print_line(text: &str) {
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
    use clap::CommandFactory;

    #[test]
    fn partner_text_shows_its_hidden_characters_to_the_operator() {
        assert_eq!(shown("PO-1"), "PO-1");
        assert_eq!(shown("PO-1\u{202e}lmx.exe"), "PO-1\\u{202e}lmx.exe");
        assert_eq!(shown("a\rb\u{200b}"), "a\\u{d}b\\u{200b}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

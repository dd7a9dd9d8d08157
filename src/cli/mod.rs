//! The `sales-order-api` command line: one module per command.

mod event;
mod kit;
mod order;
mod partner;
mod serve;
mod terminal;

use clap::{Parser, Subcommand};

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
    /// Order events' webhook deliveries: send one again.
    Event(event::EventArgs),
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
                open_store(&self.database_url, Upgrade::Allowed).await?;
                eprintln!("migrations applied to {}", self.database_url);
                Ok(())
            }
            Command::Partner(args) => {
                partner::run(
                    args,
                    &open_store(&self.database_url, Upgrade::Refused).await?,
                )
                .await
            }
            Command::Order(args) => {
                order::run(
                    args,
                    &open_store(&self.database_url, Upgrade::Refused).await?,
                )
                .await
            }
            Command::Event(args) => {
                event::run(
                    args,
                    &open_store(&self.database_url, Upgrade::Refused).await?,
                )
                .await
            }
            Command::Keygen(args) => kit::keygen(args),
            Command::Sign(args) => kit::sign(args),
            Command::Send(args) => kit::send(args).await,
        }
    }
}

/// Whether a command may migrate a database an earlier release made.
#[derive(PartialEq, Eq)]
enum Upgrade {
    Allowed,
    /// A server of the earlier release may still be using the database, and
    /// a migration can change what it reads: only `migrate` (or `serve`)
    /// upgrades. A new database is still made ready by any command.
    Refused,
}

async fn open_store(url: &DatabaseUrl, upgrade: Upgrade) -> anyhow::Result<Store> {
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
    if upgrade == Upgrade::Refused
        && let Some((applied, latest)) = store.upgrade_pending().await
    {
        anyhow::bail!(
            "{url} was made by an earlier release (schema {applied}; this release needs {latest}). \
             Stop the servers of the earlier release, then run `sales-order-api migrate` \
             (or start this release's server, which migrates), and run this command again"
        );
    }
    store.migrate().await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

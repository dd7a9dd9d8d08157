//! `event`: the operator's hand on order events' webhook deliveries.

use clap::{Args, Subcommand};
use serde_json::json;

use super::terminal::{Output, shown};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct EventArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: EventCommand,
}

#[derive(Debug, Subcommand)]
enum EventCommand {
    /// Send an event again to every endpoint it was queued for (delivered,
    /// given up or still retrying), now, with the same webhook-id.
    Redeliver {
        /// The event's id (`evt_…`).
        event_id: String,
    },
}

pub async fn run(args: EventArgs, store: &Store) -> anyhow::Result<()> {
    let output = Output { json: args.json };
    match args.command {
        EventCommand::Redeliver { event_id } => {
            let queued = store
                .redeliver(&event_id, time::OffsetDateTime::now_utc())
                .await?;
            if queued == 0 {
                anyhow::bail!(
                    "event {} was never queued for a webhook endpoint (unknown, or its partner had no endpoint for it)",
                    shown(&event_id)
                );
            }
            output.print(
                &json!({"event_id": event_id, "deliveries": queued}),
                &format!(
                    "Event {event_id} queued again for {queued} endpoint{}.",
                    if queued == 1 { "" } else { "s" }
                ),
            );
            Ok(())
        }
    }
}

//! `partner set`: change a partner's settings (signature version, rate limit).

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner};
use crate::auth::rate_limit::RateLimit;
use crate::domain::{AuditKind, ClientId};
use crate::store::PartnerSettings;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("setting").required(true).multiple(true))]
pub struct Opts {
    client_id: ClientId,
    /// Accept only v2 signatures, which cover method, path, query and body.
    #[arg(long, action = clap::ArgAction::Set, group = "setting")]
    require_body_signature: Option<bool>,
    /// Requests per second on the sales-order routes (bursts of ten
    /// seconds' worth), `off`, or `default` (100/s, bursts of 1000).
    #[arg(long, value_parser = parse_rate_limit, group = "setting")]
    rate_limit: Option<RateLimit>,
}

pub async fn run(opts: Opts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let Opts {
        client_id,
        require_body_signature,
        rate_limit,
    } = opts;
    let settings = PartnerSettings {
        require_body_signature,
        rate_limit: rate_limit.map(RateLimit::to_column),
    };
    if !operator
        .store
        .update_partner(&client_id, &settings, operator.now)
        .await?
    {
        bail!(no_partner(&client_id));
    }
    let mut changed = json!({"client_id": client_id});
    let mut text = Vec::new();
    let mut changes = Vec::new();
    if let Some(limit) = rate_limit {
        changed["rate_limit"] = json!(limit.to_column());
        text.push(format!("{client_id} now has rate limit {limit}."));
    }
    if let Some(required) = require_body_signature {
        changed["require_body_signature"] = json!(required);
        changes.push(format!("require_body_signature={required}"));
        let accepted = if required {
            "requires v2"
        } else {
            "accepts v1 and v2"
        };
        text.push(format!("{client_id} now {accepted} signatures."));
    }
    if let Some(limit) = rate_limit {
        changes.push(format!("rate_limit={limit}"));
    }
    operator
        .changed(
            AuditKind::SettingsChanged,
            &client_id,
            Some(changes.join(", ")),
            &changed,
            &text.join("\n"),
        )
        .await
}

fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    match text {
        "default" => Ok(RateLimit::Default),
        "off" => Ok(RateLimit::Off),
        _ => match text.parse::<u32>() {
            Ok(rate) if rate > 0 => Ok(RateLimit::PerSecond(rate)),
            _ => Err("expected requests per second (1 or more), off, or default".into()),
        },
    }
}

//! `partner webhooks`, `partner webhook-enable` and `partner webhook-disable`:
//! a partner's webhook endpoints with their last attempt, and switching one
//! on or off (one the server disabled after 5 days of failures, once fixed).

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner, status};
use crate::cli::terminal::shown;
use crate::domain::{AuditKind, ClientId};

#[derive(Debug, Args)]
pub struct ListOpts {
    client_id: ClientId,
}

#[derive(Debug, Args)]
pub struct SwitchOpts {
    client_id: ClientId,
    /// The endpoint's id (`we_…`).
    endpoint_id: String,
    /// Why (shown to the partner as `disabled_reason`; `webhook-disable` only).
    #[arg(long)]
    reason: Option<String>,
}

pub async fn list(opts: ListOpts, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    if operator.store.partner(&client_id).await?.is_none() {
        bail!(no_partner(&client_id));
    }
    let mut shown_json = Vec::new();
    let mut text = Vec::new();
    for endpoint in operator.store.endpoints(&client_id).await? {
        let last = operator.store.attempts(&endpoint.id, 1).await?.pop();
        let last_text = match &last {
            None => "no delivery yet".to_owned(),
            Some(attempt) => format!(
                "last delivery {} {}",
                attempt.at,
                match (attempt.status, &attempt.error) {
                    (Some(code), _) => format!("HTTP {code}"),
                    (None, Some(error)) => shown(error).into_owned(),
                    (None, None) => "no answer".into(),
                }
            ),
        };
        let api = endpoint.to_endpoint(false);
        text.push(format!(
            "{}  {}  {}  {}{}",
            api.id,
            status(api.enabled),
            shown(&api.url),
            last_text,
            api.disabled_reason
                .as_deref()
                .map(|reason| format!("  ({})", shown(reason)))
                .unwrap_or_default()
        ));
        shown_json.push(json!({"endpoint": api, "last_attempt": last}));
    }
    if text.is_empty() {
        text.push(format!("{client_id} has no webhook endpoints."));
    }
    operator.output.print(&json!(shown_json), &text.join("\n"));
    Ok(())
}

pub async fn switch(
    opts: SwitchOpts,
    enabled: bool,
    operator: &Operator<'_>,
) -> anyhow::Result<()> {
    let client_id = &opts.client_id;
    let reason = if enabled {
        None
    } else {
        Some(opts.reason.as_deref().unwrap_or("disabled by the operator"))
    };
    if !operator
        .store
        .set_endpoint_enabled(Some(client_id), &opts.endpoint_id, enabled, reason)
        .await?
    {
        bail!(
            "{client_id} has no webhook endpoint {}",
            shown(&opts.endpoint_id)
        );
    }
    let kind = if enabled {
        AuditKind::WebhookEndpointEnabled
    } else {
        AuditKind::WebhookEndpointDisabled
    };
    operator
        .changed(
            kind,
            client_id,
            Some(format!("endpoint {}", opts.endpoint_id)),
            &json!({"client_id": client_id, "endpoint_id": opts.endpoint_id, "enabled": enabled}),
            &format!(
                "Webhook endpoint {} of {client_id} is now {}.",
                opts.endpoint_id,
                status(enabled)
            ),
        )
        .await
}

//! `partner disable` and `partner enable`. Disabling also ends every login of
//! the partner, so tokens issued before stay dead once it is enabled again.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{Operator, no_partner, status};
use crate::domain::{AuditKind, ClientId};

#[derive(Debug, Args)]
pub struct Opts {
    client_id: ClientId,
}

pub async fn run(opts: Opts, enabled: bool, operator: &Operator<'_>) -> anyhow::Result<()> {
    let client_id = opts.client_id;
    if !operator
        .store
        .set_partner_enabled(&client_id, enabled, operator.now)
        .await?
    {
        bail!(no_partner(&client_id));
    }
    let kind = if enabled {
        AuditKind::PartnerEnabled
    } else {
        AuditKind::PartnerDisabled
    };
    operator
        .changed(
            kind,
            &client_id,
            None,
            &json!({"client_id": client_id, "enabled": enabled}),
            &format!(
                "{client_id} is now {}.{}",
                status(enabled),
                if enabled {
                    ""
                } else {
                    " Its logins are revoked: it logs in again once enabled."
                }
            ),
        )
        .await
}

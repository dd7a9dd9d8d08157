//! Registering a partner and replacing its client secret.

use time::OffsetDateTime;

use crate::auth::secret;
use crate::config::Secret;
use crate::domain::{ClientId, PublicKey, ids};
use crate::store::{NewPartner, Store};

/// A partner just registered: its client secret exists only here, once.
pub struct Registered {
    pub client_id: ClientId,
    pub client_secret: Secret,
    pub key_id: String,
}

/// Registers a partner with its first key and a new client secret (only its
/// hash is stored). `None` when the client id is taken.
pub async fn register(
    store: &Store,
    client_id: ClientId,
    name: &str,
    key: &PublicKey,
    sandbox: bool,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Registered>> {
    let client_secret = Secret::new(ids::new_client_secret(sandbox));
    let secret_hash = secret::hash(&client_secret)?;
    let key_id = ids::new_key_id();
    let partner = NewPartner {
        client_id: &client_id,
        name,
        secret_hash: &secret_hash,
        key_id: &key_id,
        key,
        sandbox,
        now,
    };
    if !store.insert_partner(&partner).await? {
        return Ok(None);
    }
    Ok(Some(Registered {
        client_id,
        client_secret,
        key_id,
    }))
}

/// Gives the partner a new client secret, which ends every token issued
/// under the old one. `None` when there is no such partner.
pub async fn rotate_secret(
    store: &Store,
    client_id: &ClientId,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Secret>> {
    let Some(partner) = store.partner(client_id).await? else {
        return Ok(None);
    };
    let client_secret = Secret::new(ids::new_client_secret(partner.sandbox));
    let rotated = store
        .rotate_secret(client_id, &secret::hash(&client_secret)?, now)
        .await?;
    Ok(rotated.then_some(client_secret))
}

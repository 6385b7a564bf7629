//! The `ACCOUNTS` read model, as the registry writes it: what a queued key's value is now.
//!
//! | key | value |
//! |---|---|
//! | `account:{id}` | the [`Account`](crate::accounts::Account) as JSON; absent once deleted |
//! | `issuer:{sha256(issuerURL), base64url}` | [`IssuerIndex`]: the issuer's accounts in id order; absent when it has none |
//!
//! A value is always computed from the registry's state when it is written, never from the
//! command that queued it: writing the keys in queue order, a key written last holds the
//! latest state, whatever happened in between. No I/O here.

use serde::{Deserialize, Serialize};

use super::store::{Projection, RegistryStore, StoreFault};
use super::LAST_PROJECTION_ERROR;
use crate::accounts::store::{account_key, issuer_index_key, IssuerIndex};
use crate::ports::KeyValueStore;

/// One key of the read model and the value it should hold (`None`: the key should not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Option<String>,
}

/// The entry `projection` names, as the registry's state has it now.
pub fn entry(store: &dyn RegistryStore, projection: &Projection) -> Result<KvEntry, StoreFault> {
    let unreadable = |what: &str| StoreFault::Failed(format!("{what} could not be written out"));
    match projection {
        Projection::Account(id) => {
            let value = match store.account(id)? {
                Some(row) => Some(
                    serde_json::to_string(&row.account).map_err(|_| unreadable("an account"))?,
                ),
                None => None,
            };
            Ok(KvEntry {
                key: account_key(id),
                value,
            })
        }
        Projection::Issuer(issuer_url) => {
            let accounts = store.issuer_entries(issuer_url)?;
            let value = if accounts.is_empty() {
                None
            } else {
                let index = IssuerIndex {
                    issuer_url: issuer_url.clone(),
                    accounts,
                };
                Some(serde_json::to_string(&index).map_err(|_| unreadable("an issuer index"))?)
            };
            Ok(KvEntry {
                key: issuer_index_key(issuer_url),
                value,
            })
        }
    }
}

/// Writes the queued keys into `kv`, oldest first, until the queue is empty: each key with its
/// value as of the moment it is written. A key is dequeued only once written, so a failure
/// leaves it queued for the next attempt (the Durable Object's alarm), and a commit made while
/// a write is under way queues its keys again. Returns how many keys were written.
///
/// One drain at a time: the platform makes sure of it (two would each write a key's value as
/// of the moment they read it, and the older could land last).
pub async fn drain<K: KeyValueStore>(
    store: &dyn RegistryStore,
    kv: &K,
) -> Result<usize, DrainError> {
    let mut written = 0;
    loop {
        let queued = store.queued()?;
        if queued.is_empty() {
            store.set_meta(LAST_PROJECTION_ERROR, None)?;
            return Ok(written);
        }
        // Each key once per batch, at its first place: its value is read after the whole batch
        // was, so it already holds every change the batch queued for it.
        let mut keys: Vec<&Projection> = Vec::new();
        for queued in &queued {
            if !keys.contains(&&queued.key) {
                keys.push(&queued.key);
            }
        }
        for key in keys {
            let entry = entry(store, key)?;
            let outcome = match &entry.value {
                Some(value) => kv.put(&entry.key, value, None).await,
                None => kv.delete(&entry.key).await,
            };
            if let Err(error) = outcome {
                let message = format!("writing {} failed: {}", entry.key, error.0);
                store.set_meta(LAST_PROJECTION_ERROR, Some(&message))?;
                return Err(DrainError::Kv(message));
            }
            for done in queued.iter().filter(|queued| &queued.key == key) {
                store.dequeue(done.seq)?;
            }
            written += 1;
        }
    }
}

/// Why a drain stopped before the queue was empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("{0}")]
    Kv(String),
    #[error("{0}")]
    Store(#[from] StoreFault),
}

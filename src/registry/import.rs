//! The one-time import of accounts written to `ACCOUNTS` before the registry existed. The
//! platform reads every `account:` record and every issuer index out of KV; [`import`] takes
//! them in, in one commit, on the registry's first use. No I/O here.
//!
//! Writes before the registry could race, so KV may hold two accounts with one (`issuerURL`,
//! subject rule), which made exchanges fail as `ambiguous_account`. The oldest one (by
//! `createdAt`, then id) is kept; each later one is deleted, with an audit event that says so.

use serde::{Deserialize, Serialize};

use super::store::{AuditEvent, Projection, RegistryStore, Row, StoreFault};
use super::{changes, RegistryError};
use crate::accounts::Account;

/// The meta key that marks the import as done (its value: when).
pub const IMPORTED: &str = "imported";

/// The actor of the import's audit events.
pub const IMPORT_ACTOR: &str = "import";

/// What the import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Ids taken in.
    pub imported: Vec<String>,
    /// Ids deleted as duplicates of an older account's issuer and subject rule.
    pub dropped: Vec<String>,
}

/// Takes `accounts` (read from KV) and the issuers of the indexes found there into an empty
/// registry. Every key is queued, so the read model is rewritten to match: indexes without
/// their dangling entries, duplicates removed.
pub fn import(
    store: &dyn RegistryStore,
    mut accounts: Vec<Account>,
    index_issuers: Vec<String>,
    now: &str,
    request_id: &str,
) -> Result<ImportReport, RegistryError> {
    if store.meta(IMPORTED)?.is_some() {
        return Ok(ImportReport::default());
    }
    accounts.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    let mut report = ImportReport::default();
    let mut issuers = index_issuers;
    for account in accounts {
        if store.account(&account.id)?.is_some() || store.was_deleted(&account.id)? {
            continue;
        }
        issuers.push(account.fields.issuer_url.clone());
        let row = Row {
            account,
            version: 1,
        };
        let (action, old, new) = match store.insert(&row) {
            Ok(()) => {
                report.imported.push(row.account.id.clone());
                ("create", None, Some(&row.account))
            }
            Err(StoreFault::Taken(_)) => {
                store.remove(&row.account.id, now)?;
                report.dropped.push(row.account.id.clone());
                ("delete", Some(&row.account), None)
            }
            Err(fault) => return Err(fault.into()),
        };
        store.append_audit(&AuditEvent {
            id: 0,
            at: now.to_owned(),
            actor: IMPORT_ACTOR.to_owned(),
            action: action.to_owned(),
            account: row.account.id.clone(),
            changes: changes(old, new),
            request_id: request_id.to_owned(),
        })?;
        store.enqueue(&Projection::Account(row.account.id.clone()), now)?;
    }
    issuers.sort();
    issuers.dedup();
    for issuer in issuers {
        store.enqueue(&Projection::Issuer(issuer), now)?;
    }
    store.set_meta(IMPORTED, Some(now))?;
    Ok(report)
}

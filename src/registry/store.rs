//! What the registry keeps, as a small synchronous store: in the `AccountRegistry` Durable
//! Object, SQLite (`platform/registry.rs`); in native tests, maps (`testing::memory`). The
//! uniqueness of (`issuerURL`, `subject`) and of (`issuerURL`, `subjectPattern`) is the
//! store's own constraint, so no check-then-write can race past it.
//!
//! Synchronous on purpose: a Durable Object commits the storage calls made without an `await`
//! between them together, so one command's writes land as one, and no other request runs in
//! between. No I/O here: this is the trait.

use serde::{Deserialize, Serialize};

use crate::accounts::store::IndexEntry;
use crate::accounts::Account;

/// An account as the registry keeps it: the record and its version (the `ETag`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub account: Account,
    pub version: u64,
}

/// Why the store refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreFault {
    /// Another account already has this (`issuerURL`, subject rule): the id of the one that has.
    #[error("another account ({0}) already has this issuer and subject rule")]
    Taken(String),
    /// The store itself failed.
    #[error("{0}")]
    Failed(String),
}

/// One committed change, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Its place in the trail: later events have larger ids.
    #[serde(default)]
    pub id: u64,
    /// RFC 3339, UTC.
    pub at: String,
    /// Who: an admin credential's name, or a Cloudflare Access email.
    pub actor: String,
    /// `create`, `update`, `enable`, `disable` or `delete`.
    pub action: String,
    /// The account's id.
    pub account: String,
    /// Each changed field: `{"old": …, "new": …}` (`null` where absent).
    pub changes: serde_json::Map<String, serde_json::Value>,
    /// The request's `cf-ray` (or the id the worker made up for it).
    pub request_id: String,
}

/// Which events to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    pub account: Option<String>,
    pub actor: Option<String>,
    /// RFC 3339: events at or after it.
    pub since: Option<String>,
    /// Events with an id below it (the cursor of the next page).
    pub before: Option<u64>,
    pub limit: u32,
}

/// What the registry keeps: accounts, the ids of deleted ones, the audit trail, and the outbox
/// of keys still to be written into the `ACCOUNTS` read model.
pub trait RegistryStore {
    fn account(&self, id: &str) -> Result<Option<Row>, StoreFault>;
    /// Stores a new account; [`StoreFault::Taken`] when its subject rule is taken.
    fn insert(&self, row: &Row) -> Result<(), StoreFault>;
    /// Replaces an account; [`StoreFault::Taken`] when its new subject rule is another's.
    fn replace(&self, row: &Row) -> Result<(), StoreFault>;
    /// Removes an account and remembers its id as deleted.
    fn remove(&self, id: &str, at: &str) -> Result<(), StoreFault>;
    /// Whether `id` belonged to an account that was deleted.
    fn was_deleted(&self, id: &str) -> Result<bool, StoreFault>;
    /// Up to `limit` accounts in id order, after `after`.
    fn accounts_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<Row>, StoreFault>;
    /// The index entries of the accounts of one issuer, in id order.
    fn issuer_entries(&self, issuer_url: &str) -> Result<Vec<IndexEntry>, StoreFault>;
    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreFault>;
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreFault>;
    /// Queues a read-model key (`account:…` or `issuer:…`, by its source) to be projected.
    fn enqueue(&self, key: &Projection, at: &str) -> Result<(), StoreFault>;
    /// The queued keys, oldest first, with their sequence numbers and when they were queued.
    fn queued(&self) -> Result<Vec<Queued>, StoreFault>;
    /// Removes a projected key from the queue.
    fn dequeue(&self, seq: u64) -> Result<(), StoreFault>;
    fn meta(&self, key: &str) -> Result<Option<String>, StoreFault>;
    /// Sets (`Some`) or removes (`None`) a meta value.
    fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), StoreFault>;
}

/// A key of the read model to bring up to date: an account's record, or an issuer's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Projection {
    /// `account:{id}`.
    Account(String),
    /// `issuer:{sha256(issuerURL)}`.
    Issuer(String),
}

/// A queued projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub seq: u64,
    pub key: Projection,
    /// RFC 3339: when the change that queued it was committed.
    pub at: String,
}

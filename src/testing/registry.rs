//! The account registry in memory: [`MemoryRegistryStore`], the twin of the Durable Object's
//! SQLite tables (same uniqueness rules, same transaction behaviour), and [`MemoryRegistry`], the
//! twin of the Durable Object itself: it imports what KV held on first use, applies each
//! command in a transaction, and projects into the `ACCOUNTS` store it shares with
//! [`super::platform::MemoryPlatform`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use super::memory::{block_on, FixedClock, MemoryStore};
use crate::accounts::store::{
    account_key, issuer_index_key, IndexEntry, IssuerIndex, ACCOUNT_PREFIX, ISSUER_INDEX_PREFIX,
};
use crate::accounts::Account;
use crate::config::settings::{Settings, Vars};
use crate::ports::{Clock, KeyValueStore, Registry, StorageError};
use crate::registry::import::import;
use crate::registry::projection::drain;
use crate::registry::store::{
    AuditEvent, AuditQuery, Projection, Queued, RegistryStore, Row, StoreFault,
};
use crate::registry::{answer_text, execute, Context, Envelope, RegistryError};
use crate::text::time::rfc3339_millis;

/// What the SQLite tables hold, in maps.
#[derive(Debug, Clone, Default)]
struct Tables {
    accounts: BTreeMap<String, Row>,
    tombstones: BTreeMap<String, String>,
    audit: Vec<AuditEvent>,
    outbox: BTreeMap<u64, (Projection, String)>,
    next_seq: u64,
    meta: BTreeMap<String, String>,
}

/// The registry's store in memory.
#[derive(Debug, Default)]
pub struct MemoryRegistryStore {
    tables: RefCell<Tables>,
    /// When set, every call fails with this message.
    failure: RefCell<Option<String>>,
}

impl MemoryRegistryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` as one transaction: if it fails, nothing it wrote stays (SQLite's rollback).
    pub fn transaction<T, E>(&self, work: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E> {
        let before = self.tables.borrow().clone();
        let outcome = work(self);
        if outcome.is_err() {
            *self.tables.borrow_mut() = before;
        }
        outcome
    }

    /// Makes every later call fail (`Some`) or succeed again (`None`).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failure.borrow_mut() = message.map(str::to_owned);
    }

    /// The whole audit trail, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.tables.borrow().audit.clone()
    }

    fn check(&self) -> Result<(), StoreFault> {
        match &*self.failure.borrow() {
            Some(message) => Err(StoreFault::Failed(message.clone())),
            None => Ok(()),
        }
    }

    /// The id of another account with `row`'s issuer and subject rule.
    fn taken_by(tables: &Tables, row: &Row) -> Option<String> {
        let fields = &row.account.fields;
        tables
            .accounts
            .values()
            .find(|other| {
                other.account.id != row.account.id
                    && other.account.fields.issuer_url == fields.issuer_url
                    && other.account.fields.subject == fields.subject
            })
            .map(|other| other.account.id.clone())
    }
}

impl RegistryStore for MemoryRegistryStore {
    fn account(&self, id: &str) -> Result<Option<Row>, StoreFault> {
        self.check()?;
        Ok(self.tables.borrow().accounts.get(id).cloned())
    }

    fn insert(&self, row: &Row) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        if let Some(other) = Self::taken_by(&tables, row) {
            return Err(StoreFault::Taken(other));
        }
        if tables.accounts.contains_key(&row.account.id) {
            return Err(StoreFault::Failed(format!("{} exists", row.account.id)));
        }
        tables.accounts.insert(row.account.id.clone(), row.clone());
        Ok(())
    }

    fn replace(&self, row: &Row) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        if let Some(other) = Self::taken_by(&tables, row) {
            return Err(StoreFault::Taken(other));
        }
        match tables.accounts.get_mut(&row.account.id) {
            Some(stored) => *stored = row.clone(),
            None => return Err(StoreFault::Failed(format!("{} is gone", row.account.id))),
        }
        Ok(())
    }

    fn remove(&self, id: &str, at: &str) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        tables.accounts.remove(id);
        tables.tombstones.insert(id.to_owned(), at.to_owned());
        Ok(())
    }

    fn was_deleted(&self, id: &str) -> Result<bool, StoreFault> {
        self.check()?;
        Ok(self.tables.borrow().tombstones.contains_key(id))
    }

    fn accounts_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<Row>, StoreFault> {
        self.check()?;
        Ok(self
            .tables
            .borrow()
            .accounts
            .values()
            .filter(|row| after.is_none_or(|after| row.account.id.as_str() > after))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    fn issuer_entries(&self, issuer_url: &str) -> Result<Vec<IndexEntry>, StoreFault> {
        self.check()?;
        Ok(self
            .tables
            .borrow()
            .accounts
            .values()
            .filter(|row| row.account.fields.issuer_url == issuer_url)
            .map(|row| IndexEntry::of(&row.account))
            .collect())
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        let id = tables.audit.len() as u64 + 1;
        tables.audit.push(AuditEvent {
            id,
            ..event.clone()
        });
        Ok(())
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreFault> {
        self.check()?;
        Ok(self
            .tables
            .borrow()
            .audit
            .iter()
            .rev()
            .filter(|event| query.before.is_none_or(|before| event.id < before))
            .filter(|event| query.account.as_ref().is_none_or(|id| &event.account == id))
            .filter(|event| {
                query
                    .actor
                    .as_ref()
                    .is_none_or(|actor| &event.actor == actor)
            })
            .filter(|event| query.since.as_ref().is_none_or(|since| &event.at >= since))
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    fn enqueue(&self, key: &Projection, at: &str) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        tables.next_seq += 1;
        let seq = tables.next_seq;
        tables.outbox.insert(seq, (key.clone(), at.to_owned()));
        Ok(())
    }

    fn queued(&self) -> Result<Vec<Queued>, StoreFault> {
        self.check()?;
        Ok(self
            .tables
            .borrow()
            .outbox
            .iter()
            .map(|(seq, (key, at))| Queued {
                seq: *seq,
                key: key.clone(),
                at: at.clone(),
            })
            .collect())
    }

    fn dequeue(&self, seq: u64) -> Result<(), StoreFault> {
        self.check()?;
        self.tables.borrow_mut().outbox.remove(&seq);
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreFault> {
        self.check()?;
        Ok(self.tables.borrow().meta.get(key).cloned())
    }

    fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), StoreFault> {
        self.check()?;
        let mut tables = self.tables.borrow_mut();
        match value {
            Some(value) => tables.meta.insert(key.to_owned(), value.to_owned()),
            None => tables.meta.remove(key),
        };
        Ok(())
    }
}

/// The `AccountRegistry` Durable Object in memory, projecting into the platform's `ACCOUNTS`.
pub struct MemoryRegistry {
    pub store: MemoryRegistryStore,
    /// `ACCOUNTS`, shared with the platform.
    pub kv: Rc<MemoryStore>,
    /// The deployment's settings, as the Durable Object reads them from its own vars.
    pub settings: RefCell<Settings>,
    pub clock: FixedClock,
    /// How many ids were handed out: the next id is made from it.
    ids: Cell<u32>,
}

impl MemoryRegistry {
    pub fn new(kv: Rc<MemoryStore>) -> Self {
        Self {
            store: MemoryRegistryStore::new(),
            kv,
            settings: RefCell::new(
                Settings::from_vars(&Vars::default(), &super::memory::WhatwgUrls)
                    .expect("the default vars are valid"),
            ),
            clock: FixedClock::default(),
            ids: Cell::new(0),
        }
    }

    /// The id the next call would give a new account: a version 4 UUID made from a counter
    /// that each call moves on.
    pub fn next_id(&self) -> String {
        format!("00000000-0000-4000-8000-{:012x}", self.ids.get() + 1)
    }

    /// Writes what is queued into KV, as the Durable Object does after each command.
    pub fn project(&self) -> Result<usize, crate::registry::projection::DrainError> {
        block_on(drain(&self.store, self.kv.as_ref()))
    }

    fn import_once(&self, now: &str) -> Result<(), RegistryError> {
        if self
            .store
            .meta(crate::registry::import::IMPORTED)?
            .is_some()
        {
            return Ok(());
        }
        let (accounts, issuers) =
            read_kv(&self.kv).map_err(|error| RegistryError::Unavailable(error.0))?;
        self.store
            .transaction(|store| import(store, accounts, issuers, now, "import"))?;
        Ok(())
    }
}

/// Every account record and every issuer index's issuer in `kv`.
pub fn read_kv(kv: &MemoryStore) -> Result<(Vec<Account>, Vec<String>), StorageError> {
    let mut accounts = Vec::new();
    let mut issuers = Vec::new();
    for key in kv.keys() {
        let Some(text) = block_on(kv.get(&key))? else {
            continue;
        };
        if key.starts_with(ACCOUNT_PREFIX) {
            if let Ok(account) = serde_json::from_str::<Account>(&text) {
                accounts.push(account);
            }
        } else if key.starts_with(ISSUER_INDEX_PREFIX) {
            if let Ok(index) = serde_json::from_str::<IssuerIndex>(&text) {
                issuers.push(index.issuer_url);
            }
        }
    }
    Ok((accounts, issuers))
}

impl Registry for MemoryRegistry {
    async fn call(&self, command: String) -> Result<String, StorageError> {
        let now = rfc3339_millis(self.clock.now_millis());
        let answer = self.import_once(&now).and_then(|()| {
            let envelope: Envelope = serde_json::from_str(&command)
                .map_err(|error| RegistryError::Unavailable(error.to_string()))?;
            let new_id = self.next_id();
            self.ids.set(self.ids.get() + 1);
            let settings = self.settings.borrow();
            let context = Context {
                settings: &settings,
                urls: &super::memory::WhatwgUrls,
                now: &now,
                new_id: &new_id,
            };
            let answer = self
                .store
                .transaction(|store| execute(store, &envelope, &context))?;
            Ok(answer)
        });
        // A failed projection stays queued, as in the Durable Object (whose alarm retries).
        let _ = self.project();
        Ok(answer_text(&answer))
    }
}

/// Adds `accounts` to the read model in `kv` as the registry would project them (the record,
/// and an entry in its issuer's index): the token path's test fixture. Unlike the registry it
/// takes duplicates, as KV written before the registry may hold them.
pub fn put_accounts(kv: &MemoryStore, accounts: &[Account]) {
    for account in accounts {
        let record = serde_json::to_string(account).expect("an account serialises");
        block_on(kv.put(&account_key(&account.id), &record, None)).expect("memory");
        let key = issuer_index_key(&account.fields.issuer_url);
        let mut index = block_on(kv.get(&key))
            .expect("memory")
            .and_then(|text| serde_json::from_str::<IssuerIndex>(&text).ok())
            .unwrap_or_else(|| IssuerIndex {
                issuer_url: account.fields.issuer_url.clone(),
                accounts: Vec::new(),
            });
        index.accounts.retain(|entry| entry.id != account.id);
        index.accounts.push(IndexEntry::of(account));
        let index = serde_json::to_string(&index).expect("an index serialises");
        block_on(kv.put(&key, &index, None)).expect("memory");
    }
}

//! The account registry on Workers: the `AccountRegistry` Durable Object (SQLite storage) that
//! applies every admin command one at a time. (The worker reaches it through
//! [`super::services::WorkersRegistry`].)
//!
//! The class itself is JavaScript (`entry.mjs`): it calls [`registry_import`] once, then for
//! each request [`registry_command`] (synchronous: the command and its audit event commit in one
//! `transactionSync`, and no other request runs meanwhile), then [`registry_project`], which
//! writes what the commit queued into `ACCOUNTS`. A projection that fails sets an alarm; the
//! alarm projects again, backing off, until KV matches.
//!
//! | table | what |
//! |---|---|
//! | `accounts` | `id`, `issuer_url`, `subject` / `subject_pattern` (one is NULL), `version`, `record` (the account JSON); `UNIQUE(issuer_url, subject)`, `UNIQUE(issuer_url, subject_pattern)` |
//! | `tombstones` | ids of deleted accounts: never used again |
//! | `audit` | the audit trail; triggers refuse any UPDATE or DELETE of it |
//! | `outbox` | read-model keys committed but not yet written into `ACCOUNTS`, in commit order |
//! | `meta` | `imported`, the last projection failure, the failure count (for the back-off) |

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use worker::js_sys::{Date, Function, Reflect};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Context, DurableObjectState};
use worker::{Delay, Env};
use worker::{SqlStorage, SqlStorageValue};

use super::kv::{Namespace, WorkersKv};
use super::services::{JsUrls, WorkersEntropy};
use super::task;
use crate::accounts::store::{IndexEntry, IssuerIndex, ACCOUNT_PREFIX, ISSUER_INDEX_PREFIX};
use crate::accounts::{account_id_from, Account, SubjectRule};
use crate::config::settings::Settings;
use crate::ports::{Entropy, KeyValueStore, StorageError};
use crate::registry::import::{import, IMPORTED};
use crate::registry::projection::drain;
use crate::registry::store::{
    AuditEvent, AuditQuery, Projection, Queued, RegistryStore, Row, StoreFault,
};
use crate::registry::{answer_text, execute, Context as CommandContext, Envelope, RegistryError};
use crate::text::time::rfc3339_millis;

/// Time allowed for one projection (its KV writes), before it counts as failed.
const PROJECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait between two projection attempts, in seconds.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// The largest integer JavaScript holds exactly (2^53 - 1): "no upper bound" for an id.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The meta key counting projection failures in a row (for the back-off).
const FAILURES: &str = "projection_failures";

thread_local! {
    /// Whether this isolate made sure of the tables already.
    static SCHEMA_READY: Cell<bool> = const { Cell::new(false) };
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        issuer_url TEXT NOT NULL,
        subject TEXT,
        subject_pattern TEXT,
        version INTEGER NOT NULL,
        record TEXT NOT NULL,
        CHECK ((subject IS NULL) <> (subject_pattern IS NULL)),
        UNIQUE (issuer_url, subject),
        UNIQUE (issuer_url, subject_pattern)
    )",
    "CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, deleted_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        account TEXT NOT NULL,
        changes TEXT NOT NULL,
        request_id TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS audit_by_account ON audit (account, id)",
    "CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, id)",
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit events are never changed'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit events are never deleted'); END",
    "CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
];

/// The registry's tables in the object's SQLite storage.
struct SqlStore {
    sql: SqlStorage,
}

type Rows = Vec<Vec<SqlStorageValue>>;

fn failed(error: impl std::fmt::Display) -> StoreFault {
    StoreFault::Failed(error.to_string())
}

impl SqlStore {
    fn open(state: &DurableObjectState) -> Result<Self, StoreFault> {
        let store = Self {
            sql: storage(state).sql(),
        };
        if !SCHEMA_READY.with(Cell::get) {
            for statement in SCHEMA {
                store.run(statement, Vec::new())?;
            }
            SCHEMA_READY.with(|ready| ready.set(true));
        }
        Ok(store)
    }

    fn run(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Rows, StoreFault> {
        let cursor = self.sql.exec(query, bindings).map_err(failed)?;
        cursor.raw().collect::<Result<Rows, _>>().map_err(failed)
    }

    fn row(&self, found: &[SqlStorageValue]) -> Result<Row, StoreFault> {
        let (Some(SqlStorageValue::String(record)), Some(version)) = (found.first(), found.get(1))
        else {
            return Err(failed("an accounts row has an unexpected shape"));
        };
        let account: Account = serde_json::from_str(record)
            .map_err(|error| failed(format!("an account could not be read back: {error}")))?;
        Ok(Row {
            account,
            version: integer(version)?,
        })
    }

    /// Writes `row` with `statement` (an INSERT or UPDATE binding id, issuer, subject,
    /// pattern, version, record); a uniqueness refusal names the account that has the pair.
    fn write(&self, statement: &str, row: &Row) -> Result<(), StoreFault> {
        let fields = &row.account.fields;
        let (subject, pattern) = match &fields.subject {
            SubjectRule::Exact(subject) => (Some(subject.clone()), None),
            SubjectRule::Pattern(pattern) => (None, Some(pattern.as_str().to_owned())),
        };
        let record = serde_json::to_string(&row.account).map_err(failed)?;
        let outcome = self.run(
            statement,
            vec![
                row.account.id.clone().into(),
                fields.issuer_url.clone().into(),
                subject.clone().into(),
                pattern.clone().into(),
                (row.version as i64).into(),
                record.into(),
            ],
        );
        match outcome {
            Ok(_) => Ok(()),
            Err(StoreFault::Failed(why)) if why.contains("UNIQUE") => {
                let holder = self.run(
                    "SELECT id FROM accounts WHERE issuer_url = ?1 AND (subject = ?2 OR subject_pattern = ?3) AND id <> ?4",
                    vec![
                        fields.issuer_url.clone().into(),
                        subject.into(),
                        pattern.into(),
                        row.account.id.clone().into(),
                    ],
                )?;
                match holder.first().and_then(|row| row.first()) {
                    Some(SqlStorageValue::String(id)) => Err(StoreFault::Taken(id.clone())),
                    _ => Err(StoreFault::Failed(why)),
                }
            }
            Err(fault) => Err(fault),
        }
    }
}

fn integer(value: &SqlStorageValue) -> Result<u64, StoreFault> {
    match value {
        SqlStorageValue::Integer(number) => u64::try_from(*number).map_err(failed),
        SqlStorageValue::Float(number) if number.fract() == 0.0 && *number >= 0.0 => {
            Ok(*number as u64)
        }
        other => Err(failed(format!("expected a number, found {other:?}"))),
    }
}

fn text(value: Option<&SqlStorageValue>) -> Result<String, StoreFault> {
    match value {
        Some(SqlStorageValue::String(text)) => Ok(text.clone()),
        other => Err(failed(format!("expected text, found {other:?}"))),
    }
}

impl RegistryStore for SqlStore {
    fn account(&self, id: &str) -> Result<Option<Row>, StoreFault> {
        let rows = self.run(
            "SELECT record, version FROM accounts WHERE id = ?1",
            vec![id.into()],
        )?;
        rows.first().map(|found| self.row(found)).transpose()
    }

    fn insert(&self, row: &Row) -> Result<(), StoreFault> {
        self.write(
            "INSERT INTO accounts (id, issuer_url, subject, subject_pattern, version, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            row,
        )
    }

    fn replace(&self, row: &Row) -> Result<(), StoreFault> {
        self.write(
            "UPDATE accounts SET issuer_url = ?2, subject = ?3, subject_pattern = ?4, version = ?5, record = ?6 WHERE id = ?1",
            row,
        )
    }

    fn remove(&self, id: &str, at: &str) -> Result<(), StoreFault> {
        self.run("DELETE FROM accounts WHERE id = ?1", vec![id.into()])?;
        self.run(
            "INSERT OR IGNORE INTO tombstones (id, deleted_at) VALUES (?1, ?2)",
            vec![id.into(), at.into()],
        )?;
        Ok(())
    }

    fn was_deleted(&self, id: &str) -> Result<bool, StoreFault> {
        Ok(!self
            .run("SELECT 1 FROM tombstones WHERE id = ?1", vec![id.into()])?
            .is_empty())
    }

    fn accounts_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<Row>, StoreFault> {
        let rows = self.run(
            "SELECT record, version FROM accounts WHERE id > ?1 ORDER BY id LIMIT ?2",
            vec![after.unwrap_or("").into(), i64::from(limit).into()],
        )?;
        rows.iter().map(|found| self.row(found)).collect()
    }

    fn issuer_entries(&self, issuer_url: &str) -> Result<Vec<IndexEntry>, StoreFault> {
        let rows = self.run(
            "SELECT record, version FROM accounts WHERE issuer_url = ?1 ORDER BY id",
            vec![issuer_url.into()],
        )?;
        rows.iter()
            .map(|found| Ok(IndexEntry::of(&self.row(found)?.account)))
            .collect()
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreFault> {
        let changes = serde_json::to_string(&event.changes).map_err(failed)?;
        self.run(
            "INSERT INTO audit (at, actor, action, account, changes, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![
                event.at.clone().into(),
                event.actor.clone().into(),
                event.action.clone().into(),
                event.account.clone().into(),
                changes.into(),
                event.request_id.clone().into(),
            ],
        )?;
        Ok(())
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreFault> {
        let mut conditions = vec!["id < ?1"];
        let mut bindings: Vec<SqlStorageValue> = vec![(query
            .before
            .map_or(MAX_SAFE_INTEGER, |before| before as i64))
        .into()];
        for (condition, value) in [
            ("account = ?", &query.account),
            ("actor = ?", &query.actor),
            ("at >= ?", &query.since),
        ] {
            if let Some(value) = value {
                bindings.push(value.clone().into());
                conditions.push(condition);
            }
        }
        bindings.push(i64::from(query.limit).into());
        let statement = format!(
            "SELECT id, at, actor, action, account, changes, request_id FROM audit WHERE {} ORDER BY id DESC LIMIT ?",
            conditions.join(" AND ")
        );
        let rows = self.run(&statement, bindings)?;
        rows.iter()
            .map(|found| {
                let changes = serde_json::from_str(&text(found.get(5))?).map_err(failed)?;
                Ok(AuditEvent {
                    id: integer(found.first().unwrap_or(&SqlStorageValue::Null))?,
                    at: text(found.get(1))?,
                    actor: text(found.get(2))?,
                    action: text(found.get(3))?,
                    account: text(found.get(4))?,
                    changes,
                    request_id: text(found.get(6))?,
                })
            })
            .collect()
    }

    fn enqueue(&self, key: &Projection, at: &str) -> Result<(), StoreFault> {
        let (kind, target) = match key {
            Projection::Account(id) => ("account", id),
            Projection::Issuer(url) => ("issuer", url),
        };
        self.run(
            "INSERT INTO outbox (kind, target, at) VALUES (?1, ?2, ?3)",
            vec![kind.into(), target.clone().into(), at.into()],
        )?;
        Ok(())
    }

    fn queued(&self) -> Result<Vec<Queued>, StoreFault> {
        let rows = self.run(
            "SELECT seq, kind, target, at FROM outbox ORDER BY seq",
            Vec::new(),
        )?;
        rows.iter()
            .map(|found| {
                let target = text(found.get(2))?;
                let key = match text(found.get(1))?.as_str() {
                    "account" => Projection::Account(target),
                    _ => Projection::Issuer(target),
                };
                Ok(Queued {
                    seq: integer(found.first().unwrap_or(&SqlStorageValue::Null))?,
                    key,
                    at: text(found.get(3))?,
                })
            })
            .collect()
    }

    fn dequeue(&self, seq: u64) -> Result<(), StoreFault> {
        self.run(
            "DELETE FROM outbox WHERE seq = ?1",
            vec![(seq as i64).into()],
        )?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreFault> {
        let rows = self.run("SELECT value FROM meta WHERE key = ?1", vec![key.into()])?;
        rows.first().map(|found| text(found.first())).transpose()
    }

    fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), StoreFault> {
        match value {
            Some(value) => self.run(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![key.into(), value.into()],
            ),
            None => self.run("DELETE FROM meta WHERE key = ?1", vec![key.into()]),
        }?;
        Ok(())
    }
}

/// The object's storage.
fn storage(state: &DurableObjectState) -> worker::durable::Storage {
    let state: &JsValue = state.as_ref();
    worker::durable::State::from(state.clone().unchecked_into::<DurableObjectState>()).storage()
}

/// Runs `work` in one `transactionSync`: if it fails, SQLite rolls back everything it wrote.
fn in_transaction<T: 'static>(
    state: &DurableObjectState,
    work: impl FnOnce() -> Result<T, RegistryError> + 'static,
) -> Result<T, RegistryError> {
    let unavailable = |why: String| RegistryError::Unavailable(why);
    let storage: JsValue = AsRef::<JsValue>::as_ref(storage(state).as_raw()).clone();
    let transaction_sync: Function = Reflect::get(&storage, &JsValue::from_str("transactionSync"))
        .ok()
        .and_then(|function| function.dyn_into().ok())
        .ok_or_else(|| {
            unavailable("the storage has no transactionSync (not SQLite-backed?)".into())
        })?;
    let outcome: Rc<RefCell<Option<Result<T, RegistryError>>>> = Rc::new(RefCell::new(None));
    let slot = outcome.clone();
    let mut work = Some(work);
    let closure = Closure::<dyn FnMut() -> Result<JsValue, JsValue>>::new(move || {
        let Some(work) = work.take() else {
            return Err(JsValue::from_str("a transaction ran twice"));
        };
        let result = work();
        let refused = result.is_err();
        *slot.borrow_mut() = Some(result);
        // Throwing is what makes transactionSync roll back.
        if refused {
            Err(JsValue::from_str("rolled back"))
        } else {
            Ok(JsValue::UNDEFINED)
        }
    });
    let called = transaction_sync.call1(&storage, closure.as_ref());
    drop(closure);
    let result = outcome.borrow_mut().take();
    match result {
        Some(result) => result,
        None => Err(unavailable(format!(
            "the transaction did not run: {called:?}"
        ))),
    }
}

fn settings(env: &Env) -> Result<Settings, RegistryError> {
    Settings::from_vars(&super::vars(env), &JsUrls).map_err(|error| {
        RegistryError::Unavailable(format!("the server is misconfigured: {error}"))
    })
}

/// Applies one command (the body of a request to the object) and answers it, as JSON. Called
/// by the class in `entry.mjs`, after [`registry_import`].
#[wasm_bindgen]
pub fn registry_command(state: JsValue, env: Env, path: String, body: String) -> String {
    let state: DurableObjectState = state.unchecked_into();
    #[cfg(feature = "selftest")]
    if let Some(answer) = selftest(&state, &path) {
        return answer;
    }
    let _ = path;
    let answer = (|| {
        let envelope: Envelope = serde_json::from_str(&body).map_err(|error| {
            RegistryError::Unavailable(format!("the command could not be read: {error}"))
        })?;
        let settings = settings(&env)?;
        let mut random = [0u8; 16];
        WorkersEntropy
            .fill(&mut random)
            .map_err(|error| RegistryError::Unavailable(format!("no random bytes: {error}")))?;
        let new_id = account_id_from(random);
        let now = rfc3339_millis(Date::now() as u64);
        let store = SqlStore::open(&state)?;
        in_transaction(&state, move || {
            let context = CommandContext {
                settings: &settings,
                urls: &JsUrls,
                now: &now,
                new_id: &new_id,
            };
            execute(&store, &envelope, &context)
        })
    })();
    answer_text(&answer)
}

/// Takes in the accounts that `ACCOUNTS` held before the registry, once. Resolves to `"ok"` or
/// to the reason it failed (the class then fails the request, and tries again on the next).
#[wasm_bindgen]
pub fn registry_import(state: JsValue, env: Env) -> JsValue {
    let state: DurableObjectState = state.unchecked_into();
    task::run(async move {
        match import_once(&state, &env).await {
            Ok(()) => JsValue::from_str("ok"),
            Err(error) => JsValue::from_str(&error.to_string()),
        }
    })
}

async fn import_once(state: &DurableObjectState, env: &Env) -> Result<(), RegistryError> {
    let store = SqlStore::open(state)?;
    if store.meta(IMPORTED)?.is_some() {
        return Ok(());
    }
    let kv = accounts_kv(state, env)?;
    let unavailable = |error: StorageError| RegistryError::Unavailable(error.0);
    let (mut accounts, mut issuers) = (Vec::new(), Vec::new());
    for prefix in [ACCOUNT_PREFIX, ISSUER_INDEX_PREFIX] {
        let mut cursor = None;
        loop {
            let page = kv
                .list(prefix, cursor.as_deref(), 1000)
                .await
                .map_err(unavailable)?;
            let values = kv.get_many(&page.keys).await.map_err(unavailable)?;
            for (key, value) in page.keys.iter().zip(values) {
                let Some(value) = value else { continue };
                if prefix == ACCOUNT_PREFIX {
                    match serde_json::from_str::<Account>(&value) {
                        Ok(account) => accounts.push(account),
                        Err(error) => worker::console_error!(
                            "import: {key} could not be read and stays as it is: {error}"
                        ),
                    }
                } else if let Ok(index) = serde_json::from_str::<IssuerIndex>(&value) {
                    issuers.push(index.issuer_url);
                }
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let now = rfc3339_millis(Date::now() as u64);
    let report = in_transaction(state, move || {
        import(&store, accounts, issuers, &now, "import")
    })?;
    if !report.imported.is_empty() || !report.dropped.is_empty() {
        worker::console_log!(
            "{}",
            serde_json::json!({"event": "registry_import", "imported": report.imported.len(), "dropped": report.dropped})
        );
    }
    Ok(())
}

/// Writes what is queued into `ACCOUNTS`. Resolves to `true` once the queue is empty, `false`
/// when a write failed (then an alarm is set to try again).
#[wasm_bindgen]
pub fn registry_project(state: JsValue, env: Env) -> JsValue {
    let state: DurableObjectState = state.unchecked_into();
    task::run(async move { JsValue::from_bool(project(&state, &env).await) })
}

async fn project(state: &DurableObjectState, env: &Env) -> bool {
    let outcome = async {
        let store = SqlStore::open(state)?;
        let kv = accounts_kv(state, env)?;
        #[cfg(feature = "selftest")]
        let kv = SelftestKv {
            inner: kv,
            down: store.meta(KV_DOWN)?.is_some(),
        };
        let result = {
            let drained = std::pin::pin!(drain(&store, &kv));
            let timeout = std::pin::pin!(Delay::from(PROJECTION_TIMEOUT));
            match select(drained, timeout).await {
                Either::Left((result, _)) => result.map_err(|error| error.to_string()),
                Either::Right(_) => Err(format!(
                    "writing into ACCOUNTS took longer than {} s",
                    PROJECTION_TIMEOUT.as_secs()
                )),
            }
        };
        Ok::<_, RegistryError>((store, result))
    }
    .await;
    match outcome {
        Ok((store, Ok(_))) => {
            let _ = store.set_meta(FAILURES, None);
            true
        }
        Ok((store, Err(why))) => {
            let failures = store
                .meta(FAILURES)
                .ok()
                .flatten()
                .and_then(|count| count.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            let _ = store.set_meta(FAILURES, Some(&failures.to_string()));
            let _ = store.set_meta(crate::registry::LAST_PROJECTION_ERROR, Some(&why));
            let backoff = (1i64 << failures.min(9)).min(MAX_BACKOFF_SECONDS);
            worker::console_error!(
                "{}",
                serde_json::json!({"event": "registry_projection_failed", "error": why, "failures": failures, "retry_in_s": backoff})
            );
            if let Err(error) = storage(state).set_alarm(backoff * 1000).await {
                worker::console_error!("the projection alarm could not be set: {error}");
            }
            false
        }
        Err(error) => {
            worker::console_error!("the projection could not start: {error}");
            false
        }
    }
}

/// `ACCOUNTS`, from the object. (Its state's `waitUntil` stands in for a request's.)
fn accounts_kv(state: &DurableObjectState, env: &Env) -> Result<WorkersKv, RegistryError> {
    let store = Namespace::from_env(env, "ACCOUNTS").map_err(|_| {
        RegistryError::Unavailable("ACCOUNTS is not bound to a KV namespace".into())
    })?;
    let state: &JsValue = state.as_ref();
    let context: Context = state.clone().unchecked_into();
    Ok(WorkersKv::new(store, context, Default::default()))
}

/// Selftest builds only: `ACCOUNTS` writes can be made to fail, to show the projection
/// catching up (`/__selftest/registry/kv-down` and `…/kv-up`).
#[cfg(feature = "selftest")]
const KV_DOWN: &str = "selftest_kv_down";

#[cfg(feature = "selftest")]
fn selftest(state: &DurableObjectState, path: &str) -> Option<String> {
    let value = match path {
        "/selftest/kv-down" => Some("1"),
        "/selftest/kv-up" => None,
        _ => return None,
    };
    let done = SqlStore::open(state).and_then(|store| store.set_meta(KV_DOWN, value));
    Some(format!("{done:?}"))
}

#[cfg(feature = "selftest")]
struct SelftestKv {
    inner: WorkersKv,
    down: bool,
}

#[cfg(feature = "selftest")]
impl KeyValueStore for SelftestKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StorageError> {
        if self.down {
            return Err(StorageError("KV made to fail by the selftest".into()));
        }
        self.inner.put(key, value, ttl).await
    }
    fn put_in_background(&self, key: &str, value: String, ttl: Option<u64>) {
        self.inner.put_in_background(key, value, ttl);
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        if self.down {
            return Err(StorageError("KV made to fail by the selftest".into()));
        }
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<crate::ports::KeyPage, StorageError> {
        self.inner.list(prefix, cursor, limit).await
    }
}

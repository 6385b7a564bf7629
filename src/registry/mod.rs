//! The account registry: the one writer of accounts. Every admin write is a [`Command`] applied
//! here, inside the `AccountRegistry` Durable Object, one at a time: a PATCH applies its own
//! members to the current record (never a stale copy), `If-Match` with a stale version is
//! refused, a deleted id never comes back, the uniqueness rules are the store's constraints, and
//! each committed change appends its audit event in the same commit. What changed is queued for
//! the `ACCOUNTS` read model ([`projection`]), which the token path reads.
//!
//! | module | what |
//! |---|---|
//! | here | [`Command`], [`apply`]: the rules of every write and read |
//! | [`store`] | [`store::RegistryStore`]: what the registry keeps (SQLite in the Durable Object) |
//! | [`projection`] | the `ACCOUNTS` documents a committed change makes |
//! | [`import`] | the one-time import of accounts written to KV before the registry |
//!
//! No I/O, no clock, no randomness: the caller passes the time and a fresh id.
// Natively only the tests apply commands; the Durable Object (wasm32) is their caller.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod import;
pub(crate) mod projection;
pub(crate) mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::accounts::store::IndexEntry;
use crate::accounts::{check_field_names, merge_patch, validate, Account, FieldError};
use crate::config::settings::Settings;
use crate::ports::Registry;
use crate::text::url::UrlParser;
use projection::KvEntry;
use store::{AuditEvent, AuditQuery, Projection, RegistryStore, Row, StoreFault};

/// One call of the registry, as it crosses into the Durable Object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    Create {
        body: Map<String, Value>,
    },
    #[serde(rename_all = "camelCase")]
    Patch {
        id: String,
        patch: Map<String, Value>,
        if_match: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Delete {
        id: String,
        if_match: Option<String>,
    },
    Get {
        id: String,
    },
    /// Up to `limit` accounts after `after` (an id), no more than `max_bytes` of them, counting
    /// `overhead` more bytes for each (what the caller adds to each when it answers).
    #[serde(rename_all = "camelCase")]
    List {
        after: Option<String>,
        limit: u32,
        max_bytes: usize,
        #[serde(default)]
        overhead: usize,
    },
    Audit {
        query: AuditQuery,
    },
    /// How far the read model lags.
    Status,
}

/// A command with who sends it and the request it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub command: Command,
    pub actor: String,
    pub request_id: String,
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    /// One account, as it is now, and its version.
    Account {
        account: Box<Account>,
        version: u64,
    },
    Deleted,
    /// Account JSON texts in id order, and the last id when more may follow.
    #[serde(rename_all = "camelCase")]
    Accounts {
        accounts: Vec<String>,
        next_after: Option<String>,
    },
    /// Events newest first, and the cursor of the next page when more may follow.
    #[serde(rename_all = "camelCase")]
    Events {
        events: Vec<AuditEvent>,
        next_before: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    Status {
        /// Read-model keys not yet written.
        pending: usize,
        /// When the oldest of them was committed.
        oldest_pending_at: Option<String>,
        /// The last projection failure, if the last attempt failed.
        last_error: Option<String>,
    },
}

/// A reply, and the read-model entries its command changed, so the isolate that sent it can see
/// the change at once (`KeyValueStore::remember`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub reply: Reply,
    pub projected: Vec<KvEntry>,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RegistryError {
    /// A field breaks its rule (`field: None`: the body as a whole).
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("there is no service account with id {id:?}")]
    NotFound { id: String },
    /// The (`issuerURL`, subject rule) pair is another account's.
    #[error("service account {existing_id} already has this issuerURL and {field} {value:?}; each pair may belong to one account")]
    #[serde(rename_all = "camelCase")]
    Conflict {
        existing_id: String,
        field: String,
        value: String,
    },
    /// `If-Match` named another version than the current one.
    #[error("the account has changed since: its ETag is now {current}, not {given}; read it again and retry")]
    Stale { current: String, given: String },
    /// The registry's storage failed; the client may retry.
    #[error("the account registry is unavailable ({0}); try again")]
    Unavailable(String),
}

impl From<FieldError> for RegistryError {
    fn from(error: FieldError) -> Self {
        Self::Invalid {
            field: error.field,
            message: error.message,
        }
    }
}

impl From<StoreFault> for RegistryError {
    fn from(fault: StoreFault) -> Self {
        Self::Unavailable(fault.to_string())
    }
}

/// What a command needs besides the store: the rules' settings, the URL parser, the time, and a
/// fresh id for a new account.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub urls: &'a dyn UrlParser,
    /// RFC 3339, UTC, with milliseconds.
    pub now: &'a str,
    pub new_id: &'a str,
}

/// An account's entity tag: its version, quoted (RFC 9110).
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Applies `envelope` to `store` and answers it with the read-model entries it changed, as they
/// are now. Writes make their changes, the audit event and the queued read-model keys with no
/// `await` in between: one commit (the caller wraps it in a transaction, so a refusal half-way
/// leaves nothing).
pub fn execute(
    store: &dyn RegistryStore,
    envelope: &Envelope,
    context: &Context<'_>,
) -> Result<Answer, RegistryError> {
    let (reply, touched) = apply(store, envelope, context)?;
    let projected = touched
        .iter()
        .map(|key| projection::entry(store, key))
        .collect::<Result<_, _>>()?;
    Ok(Answer { reply, projected })
}

/// Sends `envelope` to the registry and reads its answer.
pub async fn call<R: Registry>(registry: &R, envelope: &Envelope) -> Result<Answer, RegistryError> {
    let sent = serde_json::to_string(envelope)
        .map_err(|error| RegistryError::Unavailable(error.to_string()))?;
    let answer = registry
        .call(sent)
        .await
        .map_err(|error| RegistryError::Unavailable(error.0))?;
    serde_json::from_str::<Result<Answer, RegistryError>>(&answer).map_err(|error| {
        RegistryError::Unavailable(format!("the registry's answer could not be read: {error}"))
    })?
}

/// The answer as it crosses back from the registry.
pub fn answer_text(answer: &Result<Answer, RegistryError>) -> String {
    serde_json::to_string(answer).unwrap_or_else(|error| {
        serde_json::to_string(&Err::<Answer, _>(RegistryError::Unavailable(
            error.to_string(),
        )))
        .unwrap_or_default()
    })
}

type Applied = (Reply, Vec<Projection>);

fn read(reply: Reply) -> Result<Applied, RegistryError> {
    Ok((reply, Vec::new()))
}

fn apply(
    store: &dyn RegistryStore,
    envelope: &Envelope,
    context: &Context<'_>,
) -> Result<Applied, RegistryError> {
    match &envelope.command {
        Command::Create { body } => create(store, body, envelope, context),
        Command::Patch {
            id,
            patch,
            if_match,
        } => update(store, id, patch, if_match.as_deref(), envelope, context),
        Command::Delete { id, if_match } => {
            delete(store, id, if_match.as_deref(), envelope, context)
        }
        Command::Get { id } => {
            let row = current(store, id)?;
            read(Reply::Account {
                account: Box::new(row.account),
                version: row.version,
            })
        }
        Command::List {
            after,
            limit,
            max_bytes,
            overhead,
        } => read(list(
            store,
            after.as_deref(),
            *limit,
            *max_bytes,
            *overhead,
        )?),
        Command::Audit { query } => {
            let events = store.audit(query)?;
            let next_before = (events.len() == query.limit as usize)
                .then(|| events.last().map(|event| event.id))
                .flatten();
            read(Reply::Events {
                events,
                next_before,
            })
        }
        Command::Status => {
            let queued = store.queued()?;
            read(Reply::Status {
                pending: queued.len(),
                oldest_pending_at: queued.first().map(|queued| queued.at.clone()),
                last_error: store.meta(LAST_PROJECTION_ERROR)?,
            })
        }
    }
}

/// The meta key under which the last projection failure is kept (absent once one succeeds).
pub const LAST_PROJECTION_ERROR: &str = "last_projection_error";

fn current(store: &dyn RegistryStore, id: &str) -> Result<Row, RegistryError> {
    store
        .account(id)?
        .ok_or_else(|| RegistryError::NotFound { id: id.into() })
}

fn create(
    store: &dyn RegistryStore,
    body: &Map<String, Value>,
    envelope: &Envelope,
    context: &Context<'_>,
) -> Result<Applied, RegistryError> {
    check_field_names(body)?;
    let fields = validate(body, context.settings, context.urls)?;
    let id = context.new_id;
    if store.account(id)?.is_some() || store.was_deleted(id)? {
        return Err(RegistryError::Unavailable(
            "a fresh id was already taken; try again".into(),
        ));
    }
    let row = Row {
        account: Account {
            id: id.to_owned(),
            fields,
            created_at: context.now.to_owned(),
            updated_at: context.now.to_owned(),
        },
        version: 1,
    };
    store
        .insert(&row)
        .map_err(|fault| conflict(fault, &row.account))?;
    let touched = commit(store, envelope, context, "create", None, Some(&row.account))?;
    Ok((
        Reply::Account {
            account: Box::new(row.account),
            version: row.version,
        },
        touched,
    ))
}

fn update(
    store: &dyn RegistryStore,
    id: &str,
    patch: &Map<String, Value>,
    if_match: Option<&str>,
    envelope: &Envelope,
    context: &Context<'_>,
) -> Result<Applied, RegistryError> {
    let old = current(store, id)?;
    check_if_match(&old, if_match)?;
    check_field_names(patch)?;
    let mut merged = fields_object(&old.account)?;
    // Setting one subject rule (or key source) replaces the other, unless the patch names both.
    for (set, other) in [
        ("subject", "subjectPattern"),
        ("subjectPattern", "subject"),
        ("jwksURI", "jwks"),
        ("jwks", "jwksURI"),
    ] {
        if patch.get(set).is_some_and(|value| !value.is_null()) && !patch.contains_key(other) {
            merged.remove(other);
        }
    }
    merge_patch(&mut merged, patch);
    let fields = validate(&merged, context.settings, context.urls)?;
    if fields == old.account.fields {
        // Nothing changed: nothing to commit, no event.
        return read(Reply::Account {
            account: Box::new(old.account),
            version: old.version,
        });
    }
    let row = Row {
        account: Account {
            fields,
            updated_at: context.now.to_owned(),
            ..old.account.clone()
        },
        version: old.version + 1,
    };
    store
        .replace(&row)
        .map_err(|fault| conflict(fault, &row.account))?;
    // Granting or revoking access is what an auditor looks for: a change of `enabled` is an
    // `enable` or `disable` event whatever else changed with it (those are in its `changes`).
    let action = match (old.account.fields.enabled, row.account.fields.enabled) {
        (false, true) => "enable",
        (true, false) => "disable",
        _ => "update",
    };
    let touched = commit(
        store,
        envelope,
        context,
        action,
        Some(&old.account),
        Some(&row.account),
    )?;
    Ok((
        Reply::Account {
            account: Box::new(row.account),
            version: row.version,
        },
        touched,
    ))
}

fn delete(
    store: &dyn RegistryStore,
    id: &str,
    if_match: Option<&str>,
    envelope: &Envelope,
    context: &Context<'_>,
) -> Result<Applied, RegistryError> {
    let old = current(store, id)?;
    check_if_match(&old, if_match)?;
    store.remove(id, context.now)?;
    let touched = commit(store, envelope, context, "delete", Some(&old.account), None)?;
    Ok((Reply::Deleted, touched))
}

fn list(
    store: &dyn RegistryStore,
    after: Option<&str>,
    limit: u32,
    max_bytes: usize,
    overhead: usize,
) -> Result<Reply, RegistryError> {
    let rows = store.accounts_after(after, limit)?;
    let full_page = rows.len() == limit as usize;
    let mut accounts = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    let mut last = None;
    let mut cut = false;
    for row in rows {
        let text = serde_json::to_string(&row.account)
            .map_err(|error| RegistryError::Unavailable(error.to_string()))?;
        let size = text.len() + overhead;
        if !accounts.is_empty() && bytes + size > max_bytes {
            cut = true;
            break;
        }
        bytes += size;
        last = Some(row.account.id);
        accounts.push(text);
    }
    Ok(Reply::Accounts {
        accounts,
        next_after: if cut || full_page { last } else { None },
    })
}

/// `If-Match: "<version>"` (or `*`) must name the current version.
fn check_if_match(row: &Row, if_match: Option<&str>) -> Result<(), RegistryError> {
    let Some(given) = if_match else {
        return Ok(());
    };
    let current = etag(row.version);
    let matches = given
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current);
    if matches {
        Ok(())
    } else {
        Err(RegistryError::Stale {
            current,
            given: given.to_owned(),
        })
    }
}

/// The store's uniqueness refusal as the API says it.
fn conflict(fault: StoreFault, account: &Account) -> RegistryError {
    match fault {
        StoreFault::Taken(existing_id) => {
            let (field, value) = account.fields.subject.field();
            RegistryError::Conflict {
                existing_id,
                field: field.into(),
                value: value.into(),
            }
        }
        StoreFault::Failed(why) => RegistryError::Unavailable(why),
    }
}

/// The account's fields as a JSON object, for a merge patch.
fn fields_object(account: &Account) -> Result<Map<String, Value>, RegistryError> {
    match serde_json::to_value(&account.fields) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(RegistryError::Unavailable(format!(
            "account {} could not be read back",
            account.id
        ))),
    }
}

/// Each field that differs between `old` and `new`: `{"old": …, "new": …}` (`null` where
/// absent).
pub(crate) fn changes(old: Option<&Account>, new: Option<&Account>) -> Map<String, Value> {
    // The fields an administrator sets; not `id`, `createdAt`, `updatedAt`.
    let object = |account: Option<&Account>| match account.map(|a| serde_json::to_value(&a.fields))
    {
        Some(Ok(Value::Object(fields))) => fields,
        _ => Map::new(),
    };
    let (old, new) = (object(old), object(new));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| old.get(*name) != new.get(*name))
        .map(|name| {
            let change = serde_json::json!({
                "old": old.get(name).cloned().unwrap_or(Value::Null),
                "new": new.get(name).cloned().unwrap_or(Value::Null),
            });
            (name.clone(), change)
        })
        .collect()
}

/// The rest of a committed write: its audit event, and the read-model keys it changed (queued,
/// and returned).
fn commit(
    store: &dyn RegistryStore,
    envelope: &Envelope,
    context: &Context<'_>,
    action: &str,
    old: Option<&Account>,
    new: Option<&Account>,
) -> Result<Vec<Projection>, RegistryError> {
    let id = new
        .or(old)
        .map(|account| account.id.clone())
        .unwrap_or_default();
    store.append_audit(&AuditEvent {
        id: 0,
        at: context.now.to_owned(),
        actor: envelope.actor.clone(),
        action: action.to_owned(),
        account: id.clone(),
        changes: changes(old, new),
        request_id: envelope.request_id.clone(),
    })?;
    let mut touched = vec![Projection::Account(id)];
    // An issuer's index changes only when an entry in it does (a rename or an enable does not
    // touch it): a create, a delete, a move to another issuer, a new subject rule or jwksURI.
    let entry = |account: Option<&Account>| account.map(IndexEntry::of);
    let moved = old.map(|account| &account.fields.issuer_url)
        != new.map(|account| &account.fields.issuer_url);
    if moved || entry(old) != entry(new) {
        for issuer in [old, new].into_iter().flatten() {
            let issuer = Projection::Issuer(issuer.fields.issuer_url.clone());
            if !touched.contains(&issuer) {
                touched.push(issuer);
            }
        }
    }
    for key in &touched {
        store.enqueue(key, context.now)?;
    }
    Ok(touched)
}

#[cfg(test)]
mod tests;

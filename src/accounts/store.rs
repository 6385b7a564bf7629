//! Accounts in the `ACCOUNTS` KV namespace: the record, and the per-issuer lookup index.
//!
//! | key | value | read by |
//! |---|---|---|
//! | `account:{id}` | the [`Account`] as JSON | admin API; token path after the index |
//! | `issuer:{sha256(issuerURL), base64url}` | [`IssuerIndex`]: `{issuerURL, accounts: [{id, subject \| subjectPattern}]}` | token path: the candidates for a token's `iss`, in one read |
//!
//! The record is the truth; the index is only a list of candidates, and the token path checks
//! every candidate against its record. So the writes are ordered to make any half-way failure
//! harmless:
//! - create: index entry first, then record. A failure leaves at most an entry that points at
//!   no record, which grants nothing.
//! - change of issuer or subject rule: new entry, then record, then removal of the old entry.
//!   In between, the account is reachable under the rule its record states, and the other
//!   entry fails the record check.
//! - delete: record first, then the entry. A left-over entry points at nothing.
//!
//! KV has no transactions: two writes to the same issuer's index at the same moment could each
//! drop the other's entry. After writing, the index is read back and the write retried
//! ([`INDEX_WRITE_ATTEMPTS`]); any later write of the account (a PATCH) also restores its entry.
//! No clock and no randomness here: the caller passes the time and the new id.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Account, AccountFields, SubjectRule};
use crate::ports::{KeyValueStore, StorageError};

/// Prefix of account records.
pub const ACCOUNT_PREFIX: &str = "account:";

/// Prefix of per-issuer index documents. The issuer URL is hashed because it may be 600
/// characters and a KV key at most 512 bytes.
pub const ISSUER_INDEX_PREFIX: &str = "issuer:";

/// How often an index update is tried before giving up, when reading it back shows that a
/// concurrent write replaced it.
pub const INDEX_WRITE_ATTEMPTS: usize = 3;

/// One candidate in an issuer's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: String,
    #[serde(flatten)]
    pub subject: SubjectRule,
}

/// The candidates for one issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerIndex {
    #[serde(rename = "issuerURL")]
    pub issuer_url: String,
    pub accounts: Vec<IndexEntry>,
}

/// What can go wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// KV failed; the operation may be retried.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// Another account already has this (issuerURL, subject) or (issuerURL, subjectPattern).
    #[error("conflicts with service account {existing_id}")]
    Conflict {
        existing_id: String,
        rule: SubjectRule,
    },
    /// A stored value could not be read back: a bug or a hand edit.
    #[error("the stored value {key} could not be read")]
    Corrupt { key: String },
}

/// The KV key of an account record.
pub fn account_key(id: &str) -> String {
    format!("{ACCOUNT_PREFIX}{id}")
}

/// The KV key of an issuer's index.
pub fn issuer_index_key(issuer_url: &str) -> String {
    let digest = Sha256::digest(issuer_url.as_bytes());
    format!(
        "{ISSUER_INDEX_PREFIX}{}",
        Base64UrlUnpadded::encode_string(&digest)
    )
}

/// Where a page of the list starts: a KV list cursor (`None`: the beginning), and how many keys
/// of the KV page it starts were already returned (a page is also cut by size, mid-KV-page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPosition {
    #[serde(rename = "c")]
    pub cursor: Option<String>,
    #[serde(rename = "s")]
    pub skip: u32,
}

/// One page of accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPage {
    /// Each account's JSON exactly as stored (which is how the API shows it), in id order.
    pub accounts: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListPosition>,
}

/// Most keys one KV list call returns.
const MAX_KV_LIST_KEYS: u32 = 1000;

/// The accounts of one `ACCOUNTS` namespace.
pub struct AccountStore<'a, S: KeyValueStore> {
    kv: &'a S,
    /// Whether plain reads may be served by a cache in front of KV (the token path), or must
    /// go to KV (the admin API). Writes and their checks always read KV.
    cached_reads: bool,
}

impl<'a, S: KeyValueStore> AccountStore<'a, S> {
    /// For the admin API: every read goes to KV, so an edit never starts from a stale copy.
    pub fn new(kv: &'a S) -> Self {
        Self {
            kv,
            cached_reads: false,
        }
    }

    /// For the token path: reads may come from the isolate's account cache (SPEC.md lets an
    /// isolate keep an account it read for up to 10 s).
    pub fn cached(kv: &'a S) -> Self {
        Self {
            kv,
            cached_reads: true,
        }
    }

    async fn read(&self, key: &str, fresh: bool) -> Result<Option<String>, StoreError> {
        Ok(if fresh || !self.cached_reads {
            self.kv.get_fresh(key).await?
        } else {
            self.kv.get(key).await?
        })
    }

    /// The account with this id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.get_account(id, false).await
    }

    async fn get_account(&self, id: &str, fresh: bool) -> Result<Option<Account>, StoreError> {
        let key = account_key(id);
        match self.read(&key, fresh).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| StoreError::Corrupt { key }),
        }
    }

    /// Accounts in id order from `from` on: at most `limit` of them, and no more than fit in
    /// `max_bytes` of JSON (at least one, so a page always moves on).
    pub async fn list(
        &self,
        from: &ListPosition,
        limit: u32,
        max_bytes: usize,
    ) -> Result<AccountPage, StoreError> {
        let wanted = (from.skip + limit).min(MAX_KV_LIST_KEYS);
        let page = self
            .kv
            .list(ACCOUNT_PREFIX, from.cursor.as_deref(), wanted)
            .await?;
        let keys = page.keys.get(from.skip as usize..).unwrap_or_default();
        let values = self.kv.get_many(keys).await?;
        let (mut accounts, mut bytes, mut taken) = (Vec::new(), 0, 0);
        for (key, value) in keys.iter().zip(values) {
            let size = value.as_ref().map_or(0, String::len);
            if taken == limit as usize || (!accounts.is_empty() && bytes + size > max_bytes) {
                break;
            }
            taken += 1;
            // Deleted between the listing and the read: not an account any more.
            let Some(text) = value else { continue };
            if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
                return Err(StoreError::Corrupt { key: key.clone() });
            }
            bytes += size;
            accounts.push(text);
        }
        let next = if taken < keys.len() {
            Some(ListPosition {
                cursor: from.cursor.clone(),
                skip: from.skip + taken as u32,
            })
        } else {
            page.cursor.map(|cursor| ListPosition {
                cursor: Some(cursor),
                skip: 0,
            })
        };
        Ok(AccountPage { accounts, next })
    }

    /// The index entries for `issuer_url`: the candidate accounts of a token with that `iss`.
    pub async fn candidates(&self, issuer_url: &str) -> Result<Vec<IndexEntry>, StoreError> {
        Ok(self.read_index(issuer_url, false).await?.accounts)
    }

    /// Stores a new account under `id`, created at `now` (RFC 3339).
    pub async fn create(
        &self,
        id: &str,
        fields: AccountFields,
        now: &str,
    ) -> Result<Account, StoreError> {
        self.check_unique(&fields.issuer_url, &fields.subject, id)
            .await?;
        let account = Account {
            id: id.to_owned(),
            fields,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        };
        self.add_entry(&account).await?;
        self.put_record(&account).await?;
        Ok(account)
    }

    /// Replaces `old`'s fields with `fields`, at `now` (RFC 3339).
    pub async fn update(
        &self,
        old: &Account,
        fields: AccountFields,
        now: &str,
    ) -> Result<Account, StoreError> {
        let moved =
            fields.issuer_url != old.fields.issuer_url || fields.subject != old.fields.subject;
        if moved {
            self.check_unique(&fields.issuer_url, &fields.subject, &old.id)
                .await?;
        }
        let account = Account {
            id: old.id.clone(),
            fields,
            created_at: old.created_at.clone(),
            updated_at: now.to_owned(),
        };
        // Always (re)write the entry: this also repairs one lost to a concurrent index write.
        self.add_entry(&account).await?;
        self.put_record(&account).await?;
        if moved {
            self.remove_entry(&old.fields.issuer_url, &old.id, &old.fields.subject)
                .await?;
        }
        Ok(account)
    }

    /// Deletes `account`.
    pub async fn delete(&self, account: &Account) -> Result<(), StoreError> {
        self.kv.delete(&account_key(&account.id)).await?;
        self.remove_entry(
            &account.fields.issuer_url,
            &account.id,
            &account.fields.subject,
        )
        .await
    }

    async fn put_record(&self, account: &Account) -> Result<(), StoreError> {
        let json = serde_json::to_string(account).map_err(|_| StoreError::Corrupt {
            key: account_key(&account.id),
        })?;
        Ok(self.kv.put(&account_key(&account.id), &json, None).await?)
    }

    /// Refuses a second account with the same issuer and subject rule. The index may hold
    /// stale entries, so each entry with the same rule is confirmed against its record.
    async fn check_unique(
        &self,
        issuer_url: &str,
        rule: &SubjectRule,
        own_id: &str,
    ) -> Result<(), StoreError> {
        let index = self.read_index(issuer_url, true).await?;
        for entry in index
            .accounts
            .iter()
            .filter(|entry| &entry.subject == rule && entry.id != own_id)
        {
            if let Some(other) = self.get_account(&entry.id, true).await? {
                if other.fields.issuer_url == issuer_url && &other.fields.subject == rule {
                    return Err(StoreError::Conflict {
                        existing_id: other.id,
                        rule: rule.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn read_index(&self, issuer_url: &str, fresh: bool) -> Result<IssuerIndex, StoreError> {
        let key = issuer_index_key(issuer_url);
        match self.read(&key, fresh).await? {
            None => Ok(IssuerIndex {
                issuer_url: issuer_url.to_owned(),
                accounts: Vec::new(),
            }),
            Some(text) => serde_json::from_str(&text).map_err(|_| StoreError::Corrupt { key }),
        }
    }

    /// Read-modify-write of an issuer's index, read back to detect a concurrent overwrite.
    async fn edit_index(
        &self,
        issuer_url: &str,
        edit: impl Fn(&mut Vec<IndexEntry>),
        done: impl Fn(&[IndexEntry]) -> bool,
    ) -> Result<(), StoreError> {
        let key = issuer_index_key(issuer_url);
        for _ in 0..INDEX_WRITE_ATTEMPTS {
            let mut index = self.read_index(issuer_url, true).await?;
            edit(&mut index.accounts);
            if index.accounts.is_empty() {
                self.kv.delete(&key).await?;
            } else {
                let json = serde_json::to_string(&index)
                    .map_err(|_| StoreError::Corrupt { key: key.clone() })?;
                self.kv.put(&key, &json, None).await?;
            }
            if done(&self.read_index(issuer_url, true).await?.accounts) {
                return Ok(());
            }
        }
        Err(StoreError::Storage(StorageError(format!(
            "the index of {issuer_url} kept changing under concurrent writes; try again"
        ))))
    }

    async fn add_entry(&self, account: &Account) -> Result<(), StoreError> {
        let entry = IndexEntry {
            id: account.id.clone(),
            subject: account.fields.subject.clone(),
        };
        self.edit_index(
            &account.fields.issuer_url,
            |entries| {
                if !entries.contains(&entry) {
                    entries.push(entry.clone());
                }
            },
            |entries| entries.contains(&entry),
        )
        .await
    }

    async fn remove_entry(
        &self,
        issuer_url: &str,
        id: &str,
        rule: &SubjectRule,
    ) -> Result<(), StoreError> {
        let is_it = |entry: &IndexEntry| entry.id == id && &entry.subject == rule;
        self.edit_index(
            issuer_url,
            |entries| entries.retain(|entry| !is_it(entry)),
            |entries| !entries.iter().any(is_it),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::KeyValueStore;
    use crate::testing::memory::{block_on, MemoryStore};

    const NOW: &str = "2026-11-23T12:00:00.000Z";
    const LATER: &str = "2026-11-23T12:05:00.000Z";
    const GITHUB: &str = "https://token.actions.githubusercontent.com";

    fn fields(issuer: &str, subject: SubjectRule) -> AccountFields {
        AccountFields {
            name: "deploy".into(),
            authentication_type: "rsaKeyFederated".into(),
            scopes: vec!["certificate-issuance".into()],
            issuer_url: issuer.into(),
            jwks_uri: None,
            jwks: None,
            subject,
            audience: "https://sts.example.com".into(),
            claims: Default::default(),
            owner: None,
            applications: Vec::new(),
            enabled: true,
        }
    }

    fn exact(subject: &str) -> SubjectRule {
        SubjectRule::Exact(subject.into())
    }

    #[test]
    fn create_writes_the_record_and_an_index_entry() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        let account =
            block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        assert_eq!(account.created_at, NOW);
        assert_eq!(block_on(store.get("a1")).unwrap(), Some(account));
        assert_eq!(
            block_on(store.candidates(GITHUB)).unwrap(),
            [IndexEntry {
                id: "a1".into(),
                subject: exact("repo:acme/app")
            }]
        );
        assert_eq!(kv.keys(), [account_key("a1"), issuer_index_key(GITHUB)]);
    }

    #[test]
    fn the_same_issuer_and_rule_twice_is_a_conflict() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        let error =
            block_on(store.create("a2", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap_err();
        assert_eq!(
            error,
            StoreError::Conflict {
                existing_id: "a1".into(),
                rule: exact("repo:acme/app")
            }
        );
        // Same text as a pattern, another subject, or another issuer: all fine.
        block_on(store.create(
            "a3",
            fields(GITHUB, SubjectRule::Pattern("repo:acme/app".into())),
            NOW,
        ))
        .unwrap();
        block_on(store.create("a4", fields(GITHUB, exact("repo:acme/other")), NOW)).unwrap();
        block_on(store.create(
            "a5",
            fields("https://gitlab.com", exact("repo:acme/app")),
            NOW,
        ))
        .unwrap();
        let error = block_on(store.create(
            "a6",
            fields(GITHUB, SubjectRule::Pattern("repo:acme/app".into())),
            NOW,
        ))
        .unwrap_err();
        assert!(matches!(error, StoreError::Conflict { existing_id, .. } if existing_id == "a3"));
    }

    #[test]
    fn a_stale_index_entry_does_not_block_a_create() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        // The record vanished but its entry stayed (a delete that failed half-way).
        block_on(kv.delete(&account_key("a1"))).unwrap();
        block_on(store.create("a2", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
    }

    #[test]
    fn moving_to_another_issuer_moves_the_entry() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        let old =
            block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        let new = block_on(store.update(
            &old,
            fields("https://gitlab.com", exact("project_path:acme/app")),
            LATER,
        ))
        .unwrap();
        assert_eq!(new.created_at, NOW);
        assert_eq!(new.updated_at, LATER);
        assert!(block_on(store.candidates(GITHUB)).unwrap().is_empty());
        assert_eq!(
            block_on(store.candidates("https://gitlab.com")).unwrap()[0].id,
            "a1"
        );
        assert!(
            !kv.keys().contains(&issuer_index_key(GITHUB)),
            "an empty index is deleted"
        );
    }

    #[test]
    fn changing_the_subject_replaces_the_entry() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        let old =
            block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        block_on(store.update(
            &old,
            fields(GITHUB, SubjectRule::Pattern("repo:acme/*".into())),
            LATER,
        ))
        .unwrap();
        assert_eq!(
            block_on(store.candidates(GITHUB)).unwrap(),
            [IndexEntry {
                id: "a1".into(),
                subject: SubjectRule::Pattern("repo:acme/*".into())
            }]
        );
    }

    #[test]
    fn an_update_into_another_accounts_rule_is_a_conflict_and_changes_nothing() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        let second =
            block_on(store.create("a2", fields(GITHUB, exact("repo:acme/api")), NOW)).unwrap();
        let error = block_on(store.update(&second, fields(GITHUB, exact("repo:acme/app")), LATER))
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict { existing_id, .. } if existing_id == "a1"));
        assert_eq!(block_on(store.get("a2")).unwrap(), Some(second));
        assert_eq!(block_on(store.candidates(GITHUB)).unwrap().len(), 2);
    }

    #[test]
    fn delete_removes_the_record_and_the_entry() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        let account =
            block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        block_on(store.delete(&account)).unwrap();
        assert_eq!(block_on(store.get("a1")).unwrap(), None);
        assert!(kv.keys().is_empty());
    }

    #[test]
    fn list_pages_through_every_account_once() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        for i in 0..5 {
            block_on(store.create(
                &format!("a{i}"),
                fields(GITHUB, exact(&format!("s{i}"))),
                NOW,
            ))
            .unwrap();
        }
        let ids = |limit, max_bytes| {
            let mut seen = Vec::new();
            let mut from = ListPosition::default();
            loop {
                let page = block_on(store.list(&from, limit, max_bytes)).unwrap();
                assert!(!page.accounts.is_empty() && page.accounts.len() <= limit as usize);
                for text in page.accounts {
                    let account: Account = serde_json::from_str(&text).unwrap();
                    seen.push(account.id);
                }
                match page.next {
                    Some(next) => from = next,
                    None => break,
                }
            }
            seen
        };
        assert_eq!(ids(2, usize::MAX), ["a0", "a1", "a2", "a3", "a4"]);
        // Cut by size as well: each page holds as many as fit (at least one), and the next
        // page starts inside the same KV page.
        let size = block_on(kv.get(&account_key("a0"))).unwrap().unwrap().len();
        assert_eq!(ids(1000, size * 2), ["a0", "a1", "a2", "a3", "a4"]);
        assert_eq!(ids(1000, 1), ["a0", "a1", "a2", "a3", "a4"]);
        let first = block_on(store.list(&ListPosition::default(), 1000, size * 2)).unwrap();
        assert_eq!(first.accounts.len(), 2);
        assert_eq!(
            first.next,
            Some(ListPosition {
                cursor: None,
                skip: 2
            })
        );
    }

    #[test]
    fn a_create_that_fails_half_way_grants_nothing_and_blocks_nothing() {
        // The index entry is written, then KV fails before the record is.
        struct FailingRecordWrites<'a>(&'a MemoryStore);
        impl KeyValueStore for FailingRecordWrites<'_> {
            async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
                self.0.get(key).await
            }
            async fn put(
                &self,
                key: &str,
                value: &str,
                ttl: Option<u64>,
            ) -> Result<(), StorageError> {
                if key.starts_with(ACCOUNT_PREFIX) {
                    return Err(StorageError("KV is down".into()));
                }
                self.0.put(key, value, ttl).await
            }
            fn put_in_background(&self, key: &str, value: String, ttl: Option<u64>) {
                self.0.put_in_background(key, value, ttl);
            }
            async fn delete(&self, key: &str) -> Result<(), StorageError> {
                self.0.delete(key).await
            }
            async fn list(
                &self,
                prefix: &str,
                cursor: Option<&str>,
                limit: u32,
            ) -> Result<crate::ports::KeyPage, StorageError> {
                self.0.list(prefix, cursor, limit).await
            }
        }
        let kv = MemoryStore::new();
        let failing = FailingRecordWrites(&kv);
        let error = block_on(AccountStore::new(&failing).create(
            "a1",
            fields(GITHUB, exact("repo:acme/app")),
            NOW,
        ))
        .unwrap_err();
        assert!(matches!(error, StoreError::Storage(_)));
        let store = AccountStore::new(&kv);
        // The dangling entry names an account that does not exist, so the token path finds
        // no record to grant with; and a retry is not refused as a duplicate.
        assert_eq!(block_on(store.candidates(GITHUB)).unwrap()[0].id, "a1");
        assert_eq!(block_on(store.get("a1")).unwrap(), None);
        block_on(store.create("a2", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
    }

    #[test]
    fn an_index_lost_to_a_concurrent_write_is_restored_by_the_next_update() {
        let kv = MemoryStore::new();
        let store = AccountStore::new(&kv);
        let account =
            block_on(store.create("a1", fields(GITHUB, exact("repo:acme/app")), NOW)).unwrap();
        block_on(kv.delete(&issuer_index_key(GITHUB))).unwrap();
        block_on(store.update(&account, account.fields.clone(), LATER)).unwrap();
        assert_eq!(block_on(store.candidates(GITHUB)).unwrap()[0].id, "a1");
    }
}

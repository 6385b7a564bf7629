//! The `ACCOUNTS` KV namespace as the token path reads it: the record, and the per-issuer
//! lookup index. Only the account registry writes it ([`crate::registry::projection`]), after
//! each commit, in commit order; nothing here writes.
//!
//! | key | value | read by |
//! |---|---|---|
//! | `account:{id}` | the [`Account`] as JSON | token path after the index; introspection; the dry run |
//! | `issuer:{sha256(issuerURL), base64url}` | [`IssuerIndex`]: `{issuerURL, accounts: [{id, subject \| subjectPattern, jwksURI?, jwks?: true}]}` | token path: the candidates for a token's `iss`, in one read |
//!
//! The record is the truth; the index is only a list of candidates, and the token path checks
//! every candidate against its record. So a moment where one key is written and the other not
//! yet is harmless: an entry without its record grants nothing, a record without its entry is
//! not found. An entry's `jwksURI` only lets the token path start reading the cached key set
//! while the records are read (a cold location's second round trip, not a third); the key set
//! used is always the record's.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::stored::{missing, wrong, Members};
use super::{Account, SubjectRule};
use crate::ports::{KeyValueStore, StorageError};

/// Prefix of account records.
pub const ACCOUNT_PREFIX: &str = "account:";

/// Prefix of per-issuer index documents. The issuer URL is hashed because it may be 600
/// characters and a KV key at most 512 bytes.
pub const ISSUER_INDEX_PREFIX: &str = "issuer:";

/// One candidate in an issuer's index. Read by [`super::stored`]'s reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    pub id: String,
    #[serde(flatten)]
    pub subject: SubjectRule,
    /// The account's `jwksURI`, when it names one (a hint; absent in indexes written before).
    #[serde(rename = "jwksURI", default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Whether the account holds its keys inline (`jwks`): then no key set is read ahead (a
    /// hint; absent, false, in indexes written before).
    #[serde(rename = "jwks", default, skip_serializing_if = "std::ops::Not::not")]
    pub inline_jwks: bool,
}

impl IndexEntry {
    /// The entry of `account` in its issuer's index.
    pub fn of(account: &Account) -> Self {
        Self {
            id: account.id.clone(),
            subject: account.fields.subject.clone(),
            jwks_uri: account.fields.jwks_uri.clone(),
            inline_jwks: account.fields.jwks.is_some(),
        }
    }
}

/// The candidates for one issuer. Read by [`super::stored`]'s reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerIndex {
    #[serde(rename = "issuerURL")]
    pub issuer_url: String,
    pub accounts: Vec<IndexEntry>,
}

impl<'de> Deserialize<'de> for IndexEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::stored::deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for IssuerIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::stored::deserialize(deserializer)
    }
}

impl TryFrom<Value> for IndexEntry {
    type Error = String;

    /// `{id, subject | subjectPattern, jwksURI?, jwks?: true}`.
    fn try_from(value: Value) -> Result<Self, String> {
        let mut entry = Members::of(value, "an index entry")?;
        Ok(Self {
            id: entry.string("id")?,
            subject: entry.subject_rule()?,
            jwks_uri: entry.optional_string("jwksURI")?,
            inline_jwks: entry.boolean("jwks")?.unwrap_or(false),
        })
    }
}

impl TryFrom<Value> for IssuerIndex {
    type Error = String;

    /// `{issuerURL, accounts: [entry, …]}`.
    fn try_from(value: Value) -> Result<Self, String> {
        let mut index = Members::of(value, "the issuer index")?;
        let accounts = match index.take("accounts") {
            Some(Value::Array(entries)) => entries
                .into_iter()
                .map(IndexEntry::try_from)
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(wrong("accounts", "an array")),
            None => return Err(missing("accounts")),
        };
        Ok(Self {
            issuer_url: index.string("issuerURL")?,
            accounts,
        })
    }
}

/// What can go wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// KV failed; the operation may be retried.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A stored value could not be read back: a bug or a hand edit. `why` is the reader's
    /// reason (which member, what is wrong): for the operator's log.
    #[error("the stored value {key} could not be read: {why}")]
    Corrupt { key: String, why: String },
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

/// The accounts of one `ACCOUNTS` namespace, read (through the isolate's cache, when the
/// platform puts one in front of it).
pub struct AccountStore<'a, S: KeyValueStore> {
    kv: &'a S,
}

impl<'a, S: KeyValueStore> AccountStore<'a, S> {
    pub fn new(kv: &'a S) -> Self {
        Self { kv }
    }

    /// The account with this id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let key = account_key(id);
        let value = self.kv.get(&key).await?;
        parse(key, value)
    }

    /// The accounts with these ids, in the same order, in one read.
    pub async fn get_many(&self, ids: &[&str]) -> Result<Vec<Option<Account>>, StoreError> {
        let keys: Vec<String> = ids.iter().map(|id| account_key(id)).collect();
        let values = self.kv.get_many(&keys).await?;
        keys.into_iter()
            .zip(values)
            .map(|(key, value)| parse(key, value))
            .collect()
    }

    /// The index entries for `issuer_url`: the candidate accounts of a token with that `iss`.
    pub async fn candidates(&self, issuer_url: &str) -> Result<Vec<IndexEntry>, StoreError> {
        let key = issuer_index_key(issuer_url);
        let value = self.kv.get(&key).await?;
        Ok(parse::<IssuerIndex>(key, value)?
            .map(|index| index.accounts)
            .unwrap_or_default())
    }
}

/// A stored value read back: absent is `None`; one that does not parse is [`StoreError::Corrupt`].
fn parse<T: TryFrom<serde_json::Value, Error = String>>(
    key: String,
    value: Option<String>,
) -> Result<Option<T>, StoreError> {
    value
        .map(|text| super::stored::read(&text).map_err(|why| StoreError::Corrupt { key, why }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{block_on, MemoryStore};
    use crate::testing::registry::put_accounts;

    const GITHUB: &str = "https://token.actions.githubusercontent.com";

    fn account(id: &str, issuer: &str, subject: SubjectRule) -> Account {
        let (field, value) = subject.field();
        let mut json = serde_json::json!({
            "id": id,
            "name": "deploy",
            "authenticationType": "rsaKeyFederated",
            "scopes": ["certificate-issuance"],
            "issuerURL": issuer,
            "audience": "https://sts.example.com",
            "enabled": true,
            "createdAt": "2026-11-23T12:00:00.000Z",
            "updatedAt": "2026-11-23T12:00:00.000Z",
        });
        json[field] = value.into();
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_record_and_the_issuers_candidates_are_read_back() {
        let kv = MemoryStore::new();
        let a1 = account("a1", GITHUB, SubjectRule::Exact("repo:acme/app".into()));
        let a2 = account("a2", GITHUB, SubjectRule::Pattern("repo:acme/*".into()));
        let a3 = account("a3", "https://gitlab.com", SubjectRule::Exact("x".into()));
        put_accounts(&kv, &[a1.clone(), a2, a3]);
        let store = AccountStore::new(&kv);
        assert_eq!(block_on(store.get("a1")).unwrap(), Some(a1.clone()));
        assert_eq!(block_on(store.get("zz")).unwrap(), None);
        let reads = kv.reads();
        assert_eq!(
            block_on(store.get_many(&["zz", "a1"])).unwrap(),
            [None, Some(a1.clone())]
        );
        assert_eq!(kv.reads(), reads + 1, "one bulk read");
        assert_eq!(
            block_on(store.candidates(GITHUB)).unwrap(),
            [
                IndexEntry {
                    id: "a1".into(),
                    subject: SubjectRule::Exact("repo:acme/app".into()),
                    jwks_uri: None,
                    inline_jwks: false,
                },
                IndexEntry {
                    id: "a2".into(),
                    subject: SubjectRule::Pattern("repo:acme/*".into()),
                    jwks_uri: None,
                    inline_jwks: false,
                }
            ]
        );
        assert!(block_on(store.candidates("https://nobody.example"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_value_that_cannot_be_read_is_an_error_not_an_absence() {
        let kv = MemoryStore::new();
        block_on(kv.put(&account_key("a1"), "{", None)).unwrap();
        let error = block_on(AccountStore::new(&kv).get("a1")).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { key, .. } if *key == account_key("a1")),
            "{error:?}"
        );
    }
}

//! `ACCOUNTS` reads kept in isolate memory for up to [`ACCOUNT_CACHE_MILLIS`], so a warm
//! exchange reads no KV. SPEC.md allows it: "an isolate may keep an account it read for up to
//! 10 s". Writes go through this cache, so a change takes effect at once in the isolate that
//! made it. Listings are never cached, and `get_fresh` (what admin writes read) goes to KV.
//! No clock here: the request's time is passed in. The platform layer (wasm32) puts it in front
//! of `ACCOUNTS`; natively only its tests use it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::cell::RefCell;
use std::collections::HashMap;

use crate::ports::{KeyPage, KeyValueStore, StorageError};

/// How long a read stays usable, in milliseconds (SPEC.md's 10 s).
pub const ACCOUNT_CACHE_MILLIS: u64 = 10_000;

/// Most keys kept; past it the cache starts over. An isolate serving many thousands of
/// accounts within 10 s gains little from keeping them all.
pub const MAX_CACHED_KEYS: usize = 10_000;

/// The isolate's cache: key → (value or absent, when it was read).
#[derive(Debug, Default)]
pub struct AccountCache {
    entries: RefCell<HashMap<String, (Option<String>, u64)>>,
}

impl AccountCache {
    fn remember(&self, key: &str, value: Option<String>, now_ms: u64) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_CACHED_KEYS && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, now_ms));
    }
}

/// A [`KeyValueStore`] that reads through an [`AccountCache`] at the time `now_ms`.
pub struct CachedStore<'a, K: KeyValueStore> {
    pub inner: &'a K,
    pub cache: &'a AccountCache,
    pub now_ms: u64,
}

impl<K: KeyValueStore> KeyValueStore for CachedStore<'_, K> {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        if let Some((value, read_at)) = self.cache.entries.borrow().get(key) {
            if self.now_ms.saturating_sub(*read_at) < ACCOUNT_CACHE_MILLIS {
                return Ok(value.clone());
            }
        }
        let value = self.inner.get(key).await?;
        self.cache.remember(key, value.clone(), self.now_ms);
        Ok(value)
    }

    async fn get_fresh(&self, key: &str) -> Result<Option<String>, StorageError> {
        let value = self.inner.get(key).await?;
        self.cache.remember(key, value.clone(), self.now_ms);
        Ok(value)
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError> {
        // Forget first: if the write fails half-way, the next read goes to KV.
        self.cache.entries.borrow_mut().remove(key);
        self.inner.put(key, value, ttl_seconds).await?;
        self.cache
            .remember(key, Some(value.to_owned()), self.now_ms);
        Ok(())
    }

    /// The cached copy is forgotten, not replaced: the write may yet fail, and the next read
    /// goes to KV.
    fn put_in_background(&self, key: &str, value: String, ttl_seconds: Option<u64>) {
        self.cache.entries.borrow_mut().remove(key);
        self.inner.put_in_background(key, value, ttl_seconds);
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.cache.entries.borrow_mut().remove(key);
        self.inner.delete(key).await?;
        self.cache.remember(key, None, self.now_ms);
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError> {
        self.inner.list(prefix, cursor, limit).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        self.inner.get_many(keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{block_on, MemoryStore};

    #[test]
    fn reads_are_kept_for_10_s_and_writes_show_at_once() {
        let kv = MemoryStore::new();
        let cache = AccountCache::default();
        let at = |now_ms| CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms,
        };
        block_on(kv.put("account:a", "v1", None)).unwrap();
        assert_eq!(
            block_on(at(0).get("account:a")).unwrap().as_deref(),
            Some("v1")
        );
        let reads = kv.reads();
        // Another isolate changes it: this one keeps its read until 10 s have passed.
        block_on(kv.put("account:a", "v2", None)).unwrap();
        assert_eq!(
            block_on(at(9_999).get("account:a")).unwrap().as_deref(),
            Some("v1")
        );
        assert_eq!(kv.reads(), reads, "served from memory");
        assert_eq!(
            block_on(at(10_000).get("account:a")).unwrap().as_deref(),
            Some("v2")
        );
        // This isolate's own writes and deletes are seen at once.
        block_on(at(10_001).put("account:a", "v3", None)).unwrap();
        assert_eq!(
            block_on(at(10_002).get("account:a")).unwrap().as_deref(),
            Some("v3")
        );
        block_on(at(10_003).delete("account:a")).unwrap();
        assert_eq!(block_on(at(10_004).get("account:a")).unwrap(), None);
    }

    #[test]
    fn absence_is_kept_too_and_a_failed_write_is_forgotten() {
        let kv = MemoryStore::new();
        let cache = AccountCache::default();
        let store = CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms: 0,
        };
        assert_eq!(block_on(store.get("issuer:x")).unwrap(), None);
        let reads = kv.reads();
        assert_eq!(block_on(store.get("issuer:x")).unwrap(), None);
        assert_eq!(kv.reads(), reads);
        kv.fail_with(Some("down"));
        assert!(block_on(store.put("issuer:x", "v", None)).is_err());
        kv.fail_with(None);
        block_on(kv.put("issuer:x", "w", None)).unwrap();
        assert_eq!(
            block_on(store.get("issuer:x")).unwrap().as_deref(),
            Some("w")
        );
    }
}

#[cfg(test)]
mod admin_writes {
    use super::*;
    use crate::accounts::store::{issuer_index_key, AccountStore};
    use crate::accounts::{AccountFields, SubjectRule};
    use crate::testing::memory::{block_on, MemoryStore};

    fn fields(subject: &str) -> AccountFields {
        AccountFields {
            name: subject.into(),
            authentication_type: "rsaKeyFederated".into(),
            scopes: vec!["certificate-issuance".into()],
            issuer_url: "https://idp.example.com".into(),
            jwks_uri: None,
            jwks: None,
            subject: SubjectRule::Exact(subject.into()),
            audience: "aud".into(),
            claims: Default::default(),
            owner: None,
            applications: Vec::new(),
            enabled: true,
        }
    }

    /// An index this isolate read (and cached) a moment ago, then changed by another isolate,
    /// must not be the base of this isolate's next write: that would drop the other's entry.
    #[test]
    fn admin_writes_start_from_kv_not_from_a_cached_index() {
        let kv = MemoryStore::new();
        let cache = AccountCache::default();
        let here = CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms: 0,
        };
        block_on(AccountStore::new(&here).create("a", fields("a"), "t")).unwrap();
        // The token path reads the index here, and keeps it.
        assert_eq!(
            block_on(AccountStore::cached(&here).candidates("https://idp.example.com"))
                .unwrap()
                .len(),
            1
        );
        // Another isolate adds an account for the same issuer.
        block_on(AccountStore::new(&kv).create("b", fields("b"), "t")).unwrap();
        // This isolate adds a third one 1 s later, within the 10 s its read is kept.
        let later = CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms: 1_000,
        };
        block_on(AccountStore::new(&later).create("c", fields("c"), "t")).unwrap();
        let index = block_on(kv.get(&issuer_index_key("https://idp.example.com")))
            .unwrap()
            .unwrap();
        for id in ["\"a\"", "\"b\"", "\"c\""] {
            assert!(index.contains(id), "{id} lost from {index}");
        }
        // And what this isolate wrote, it sees at once on the token path.
        assert_eq!(
            block_on(AccountStore::cached(&later).candidates("https://idp.example.com"))
                .unwrap()
                .len(),
            3
        );
    }
}

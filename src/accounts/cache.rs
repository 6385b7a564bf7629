//! `ACCOUNTS` reads kept in isolate memory for up to [`ACCOUNT_CACHE_MILLIS`], so a warm
//! exchange reads no KV. The contract allows it: "an isolate may keep an account it read for up to
//! 10 s". What the registry answers to this isolate's own admin calls is put here at once
//! ([`KeyValueStore::remember`]), so a change takes effect at once in the isolate that made it.
//!
//! A read that was under way while such a change arrived must not put its older value back:
//! each entry carries the generation it was stored at, and a read keeps what it fetched only
//! if no newer entry for its key arrived meanwhile. Listings are never cached, and `get_fresh`
//! goes to KV. No clock here: the request's time is passed in. The platform layer (wasm32)
//! puts it in front of `ACCOUNTS`; natively only its tests use it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::apart::roomy_map;
use crate::ports::{KeyPage, KeyValueStore, StorageError};

/// How long a read stays usable, in milliseconds (the contract's 10 s).
pub const ACCOUNT_CACHE_MILLIS: u64 = 10_000;

/// Most keys kept; past it the cache starts over. An isolate serving many thousands of
/// accounts within 10 s gains little from keeping them all.
pub const MAX_CACHED_KEYS: usize = 10_000;

/// One kept value (or absence), when it was read, and the generation it was stored at.
#[derive(Debug, Clone)]
struct Entry {
    value: Option<String>,
    read_at: u64,
    generation: u64,
}

/// The isolate's cache.
#[derive(Debug)]
pub struct AccountCache {
    entries: RefCell<HashMap<String, Entry>>,
    /// Moves on with every entry stored.
    generation: Cell<u64>,
}

impl Default for AccountCache {
    fn default() -> Self {
        Self {
            entries: RefCell::new(roomy_map()),
            generation: Cell::new(0),
        }
    }
}

impl AccountCache {
    fn store(&self, key: &str, value: Option<String>, now_ms: u64) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_CACHED_KEYS && !entries.contains_key(key) {
            entries.clear();
        }
        let entry = Entry {
            value,
            read_at: now_ms,
            generation,
        };
        entries.insert(key.to_owned(), entry);
    }

    /// What a read of `key` that started at generation `started` fetched: kept, unless a newer
    /// entry for the key was stored while it was under way; then that one is the answer.
    fn settle(
        &self,
        key: &str,
        fetched: Option<String>,
        started: u64,
        now_ms: u64,
    ) -> Option<String> {
        let newer = self
            .entries
            .borrow()
            .get(key)
            .filter(|entry| entry.generation > started)
            .map(|entry| entry.value.clone());
        match newer {
            Some(value) => value,
            None => {
                self.store(key, fetched.clone(), now_ms);
                fetched
            }
        }
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
        if let Some(entry) = self.cache.entries.borrow().get(key) {
            if self.now_ms.saturating_sub(entry.read_at) < ACCOUNT_CACHE_MILLIS {
                return Ok(entry.value.clone());
            }
        }
        self.get_fresh(key).await
    }

    async fn get_fresh(&self, key: &str) -> Result<Option<String>, StorageError> {
        let started = self.cache.generation.get();
        let value = self.inner.get(key).await?;
        Ok(self.cache.settle(key, value, started, self.now_ms))
    }

    fn remember(&self, key: &str, value: Option<&str>) {
        self.cache.store(key, value.map(str::to_owned), self.now_ms);
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
        self.cache.store(key, Some(value.to_owned()), self.now_ms);
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
        self.cache.store(key, None, self.now_ms);
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

    /// What is kept, from memory; the rest in one bulk read, kept as [`Self::get_fresh`] keeps
    /// a read.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        let kept = |key: &String| {
            self.cache
                .entries
                .borrow()
                .get(key)
                .filter(|entry| self.now_ms.saturating_sub(entry.read_at) < ACCOUNT_CACHE_MILLIS)
                .map(|entry| entry.value.clone())
        };
        let mut values: Vec<Option<Option<String>>> = keys.iter().map(kept).collect();
        let missing: Vec<String> = keys
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if !missing.is_empty() {
            let started = self.cache.generation.get();
            let mut fetched = self.inner.get_many(&missing).await?.into_iter();
            for (key, value) in keys.iter().zip(values.iter_mut()) {
                if value.is_none() {
                    let read = fetched.next().flatten();
                    *value = Some(self.cache.settle(key, read, started, self.now_ms));
                }
            }
        }
        Ok(values.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{block_on, MemoryStore};

    /// KV and one isolate's cache, read and written through at a given time.
    struct Fixture {
        kv: MemoryStore,
        cache: AccountCache,
    }

    impl Fixture {
        fn with(values: &[(&str, &str)]) -> Self {
            let kv = MemoryStore::new();
            for (key, value) in values {
                block_on(kv.put(key, value, None)).unwrap();
            }
            Self {
                kv,
                cache: AccountCache::default(),
            }
        }

        fn at(&self, now_ms: u64) -> CachedStore<'_, MemoryStore> {
            CachedStore {
                inner: &self.kv,
                cache: &self.cache,
                now_ms,
            }
        }

        fn get(&self, now_ms: u64, key: &str) -> Option<String> {
            block_on(self.at(now_ms).get(key)).unwrap()
        }

        fn get_many(&self, now_ms: u64, keys: &[String]) -> Vec<Option<String>> {
            block_on(self.at(now_ms).get_many(keys)).unwrap()
        }

        /// Another isolate's write: straight to KV, unseen by this cache.
        fn elsewhere(&self, key: &str, value: &str) {
            block_on(self.kv.put(key, value, None)).unwrap();
        }
    }

    #[test]
    fn reads_are_kept_for_10_s() {
        let world = Fixture::with(&[("account:a", "v1")]);
        assert_eq!(world.get(0, "account:a").as_deref(), Some("v1"));
        let reads = world.kv.reads();
        world.elsewhere("account:a", "v2");
        assert_eq!(world.get(9_999, "account:a").as_deref(), Some("v1"));
        assert_eq!(world.kv.reads(), reads, "served from memory");
        assert_eq!(world.get(10_000, "account:a").as_deref(), Some("v2"));
    }

    #[test]
    fn this_isolates_own_writes_show_at_once() {
        let world = Fixture::with(&[("account:a", "v1")]);
        assert_eq!(world.get(0, "account:a").as_deref(), Some("v1"));
        block_on(world.at(1).put("account:a", "v3", None)).unwrap();
        assert_eq!(world.get(2, "account:a").as_deref(), Some("v3"));
    }

    #[test]
    fn this_isolates_own_deletes_show_at_once() {
        let world = Fixture::with(&[("account:a", "v1")]);
        assert_eq!(world.get(0, "account:a").as_deref(), Some("v1"));
        block_on(world.at(1).delete("account:a")).unwrap();
        assert_eq!(world.get(2, "account:a"), None);
    }

    #[test]
    fn a_bulk_read_takes_what_is_kept_and_reads_the_rest_at_once() {
        let world = Fixture::with(&[("account:a", "A"), ("account:b", "B"), ("account:c", "C")]);
        assert_eq!(world.get(0, "account:a").as_deref(), Some("A"));
        world.elsewhere("account:a", "A2");
        let keys = ["account:a", "account:b", "account:missing", "account:c"].map(String::from);
        let reads = world.kv.reads();
        assert_eq!(
            world.get_many(1_000, &keys),
            [Some("A".into()), Some("B".into()), None, Some("C".into())],
            "a from memory (its 10 s are not over), the rest from KV"
        );
        assert_eq!(
            world.kv.reads(),
            reads + 1,
            "one bulk read for the three not kept"
        );
    }

    #[test]
    fn a_bulk_read_is_kept_for_10_s_absence_included() {
        let world = Fixture::with(&[("account:a", "A")]);
        let keys = ["account:a", "account:missing"].map(String::from);
        assert_eq!(world.get_many(0, &keys), [Some("A".into()), None]);
        let reads = world.kv.reads();
        world.elsewhere("account:a", "A2");
        world.elsewhere("account:missing", "M");
        assert_eq!(world.get_many(9_999, &keys), [Some("A".into()), None]);
        assert_eq!(world.kv.reads(), reads, "both served from memory");
    }

    #[test]
    fn past_10_s_a_bulk_read_reads_all_again_in_one_read() {
        let world = Fixture::with(&[("account:a", "A")]);
        let keys = ["account:a", "account:missing"].map(String::from);
        world.get_many(0, &keys);
        let reads = world.kv.reads();
        world.elsewhere("account:a", "A2");
        world.elsewhere("account:missing", "M");
        assert_eq!(
            world.get_many(10_000, &keys),
            [Some("A2".into()), Some("M".into())]
        );
        assert_eq!(world.kv.reads(), reads + 1, "one bulk read for both");
    }

    #[test]
    fn absence_is_kept_too() {
        let world = Fixture::with(&[]);
        assert_eq!(world.get(0, "issuer:x"), None);
        let reads = world.kv.reads();
        world.elsewhere("issuer:x", "v");
        assert_eq!(world.get(1, "issuer:x"), None);
        assert_eq!(world.kv.reads(), reads);
    }

    #[test]
    fn a_failed_write_is_forgotten() {
        let world = Fixture::with(&[]);
        assert_eq!(world.get(0, "issuer:x"), None);
        world.kv.fail_with(Some("down"));
        assert!(block_on(world.at(1).put("issuer:x", "v", None)).is_err());
        world.kv.fail_with(None);
        world.elsewhere("issuer:x", "w");
        assert_eq!(
            world.get(2, "issuer:x").as_deref(),
            Some("w"),
            "neither the kept absence nor the failed write is remembered"
        );
    }
}

#[cfg(test)]
mod in_flight {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::testing::memory::MemoryStore;

    /// KV whose reads wait until told to go on, and then answer what KV held when they began.
    struct SlowKv<'a> {
        inner: &'a MemoryStore,
        open: Cell<bool>,
    }

    impl KeyValueStore for SlowKv<'_> {
        async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
            let value = self.inner.get(key).await?;
            std::future::poll_fn(|_| {
                if self.open.get() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            Ok(value)
        }
        async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StorageError> {
            self.inner.put(key, value, ttl).await
        }
        fn put_in_background(&self, key: &str, value: String, ttl: Option<u64>) {
            self.inner.put_in_background(key, value, ttl);
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        async fn list(
            &self,
            prefix: &str,
            cursor: Option<&str>,
            limit: u32,
        ) -> Result<KeyPage, StorageError> {
            self.inner.list(prefix, cursor, limit).await
        }
    }

    /// The token path reads an account; while KV answers, this isolate's admin call disables
    /// it and the registry's answer is remembered. The read that then completes must not put
    /// the enabled record back for 10 s.
    #[test]
    fn a_read_under_way_does_not_undo_a_change_remembered_meanwhile() {
        let kv = MemoryStore::new();
        crate::testing::memory::block_on(kv.put("account:a", "enabled", None)).unwrap();
        let slow = SlowKv {
            inner: &kv,
            open: Cell::new(false),
        };
        let cache = AccountCache::default();
        let store = CachedStore {
            inner: &slow,
            cache: &cache,
            now_ms: 0,
        };
        let mut read = pin!(store.get("account:a"));
        let mut context = Context::from_waker(Waker::noop());
        assert!(read.as_mut().poll(&mut context).is_pending());
        // The admin call's answer arrives (the registry has already written KV).
        crate::testing::memory::block_on(kv.put("account:a", "disabled", None)).unwrap();
        store.remember("account:a", Some("disabled"));
        slow.open.set(true);
        let Poll::Ready(answer) = read.as_mut().poll(&mut context) else {
            panic!("the read should be done");
        };
        assert_eq!(answer.unwrap().as_deref(), Some("disabled"));
        let later = CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms: 5_000,
        };
        let reads = kv.reads();
        assert_eq!(
            crate::testing::memory::block_on(later.get("account:a"))
                .unwrap()
                .as_deref(),
            Some("disabled")
        );
        assert_eq!(kv.reads(), reads, "served from memory, and the newer value");
    }

    /// The same for the bulk read the token path makes of its candidates.
    #[test]
    fn a_bulk_read_under_way_does_not_undo_a_change_remembered_meanwhile() {
        let kv = MemoryStore::new();
        crate::testing::memory::block_on(kv.put("account:a", "enabled", None)).unwrap();
        let slow = SlowKv {
            inner: &kv,
            open: Cell::new(false),
        };
        let cache = AccountCache::default();
        let store = CachedStore {
            inner: &slow,
            cache: &cache,
            now_ms: 0,
        };
        let keys = ["account:a".to_owned(), "account:b".to_owned()];
        let mut read = pin!(store.get_many(&keys));
        let mut context = Context::from_waker(Waker::noop());
        assert!(read.as_mut().poll(&mut context).is_pending());
        store.remember("account:a", Some("disabled"));
        slow.open.set(true);
        let Poll::Ready(answer) = read.as_mut().poll(&mut context) else {
            panic!("the read should be done");
        };
        assert_eq!(answer.unwrap(), [Some("disabled".to_owned()), None]);
        let later = CachedStore {
            inner: &kv,
            cache: &cache,
            now_ms: 5_000,
        };
        assert_eq!(
            crate::testing::memory::block_on(later.get("account:a"))
                .unwrap()
                .as_deref(),
            Some("disabled"),
            "the newer value is what stays"
        );
    }
}

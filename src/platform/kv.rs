//! Workers KV behind the core's [`KeyValueStore`] trait.

use std::cell::Cell;

use worker::js_sys::Promise;
use worker::kv::KvStore;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::Context;

use super::task;
use crate::ports::{KeyPage, KeyValueStore, StorageError};

/// Most keys in one bulk read (Workers KV's limit).
const MAX_BULK_GET_KEYS: usize = 100;

/// One KV namespace binding (`ACCOUNTS` or `JWKS_CACHE`).
pub struct WorkersKv {
    store: KvStore,
    /// The request's `ExecutionContext`: its `waitUntil` keeps the request alive for a write
    /// nobody waits for.
    context: Context,
    /// KV operations made in this request, for the `Server-Timing` counters.
    pub reads: Cell<u32>,
    pub writes: Cell<u32>,
}

impl WorkersKv {
    pub fn new(store: KvStore, context: Context) -> Self {
        Self {
            store,
            context,
            reads: Cell::new(0),
            writes: Cell::new(0),
        }
    }

    fn count(counter: &Cell<u32>) {
        counter.set(counter.get() + 1);
    }
}

fn storage_error(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

impl KeyValueStore for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Self::count(&self.reads);
        self.store.get(key).text().await.map_err(storage_error)
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError> {
        Self::count(&self.writes);
        let mut put = self.store.put(key, value).map_err(storage_error)?;
        if let Some(ttl) = ttl_seconds {
            put = put.expiration_ttl(ttl);
        }
        put.execute().await.map_err(storage_error)
    }

    fn put_in_background(&self, key: &str, value: String, ttl_seconds: Option<u64>) {
        Self::count(&self.writes);
        let mut put = match self.store.put(key, value.as_str()) {
            Ok(put) => put,
            Err(error) => {
                worker::console_error!("KV write of {key} not started: {error}");
                return;
            }
        };
        if let Some(ttl) = ttl_seconds {
            put = put.expiration_ttl(ttl);
        }
        let key = key.to_owned();
        // Polled at once, so the write starts now; the request's answer does not wait for it.
        let write = task::run(async move {
            if let Err(error) = put.execute().await {
                worker::console_error!("KV write of {key} failed: {error}");
            }
            JsValue::UNDEFINED
        });
        // KV answers later, so this is a promise; the runtime keeps the request until it settles.
        if let Ok(write) = write.dyn_into::<Promise>() {
            if let Err(error) = self.context.wait_until(&write) {
                worker::console_error!("waitUntil refused a KV write: {error:?}");
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        Self::count(&self.writes);
        self.store.delete(key).await.map_err(storage_error)
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError> {
        Self::count(&self.reads);
        let mut list = self
            .store
            .list()
            .prefix(prefix.to_owned())
            .limit(u64::from(limit));
        if let Some(cursor) = cursor {
            list = list.cursor(cursor.to_owned());
        }
        let page = list.execute().await.map_err(storage_error)?;
        Ok(KeyPage {
            keys: page.keys.into_iter().map(|key| key.name).collect(),
            cursor: if page.list_complete {
                None
            } else {
                page.cursor
            },
        })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BULK_GET_KEYS) {
            Self::count(&self.reads);
            let mut found = self
                .store
                .get_bulk(chunk)
                .text()
                .await
                .map_err(storage_error)?;
            values.extend(chunk.iter().map(|key| found.remove(key).flatten()));
        }
        Ok(values)
    }
}

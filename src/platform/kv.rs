//! Workers KV behind the core's [`KeyValueStore`] trait.

use worker::kv::KvStore;

use crate::ports::{KeyPage, KeyValueStore, StorageError};

/// Most keys in one bulk read (Workers KV's limit).
const MAX_BULK_GET_KEYS: usize = 100;

/// One KV namespace binding (`ACCOUNTS` or `JWKS_CACHE`).
pub struct WorkersKv(pub KvStore);

fn storage_error(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

impl KeyValueStore for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.0.get(key).text().await.map_err(storage_error)
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError> {
        let mut put = self.0.put(key, value).map_err(storage_error)?;
        if let Some(ttl) = ttl_seconds {
            put = put.expiration_ttl(ttl);
        }
        put.execute().await.map_err(storage_error)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.0.delete(key).await.map_err(storage_error)
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError> {
        let mut list = self
            .0
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
            let mut found = self.0.get_bulk(chunk).text().await.map_err(storage_error)?;
            values.extend(chunk.iter().map(|key| found.remove(key).flatten()));
        }
        Ok(values)
    }
}

//! Workers KV behind the core's [`KeyValueStore`] trait.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::{Array, Map, Promise, Reflect};
use worker::kv::KvStore;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::Context;
use worker::Env;

use super::task;
use crate::ports::{KeyPage, KeyValueStore, StorageError, MAX_BULK_GET_KEYS};

#[wasm_bindgen]
extern "C" {
    /// A KV namespace binding as the runtime hands it over, for its two reads. workers-rs's
    /// builder for them turns the options into a JS object through serde and a bulk answer
    /// into a `HashMap`: code that a cold isolate compiles for its first exchange's reads.
    #[derive(Clone)]
    type KvReads;

    /// `get(key)`: the value as text, or `null`.
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_text(this: &KvReads, key: &str) -> Result<Promise, JsValue>;

    /// `get([key, …])`: a `Map` of each key to its text or `null`.
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_texts(this: &KvReads, keys: &Array) -> Result<Promise, JsValue>;
}

/// A KV namespace binding: workers-rs's wrapper for writes and lists, the runtime's object
/// itself for reads.
#[derive(Clone)]
pub struct Namespace {
    store: KvStore,
    reads: KvReads,
}

impl Namespace {
    /// The namespace bound to `env` as `binding`.
    pub fn from_env(env: &Env, binding: &str) -> worker::Result<Self> {
        let store = env.kv(binding)?;
        let reads = Reflect::get(env, &JsValue::from_str(binding))?.unchecked_into();
        Ok(Self { store, reads })
    }
}

/// One KV namespace binding (`ACCOUNTS` or `JWKS_CACHE`).
pub struct WorkersKv {
    namespace: Namespace,
    /// The request's `ExecutionContext`: its `waitUntil` keeps the request alive for a write
    /// nobody waits for.
    context: Context,
    /// KV operations made in this request, for the `Server-Timing` counters.
    pub reads: Cell<u32>,
    pub writes: Cell<u32>,
    /// The request's waits on KV, shared by its namespaces.
    waits: Rc<Waits>,
}

impl WorkersKv {
    pub fn new(namespace: Namespace, context: Context, waits: Rc<Waits>) -> Self {
        Self {
            namespace,
            context,
            reads: Cell::new(0),
            writes: Cell::new(0),
            waits,
        }
    }

    fn count(counter: &Cell<u32>) {
        counter.set(counter.get() + 1);
    }
}

/// How many times a request waited on KV in sequence: an operation that starts while another
/// is under way shares its wait. On a cold location each such wait is a round trip to KV's
/// central store, so this, not the number of reads, sets the request's latency
/// (docs/performance.md has the model); the `kv-waits` counter of `Server-Timing`.
#[derive(Debug, Default)]
pub struct Waits {
    in_flight: Cell<u32>,
    sequential: Cell<u32>,
}

impl Waits {
    pub fn sequential(&self) -> u32 {
        self.sequential.get()
    }

    /// An operation is under way until the returned guard drops.
    fn begin(&self) -> Waiting<'_> {
        if self.in_flight.get() == 0 {
            self.sequential.set(self.sequential.get() + 1);
        }
        self.in_flight.set(self.in_flight.get() + 1);
        Waiting(self)
    }
}

struct Waiting<'a>(&'a Waits);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

fn storage_error(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

/// What a KV read threw or rejected with.
fn read_error(error: JsValue) -> StorageError {
    let message = match error.dyn_ref::<worker::js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => error.as_string().unwrap_or_else(|| format!("{error:?}")),
    };
    StorageError(format!("KV read failed: {message}"))
}

/// Awaits a KV read: its answer, or what it threw or rejected with.
async fn settled(read: Result<Promise, JsValue>) -> Result<JsValue, StorageError> {
    JsFuture::from(read.map_err(read_error)?)
        .await
        .map_err(read_error)
}

impl KeyValueStore for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Self::count(&self.reads);
        let _waiting = self.waits.begin();
        Ok(settled(self.namespace.reads.get_text(key))
            .await?
            .as_string())
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError> {
        Self::count(&self.writes);
        let mut put = self
            .namespace
            .store
            .put(key, value)
            .map_err(storage_error)?;
        if let Some(ttl) = ttl_seconds {
            put = put.expiration_ttl(ttl);
        }
        let _waiting = self.waits.begin();
        put.execute().await.map_err(storage_error)
    }

    fn put_in_background(&self, key: &str, value: String, ttl_seconds: Option<u64>) {
        Self::count(&self.writes);
        let mut put = match self.namespace.store.put(key, value.as_str()) {
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
        let _waiting = self.waits.begin();
        self.namespace
            .store
            .delete(key)
            .await
            .map_err(storage_error)
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError> {
        Self::count(&self.reads);
        let mut list = self
            .namespace
            .store
            .list()
            .prefix(prefix.to_owned())
            .limit(u64::from(limit));
        if let Some(cursor) = cursor {
            list = list.cursor(cursor.to_owned());
        }
        let _waiting = self.waits.begin();
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
        // One key: a plain read. KV counts and bills both alike, and workerd answers a bulk
        // read of one key more slowly (docs/performance.md, "Cold start, seventh pass").
        match keys {
            [] => return Ok(Vec::new()),
            [key] => return Ok(vec![self.get(key).await?]),
            _ => {}
        }
        let mut values = Vec::with_capacity(keys.len());
        // One wait per 100 keys, in turn: past 100 candidates a cold exchange waits longer,
        // and the counter says so.
        for chunk in keys.chunks(MAX_BULK_GET_KEYS) {
            Self::count(&self.reads);
            let _waiting = self.waits.begin();
            let names: Array = chunk.iter().map(|key| JsValue::from_str(key)).collect();
            let found: Map = settled(self.namespace.reads.get_texts(&names))
                .await?
                .dyn_into()
                .map_err(|_| StorageError("KV's bulk read answered something not a Map".into()))?;
            values.extend(
                chunk
                    .iter()
                    .map(|key| found.get(&JsValue::from_str(key)).as_string()),
            );
        }
        Ok(values)
    }
}

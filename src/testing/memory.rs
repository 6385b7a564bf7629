//! In-memory twins of the platform traits in [`crate::ports`] ([`super::platform`] makes the
//! tests' [`crate::ports::Platform`] of them).
//!
//! They behave like the Workers implementations where tests can tell (listing order, cursors,
//! absent keys: `conformance.rs` holds the KV twin and Workers KV to the same cases)
//! and record what was asked of them, so tests can assert "no subrequest". The signer twin uses
//! pure-Rust P-256 (jwt-compact's `Es256`) and exists only natively.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use crate::ports::{
    Clock, Entropy, EntropyError, FetchError, Fetched, KeyPage, KeySetFetcher, KeyValueStore,
    StorageError, MAX_BULK_GET_KEYS,
};

/// Runs a future that only awaits in-memory services to completion. Those never pend, so one
/// poll suffices; a future that does pend is a test bug and panics.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("block_on: the future awaited something that is not in memory"),
    }
}

/// Shortest expiration Workers KV accepts, in seconds.
pub const MIN_TTL_SECONDS: u64 = 60;

/// Longest key Workers KV accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 512;

/// As Workers KV: a key over [`MAX_KEY_BYTES`] is refused.
fn check_key(key: &str) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError(format!(
            "a key of {} bytes; at most {MAX_KEY_BYTES} are accepted",
            key.len()
        )));
    }
    Ok(())
}

/// A stored value and the TTL it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    pub value: String,
    pub ttl_seconds: Option<u64>,
}

/// Workers KV in memory. TTLs are recorded, not enforced: tests control time themselves.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, StoredValue>>,
    /// When set, every call fails with this message: a KV outage.
    failure: RefCell<Option<String>>,
    reads: Cell<usize>,
    writes: Cell<usize>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail (`Some`) or succeed again (`None`).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failure.borrow_mut() = message.map(str::to_owned);
    }

    /// The entry under `key`, with its TTL.
    pub fn entry(&self, key: &str) -> Option<StoredValue> {
        self.entries.borrow().get(key).cloned()
    }

    /// All keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.entries.borrow().keys().cloned().collect()
    }

    /// How many gets and lists were asked.
    pub fn reads(&self) -> usize {
        self.reads.get()
    }

    /// How many puts and deletes succeeded.
    pub fn writes(&self) -> usize {
        self.writes.get()
    }

    fn check(&self) -> Result<(), StorageError> {
        match &*self.failure.borrow() {
            Some(message) => Err(StorageError(message.clone())),
            None => Ok(()),
        }
    }
}

impl KeyValueStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.reads.set(self.reads.get() + 1);
        self.check()?;
        check_key(key)?;
        Ok(self
            .entries
            .borrow()
            .get(key)
            .map(|stored| stored.value.clone()))
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError> {
        self.check()?;
        check_key(key)?;
        // As Workers KV: an expiration under a minute is refused.
        if ttl_seconds.is_some_and(|ttl| ttl < MIN_TTL_SECONDS) {
            return Err(StorageError(format!(
                "expiration TTL must be at least {MIN_TTL_SECONDS} seconds"
            )));
        }
        let stored = StoredValue {
            value: value.to_owned(),
            ttl_seconds,
        };
        self.entries.borrow_mut().insert(key.to_owned(), stored);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    /// Written at once (there is nothing to wait for in memory); a failure is dropped.
    fn put_in_background(&self, key: &str, value: String, ttl_seconds: Option<u64>) {
        if self.check().is_ok() {
            let stored = StoredValue { value, ttl_seconds };
            self.entries.borrow_mut().insert(key.to_owned(), stored);
            self.writes.set(self.writes.get() + 1);
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.check()?;
        self.entries.borrow_mut().remove(key);
        self.writes.set(self.writes.get() + 1);
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError> {
        self.check()?;
        // Like KV, the cursor is opaque to callers; here it is the last key already returned.
        let entries = self.entries.borrow();
        let mut keys = entries
            .keys()
            .filter(|key| key.starts_with(prefix))
            .filter(|key| cursor.is_none_or(|after| key.as_str() > after))
            .take(limit as usize + 1)
            .cloned()
            .collect::<Vec<_>>();
        let cursor = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, cursor })
    }

    /// One read per 100 keys, as Workers KV's bulk read.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        self.reads
            .set(self.reads.get() + keys.len().div_ceil(MAX_BULK_GET_KEYS));
        self.check()?;
        for key in keys {
            check_key(key)?;
        }
        let entries = self.entries.borrow();
        Ok(keys
            .iter()
            .map(|key| entries.get(key).map(|stored| stored.value.clone()))
            .collect())
    }
}

/// `fetch()` in memory: answers from a table of URLs, and counts the calls.
#[derive(Debug, Default)]
pub struct MemoryFetcher {
    responses: RefCell<HashMap<String, Result<Fetched, FetchError>>>,
    requests: RefCell<Vec<String>>,
}

impl MemoryFetcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `body` with status 200 and `cache_control` at `url`.
    pub fn serve(&self, url: &str, body: &str, cache_control: Option<&str>) {
        let fetched = Fetched {
            status: 200,
            cache_control: cache_control.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        };
        self.respond(url, Ok(fetched));
    }

    /// Sets the outcome of fetching `url`.
    pub fn respond(&self, url: &str, outcome: Result<Fetched, FetchError>) {
        self.responses.borrow_mut().insert(url.to_owned(), outcome);
    }

    /// Every URL fetched so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.borrow().clone()
    }
}

impl KeySetFetcher for MemoryFetcher {
    async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        self.requests.borrow_mut().push(url.to_owned());
        self.responses
            .borrow()
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err(FetchError::Network(format!("nothing served at {url}"))))
    }
}

/// A rate limiter in memory: allows `limit` requests per key, counting every call.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    limit: u32,
    counts: RefCell<HashMap<String, u32>>,
}

impl MemoryRateLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            counts: RefCell::default(),
        }
    }

    /// How often `key` was asked about.
    pub fn count(&self, key: &str) -> u32 {
        self.counts.borrow().get(key).copied().unwrap_or(0)
    }
}

impl crate::ports::RateLimiter for MemoryRateLimiter {
    async fn allow(&self, key: &str) -> bool {
        let mut counts = self.counts.borrow_mut();
        let count = counts.entry(key.to_owned()).or_default();
        *count += 1;
        *count <= self.limit
    }
}

/// Log lines kept in memory, for tests to read.
#[derive(Debug, Default)]
pub struct MemoryLog(RefCell<Vec<serde_json::Value>>);

impl MemoryLog {
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.0.borrow().clone()
    }
}

impl crate::ports::EventLog for MemoryLog {
    fn record(&self, event: crate::ports::TokenEvent) {
        let line = serde_json::to_value(event).expect("a log line is JSON");
        self.0.borrow_mut().push(line);
    }
}

/// A clock that says what the test tells it.
#[derive(Debug, Default)]
pub struct FixedClock(Cell<u64>);

impl FixedClock {
    /// A clock at `seconds` after the epoch.
    pub fn at_seconds(seconds: u64) -> Self {
        Self(Cell::new(seconds * 1000))
    }

    /// Moves the clock forward.
    pub fn advance_seconds(&self, seconds: u64) {
        self.0.set(self.0.get() + seconds * 1000);
    }
}

impl Clock for FixedClock {
    fn now_millis(&self) -> u64 {
        self.0.get()
    }
}

/// Predictable "random" bytes: each call fills with the next counter value, so tests can
/// name the ids they will get.
#[derive(Debug, Default)]
pub struct CountingEntropy(Cell<u8>);

impl Entropy for CountingEntropy {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), EntropyError> {
        let next = self.0.get().wrapping_add(1);
        self.0.set(next);
        bytes.fill(next);
        Ok(())
    }
}

/// The WHATWG URL Standard in Rust (the `url` crate), as the runtime's `URL` parses.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct WhatwgUrls;

#[cfg(not(target_arch = "wasm32"))]
impl crate::ports::UrlParser for WhatwgUrls {
    fn parse(&self, input: &str, base: Option<&str>) -> Option<crate::ports::ParsedUrl> {
        use url::{quirks, Url};
        let url = match base {
            None => Url::parse(input).ok()?,
            Some(base) => Url::parse(base).ok()?.join(input).ok()?,
        };
        Some(crate::ports::ParsedUrl {
            href: quirks::href(&url).to_owned(),
            protocol: quirks::protocol(&url).to_owned(),
            username: quirks::username(&url).to_owned(),
            password: quirks::password(&url).to_owned(),
            hostname: quirks::hostname(&url).to_owned(),
            port: quirks::port(&url).to_owned(),
            pathname: quirks::pathname(&url).to_owned(),
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use signer::MemorySigner;

#[cfg(not(target_arch = "wasm32"))]
mod signer {
    use jwt_compact::alg::Es256;
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::{Algorithm, AlgorithmSignature};

    use crate::config::signing_keys::SigningKey;
    use crate::ports::{SignError, Signer};

    /// ES256 in pure Rust (RustCrypto's p256 through jwt-compact): the native twin of the
    /// Web Crypto signer.
    pub struct MemorySigner {
        kid: String,
        key: p256::ecdsa::SigningKey,
    }

    impl MemorySigner {
        /// Loads a parsed `SIGNING_KEYS` key. Fails when `d` does not belong to `x`/`y`.
        pub fn new(key: &SigningKey) -> Result<Self, SignError> {
            let jwk: JsonWebKey<'_> = serde_json::from_value(key.private_jwk.clone())
                .map_err(|_| SignError("the key's parameters could not be read".into()))?;
            let signing_key = p256::ecdsa::SigningKey::try_from(&jwk)
                .map_err(|error| SignError(format!("not a usable P-256 key: {error}")))?;
            Ok(Self {
                kid: key.kid.clone(),
                key: signing_key,
            })
        }
    }

    impl Signer for MemorySigner {
        fn kid(&self) -> &str {
            &self.kid
        }

        async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
            Ok(Es256.sign(&self.key, signing_input).as_bytes().into_owned())
        }
    }
}

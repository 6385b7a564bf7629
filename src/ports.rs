//! The outside world as the core sees it: one [`Platform`] whose associated types are the
//! small traits below. The platform layer (`src/platform/`) implements it on Cloudflare
//! Workers; `testing::memory` implements it in memory for native tests. The core's entry takes
//! `&P: Platform`; below it, each function is handed only the one port it uses.
//!
//! | trait | Workers | in memory |
//! |---|---|---|
//! | [`KeyValueStore`] (`ACCOUNTS`, `JWKS_CACHE`) | Workers KV | [`crate::testing::memory::MemoryStore`] |
//! | [`KeySetFetcher`] | `fetch()` | [`crate::testing::memory::MemoryFetcher`] |
//! | [`Signer`] | Web Crypto `crypto.subtle` | [`crate::testing::memory::MemorySigner`] (native only) |
//! | [`SignatureVerifier`] | Web Crypto `crypto.subtle` | [`crate::testing::native_crypto::RustCryptoVerifier`] (native only) |
//! | [`Entropy`] | `crypto.getRandomValues` (getrandom) | [`crate::testing::memory::CountingEntropy`] |
//! | [`EventLog`] | `console.log` | [`crate::testing::memory::MemoryLog`] |
//! | [`Clock`] | `Date.now()` | [`crate::testing::memory::FixedClock`] |
//! | [`RateLimiter`] | the `TOKEN_RATE_LIMIT` binding | none: tests bind Miniflare's own |
//! | [`UrlParser`] | the runtime's `URL` | [`crate::testing::memory::WhatwgUrls`] (the `url` crate, native only) |
//! | [`Registry`] (`REGISTRY`) | the `AccountRegistry` Durable Object | [`crate::testing::registry::MemoryRegistry`] |
//!
//! The futures are not `Send`: a Workers isolate runs one thread.
#![allow(async_fn_in_trait)]

pub use crate::jose::verify::{SignatureVerifier, VerifyError};
pub use crate::text::url::{ParsedUrl, UrlParser};

/// Everything outside the core, for one request: the bindings, the runtime's services, and the
/// request's own clock and log.
pub trait Platform {
    /// The `ACCOUNTS` namespace: the token path's read model of the accounts.
    type Accounts: KeyValueStore;
    /// The `JWKS_CACHE` namespace.
    type KeySetCache: KeyValueStore;
    type Fetcher: KeySetFetcher;
    type Verifier: SignatureVerifier;
    type Signer: Signer;
    type Entropy: Entropy;
    type Clock: Clock;
    type Log: EventLog;
    type Urls: UrlParser;
    type RateLimiter: RateLimiter;
    /// `REGISTRY`: the one writer of accounts.
    type Registry: Registry;

    fn accounts(&self) -> &Self::Accounts;
    fn key_set_cache(&self) -> &Self::KeySetCache;
    fn fetcher(&self) -> &Self::Fetcher;
    fn verifier(&self) -> &Self::Verifier;
    /// The active signing key; `None` when `SIGNING_KEYS` is unusable (nothing is minted).
    fn signer(&self) -> Option<&Self::Signer>;
    fn entropy(&self) -> &Self::Entropy;
    fn clock(&self) -> &Self::Clock;
    fn log(&self) -> &Self::Log;
    fn urls(&self) -> &Self::Urls;
    /// `TOKEN_RATE_LIMIT`, when bound.
    fn rate_limiter(&self) -> Option<&Self::RateLimiter>;
    fn registry(&self) -> &Self::Registry;
}

/// The account registry (`crate::registry`), reached as a service: a command goes in as JSON,
/// its answer comes back as JSON. On Workers it runs in the `AccountRegistry` Durable Object,
/// so every call, from any isolate anywhere, is applied one at a time.
pub trait Registry {
    /// Sends one command; `Err` only when the registry could not be reached.
    async fn call(&self, command: String) -> Result<String, StorageError>;
}

/// A failure of the storage backend itself (not "key absent", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StorageError(pub String);

/// One page of a key listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Key names, in lexicographic order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

/// Most keys in one Workers KV bulk read (its limit).
pub const MAX_BULK_GET_KEYS: usize = 100;

/// A key-value namespace with eventually consistent reads, as Workers KV is.
pub trait KeyValueStore {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    /// Stores `value` under `key`; with a TTL, the entry disappears after that many seconds.
    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StorageError>;
    /// Starts storing `value` under `key` and returns at once, for a write whose outcome the
    /// caller would ignore anyway (the shared key-set cache). The platform keeps the request
    /// alive until the write is done (Workers' `waitUntil`), so the answer does not wait for
    /// KV; a failed write is logged there, never reported.
    fn put_in_background(&self, key: &str, value: String, ttl_seconds: Option<u64>);
    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Up to `limit` keys starting with `prefix`, from `cursor` on.
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, StorageError>;
    /// The value under `key`, bypassing any cache in front of the store. Writes that
    /// read-modify-write must start from this, never from a copy kept in memory.
    async fn get_fresh(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.get(key).await
    }
    /// Tells a cache in front of the store what `key` now holds (`None`: absent), as learnt from
    /// the one writer of the store; a store without a cache ignores it.
    fn remember(&self, _key: &str, _value: Option<&str>) {}
    /// The values under `keys`, in the same order. Workers KV reads up to
    /// [`MAX_BULK_GET_KEYS`] in one operation.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StorageError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
}

/// What a fetch of an issuer's document brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    /// The `Cache-Control` header, for the key set's freshness.
    pub cache_control: Option<String>,
    pub body: Vec<u8>,
}

/// Time allowed for one issuer document, redirects and body included, in seconds (the contract;
/// panva/jose's default).
pub const FETCH_TIMEOUT_SECONDS: u64 = 5;

/// Largest issuer document accepted, in bytes (the contract). Google's JWKS is ~1.5 KiB; 100
/// RSA-4096 keys with certificates stay under 256 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a fetch brought nothing back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No answer within [`FETCH_TIMEOUT_SECONDS`].
    #[error("no answer within {FETCH_TIMEOUT_SECONDS} s")]
    Timeout,
    /// The body was larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the body is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Redirected too often, or to a URL the rules refuse.
    #[error("{0}")]
    BadRedirect(String),
    /// The connection failed.
    #[error("{0}")]
    Network(String),
}

/// Fetches issuer documents (OIDC discovery, JWKS) by URL under the SPEC's limits.
pub trait KeySetFetcher {
    async fn fetch(&self, url: &str) -> Result<Fetched, FetchError>;
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// Signs minted tokens with the active `SIGNING_KEYS` key.
pub trait Signer {
    /// The `kid` to put in the header of what this signs.
    fn kid(&self) -> &str;
    /// The ES256 signature of `signing_input`, in JWS form (r‖s, 64 bytes).
    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Why no random bytes could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EntropyError(pub String);

/// Cryptographically secure random bytes: account ids now, token ids later.
pub trait Entropy {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), EntropyError>;
}

/// Where the one structured log line per token request goes (the contract). The line is a JSON
/// object without any token, signature or secret; the platform adds the latency.
pub trait EventLog {
    fn record(&self, event: TokenEvent);
}

/// One token request's log line (`http::token::log_event` fills it in): its outcome and
/// refusal, the account, and the incoming token's `iss`, `sub` and `jti`. Written as a JSON
/// object with the members in this order, alphabetical; absent values are `null`, except the
/// latency, which only the platform knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenEvent {
    pub account: Option<String>,
    /// What the client was not told: configured values, URLs, what an issuer or KV answered.
    pub detail: Option<String>,
    pub error: Option<&'static str>,
    /// Always `token_request`.
    pub event: &'static str,
    pub form: Option<&'static str>,
    pub iss: Option<String>,
    pub jti: Option<String>,
    /// Milliseconds the request waited on I/O, added by the platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `issued` or `refused`.
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
    pub status: u16,
    pub sub: Option<String>,
}

/// A per-key request limit: Workers Rate Limiting (`TOKEN_RATE_LIMIT`), when the deployment
/// binds one.
pub trait RateLimiter {
    /// Whether one more request under `key` is within the limit (and counts it). A limiter that
    /// cannot answer lets the request through: availability over strictness.
    async fn allow(&self, key: &str) -> bool;
}

/// The current time. Read once per request, by the router, and passed down as `now`: nothing
/// below it reads a clock.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

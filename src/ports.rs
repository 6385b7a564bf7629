//! The small traits through which the core reaches the outside world.
//!
//! The platform layer (`src/platform/`) implements each one on Cloudflare Workers; `memory`
//! implements each one in memory for native tests. The core takes `&impl Trait` and never
//! knows which it has.
//!
//! | trait | Workers | in memory |
//! |---|---|---|
//! | [`KeyValueStore`] (`ACCOUNTS`, `JWKS_CACHE`) | Workers KV | [`crate::memory::MemoryStore`] |
//! | [`KeySetFetcher`] | `fetch()` | [`crate::memory::MemoryFetcher`] |
//! | [`Signer`] | Web Crypto `crypto.subtle` | [`crate::memory::MemorySigner`] (native only) |
//! | [`SignatureVerifier`] | Web Crypto `crypto.subtle` | [`crate::native_crypto::RustCryptoVerifier`] (native only) |
//! | [`Entropy`] | `crypto.getRandomValues` (getrandom) | [`crate::memory::CountingEntropy`] |
//! | [`EventLog`] | `console.log` | [`crate::memory::MemoryLog`] |
//! | [`Clock`] | `Date.now()` | [`crate::memory::FixedClock`] |
//! | [`RateLimiter`] | the `TOKEN_RATE_LIMIT` binding | none: tests bind Miniflare's own |
//! | [`UrlParser`] | the runtime's `URL` | [`crate::memory::WhatwgUrls`] (the `url` crate, native only) |
//!
//! The futures are not `Send`: a Workers isolate runs one thread.
#![allow(async_fn_in_trait)]

use std::fmt;

/// A failure of the storage backend itself (not "key absent", which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage failed: {}", self.0)
    }
}

/// One page of a key listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Key names, in lexicographic order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

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
    /// The values under `keys`, in the same order. Workers KV reads up to 100 in one operation.
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

/// Why a fetch brought nothing back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// No answer within the time limit.
    Timeout,
    /// The body was larger than the limit.
    TooLarge,
    /// Redirected too often, or to a URL the rules refuse.
    BadRedirect(String),
    /// The connection failed.
    Network(String),
}

/// Fetches issuer documents (OIDC discovery, JWKS) by URL under the SPEC's limits.
pub trait KeySetFetcher {
    async fn fetch(&self, url: &str) -> Result<Fetched, FetchError>;
}

/// Why a signature could not be checked at all (as opposed to checked and found wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError(pub String);

/// Verifies a workload token's signature with one of its issuer's keys. The key has already
/// been checked to fit the algorithm, and the signature's shape to fit the key.
pub trait SignatureVerifier {
    async fn verify(
        &self,
        alg: crate::token::alg::Alg,
        key: &crate::token::keys::IssuerKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifyError>;
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub String);

/// Signs minted tokens with the active `SIGNING_KEYS` key.
pub trait Signer {
    /// The `kid` to put in the header of what this signs.
    fn kid(&self) -> &str;
    /// The ES256 signature of `signing_input`, in JWS form (r‖s, 64 bytes).
    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Why no random bytes could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntropyError(pub String);

/// Cryptographically secure random bytes: account ids now, token ids later.
pub trait Entropy {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), EntropyError>;
}

/// A URL as the WHATWG URL Standard parses it: the parser the platform's `fetch` uses itself,
/// so a URL checked and stored in this form is exactly the URL that is later fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The serialisation (`href`): lower-case scheme and host, IDNA to ASCII, IPv4 in dotted
    /// decimal, default port dropped, percent-encoding and dot segments normalised.
    pub href: String,
    /// `"https:"`, `"http:"`, …
    pub protocol: String,
    pub username: String,
    pub password: String,
    /// The host as it is connected to; an IPv6 literal keeps its brackets.
    pub hostname: String,
    /// Empty for the scheme's default port.
    pub port: String,
    pub pathname: String,
}

/// Parses URLs by the WHATWG URL Standard. Pure, but a port all the same: in the worker it is
/// the runtime's own `URL` (what `fetch` parses with, and no code in the wasm); natively a
/// Rust implementation of the same standard.
pub trait UrlParser {
    /// `input` parsed, against `base` when given (as a redirect's `Location` is); `None` when
    /// the standard calls it a failure.
    fn parse(&self, input: &str, base: Option<&str>) -> Option<ParsedUrl>;
}

/// Where the one structured log line per token request goes (SPEC.md). The line is a JSON
/// object without any token, signature or secret; the platform adds the latency.
pub trait EventLog {
    fn record(&self, event: serde_json::Value);
}

/// A per-key request limit: Workers Rate Limiting (`TOKEN_RATE_LIMIT`), when the deployment
/// binds one.
pub trait RateLimiter {
    /// Whether one more request under `key` is within the limit (and counts it). A limiter that
    /// cannot answer lets the request through: availability over strictness.
    async fn allow(&self, key: &str) -> bool;
}

/// The current time. Read once per request by the platform layer and passed into the core.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}

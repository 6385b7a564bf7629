//! [`MemoryPlatform`], the [`Platform`] of native tests, made of the in-memory twins
//! ([`super::memory`]) and the in-memory registry ([`super::registry`]), which projects into
//! the same `accounts` store the token path reads.

use std::rc::Rc;

use super::memory::{
    CountingEntropy, FixedClock, MemoryFetcher, MemoryLog, MemoryRateLimiter, MemorySigner,
    MemoryStore, WhatwgUrls,
};
use super::native_crypto::RustCryptoVerifier;
use super::registry::MemoryRegistry;
use crate::ports::Platform;

/// The platform of native tests: every port in memory, each a public field a test can set up
/// and inspect. The registry projects into `accounts`, as the Durable Object into `ACCOUNTS`.
pub struct MemoryPlatform {
    pub accounts: Rc<MemoryStore>,
    pub jwks_cache: MemoryStore,
    pub fetcher: MemoryFetcher,
    pub verifier: RustCryptoVerifier,
    pub signer: Option<MemorySigner>,
    pub entropy: CountingEntropy,
    pub clock: FixedClock,
    pub log: MemoryLog,
    pub rate_limiter: Option<MemoryRateLimiter>,
    pub registry: MemoryRegistry,
}

impl Default for MemoryPlatform {
    fn default() -> Self {
        let accounts = Rc::new(MemoryStore::new());
        Self {
            registry: MemoryRegistry::new(accounts.clone()),
            accounts,
            jwks_cache: MemoryStore::default(),
            fetcher: MemoryFetcher::default(),
            verifier: Default::default(),
            signer: None,
            entropy: CountingEntropy::default(),
            clock: FixedClock::default(),
            log: MemoryLog::default(),
            rate_limiter: None,
        }
    }
}

impl Platform for MemoryPlatform {
    type Accounts = MemoryStore;
    type KeySetCache = MemoryStore;
    type Fetcher = MemoryFetcher;
    type Verifier = RustCryptoVerifier;
    type Signer = MemorySigner;
    type Entropy = CountingEntropy;
    type Clock = FixedClock;
    type Log = MemoryLog;
    type Urls = WhatwgUrls;
    type RateLimiter = MemoryRateLimiter;
    type Registry = MemoryRegistry;

    fn accounts(&self) -> &MemoryStore {
        &self.accounts
    }
    fn key_set_cache(&self) -> &MemoryStore {
        &self.jwks_cache
    }
    fn fetcher(&self) -> &MemoryFetcher {
        &self.fetcher
    }
    fn verifier(&self) -> &Self::Verifier {
        &self.verifier
    }
    fn signer(&self) -> Option<&MemorySigner> {
        self.signer.as_ref()
    }
    fn entropy(&self) -> &CountingEntropy {
        &self.entropy
    }
    fn clock(&self) -> &FixedClock {
        &self.clock
    }
    fn log(&self) -> &MemoryLog {
        &self.log
    }
    fn urls(&self) -> &WhatwgUrls {
        &WhatwgUrls
    }
    fn rate_limiter(&self) -> Option<&MemoryRateLimiter> {
        self.rate_limiter.as_ref()
    }
    fn registry(&self) -> &MemoryRegistry {
        &self.registry
    }
}

//! The small ports on the Workers runtime — clock, entropy, log, URL parser, rate limiter, the
//! way to the account registry — and [`WorkersPlatform`], the [`Platform`] of one request.
//! (The registry's Durable Object itself is [`super::registry`].)

use worker::js_sys::Date;
use worker::wasm_bindgen::JsValue;
use worker::web_sys;
use worker::{Env, Method, RequestInit};

use super::crypto::{WebCryptoSigner, WebCryptoVerifier};
use super::fetch::WorkersFetcher;
use super::kv::WorkersKv;
use crate::accounts::cache::CachedStore;
use crate::ports::{
    Clock, Entropy, EntropyError, EventLog, ParsedUrl, Platform, RateLimiter, Registry,
    StorageError, TokenEvent, UrlParser,
};

/// The platform of one request: its bindings (`ACCOUNTS` behind the isolate's account cache),
/// the isolate's imported keys, and its own clock and log.
pub struct WorkersPlatform<'a> {
    pub accounts: CachedStore<'a, WorkersKv>,
    pub jwks_cache: WorkersKv,
    pub fetcher: WorkersFetcher,
    pub verifier: &'a WebCryptoVerifier,
    pub signer: Option<&'a WebCryptoSigner>,
    pub log: ConsoleLog,
    pub rate_limiter: Option<&'a WorkersRateLimiter>,
    pub registry: WorkersRegistry<'a>,
}

impl<'a> Platform for WorkersPlatform<'a> {
    type Accounts = CachedStore<'a, WorkersKv>;
    type KeySetCache = WorkersKv;
    type Fetcher = WorkersFetcher;
    type Verifier = WebCryptoVerifier;
    type Signer = WebCryptoSigner;
    type Entropy = WorkersEntropy;
    type Clock = WorkersClock;
    type Log = ConsoleLog;
    type Urls = JsUrls;
    type RateLimiter = WorkersRateLimiter;
    type Registry = WorkersRegistry<'a>;

    fn accounts(&self) -> &Self::Accounts {
        &self.accounts
    }
    fn key_set_cache(&self) -> &WorkersKv {
        &self.jwks_cache
    }
    fn fetcher(&self) -> &WorkersFetcher {
        &self.fetcher
    }
    fn verifier(&self) -> &WebCryptoVerifier {
        self.verifier
    }
    fn signer(&self) -> Option<&WebCryptoSigner> {
        self.signer
    }
    fn entropy(&self) -> &WorkersEntropy {
        &WorkersEntropy
    }
    fn clock(&self) -> &WorkersClock {
        &WorkersClock
    }
    fn log(&self) -> &ConsoleLog {
        &self.log
    }
    fn urls(&self) -> &JsUrls {
        &JsUrls
    }
    fn rate_limiter(&self) -> Option<&WorkersRateLimiter> {
        self.rate_limiter
    }
    fn registry(&self) -> &WorkersRegistry<'a> {
        &self.registry
    }
}

/// The runtime's own WHATWG `URL`: exactly the parser its `fetch` uses.
pub struct JsUrls;

impl UrlParser for JsUrls {
    fn parse(&self, input: &str, base: Option<&str>) -> Option<ParsedUrl> {
        let url = match base {
            None => web_sys::Url::new(input),
            Some(base) => web_sys::Url::new_with_base(input, base),
        }
        .ok()?;
        Some(ParsedUrl {
            href: url.href(),
            protocol: url.protocol(),
            username: url.username(),
            password: url.password(),
            hostname: url.hostname(),
            port: url.port(),
            pathname: url.pathname(),
        })
    }
}

/// The `TOKEN_RATE_LIMIT` binding (Workers Rate Limiting).
pub struct WorkersRateLimiter(pub worker::RateLimiter);

impl RateLimiter for WorkersRateLimiter {
    async fn allow(&self, key: &str) -> bool {
        match self.0.limit(key.to_owned()).await {
            Ok(outcome) => outcome.success,
            Err(error) => {
                worker::console_error!("TOKEN_RATE_LIMIT could not answer, so it allowed: {error}");
                true
            }
        }
    }
}

/// `Date.now()`.
pub struct WorkersClock;

impl Clock for WorkersClock {
    fn now_millis(&self) -> u64 {
        Date::now() as u64
    }
}

/// `crypto.getRandomValues`, through getrandom's `wasm_js` backend.
pub struct WorkersEntropy;

impl Entropy for WorkersEntropy {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::fill(bytes).map_err(|error| EntropyError(error.to_string()))
    }
}

/// One JSON line per token request on the console (Workers Logs / `wrangler tail`), with the
/// request's latency added. The core never hands it a token, a signature or a secret.
pub struct ConsoleLog {
    /// `Date.now()` when the request arrived.
    pub started: u64,
}

impl EventLog for ConsoleLog {
    fn record(&self, mut event: TokenEvent) {
        // Workers freeze Date.now() during CPU work, so this counts I/O waits (KV, fetch); CPU
        // time is in the platform's own metrics.
        event.latency_ms = Some((Date::now() as u64).saturating_sub(self.started));
        // Serialised as the responses are (one copy of the JSON writer), and logged as it is.
        let line = serde_json::to_string(&event).unwrap_or_default();
        worker::web_sys::console::log_1(&line.into());
    }
}

/// The one registry object's name: every isolate, everywhere, reaches the same object.
const REGISTRY_NAME: &str = "registry";

/// The worker's way to the registry: the `REGISTRY` binding's one object.
pub struct WorkersRegistry<'a> {
    pub env: &'a Env,
}

impl Registry for WorkersRegistry<'_> {
    async fn call(&self, command: String) -> Result<String, StorageError> {
        self.send_to("/command", command).await
    }
}

impl WorkersRegistry<'_> {
    /// Posts `body` to the object at `path`.
    pub async fn send_to(&self, path: &str, body: String) -> Result<String, StorageError> {
        let unbound = |error: worker::Error| {
            StorageError(format!(
                "REGISTRY is not bound to the AccountRegistry Durable Object (see wrangler.toml): {error}"
            ))
        };
        let stub = self
            .env
            .durable_object("REGISTRY")
            .and_then(|namespace| namespace.id_from_name(REGISTRY_NAME)?.get_stub())
            .map_err(unbound)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let url = format!("https://registry.internal{path}");
        let request = worker::Request::new_with_init(&url, &init)
            .map_err(|error| StorageError(error.to_string()))?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(|error| StorageError(format!("the registry did not answer: {error}")))?;
        let text = response
            .text()
            .await
            .map_err(|error| StorageError(error.to_string()))?;
        match response.status_code() {
            200 => Ok(text),
            status => Err(StorageError(format!(
                "the registry answered {status}: {text}"
            ))),
        }
    }
}

//! Issuer key sets (JWKS) and OIDC discovery, cached in isolate memory and in `JWKS_CACHE`.
//!
//! | cache | key | value | fresh for | kept |
//! |---|---|---|---|---|
//! | isolate memory | JWKS URL | parsed [`KeySet`] | response `max-age`, clamped 5 min–24 h (default 1 h) | for the isolate's life |
//! | `JWKS_CACHE` | `jwks:{sha256(url)}` | `{url, fetchedAt, freshUntil, value: {keys}}` | same | freshness + 24 h (KV TTL) |
//! | isolate memory | issuer URL | discovered `jwks_uri` | discovery response `max-age`, clamped | for the isolate's life |
//! | `JWKS_CACHE` | `oidc:{sha256(issuerURL)}` | `{url, fetchedAt, freshUntil, value: {issuer, jwks_uri}}` | same | freshness + 24 h |
//! | `JWKS_CACHE` | `oidc-jwks:{sha256(issuerURL)}` | `{url (the discovery document's), fetchedAt (when written), freshUntil, value: {issuer, jwks_uri, keys}}` | the earlier of the two | freshness + 24 h |
//! | isolate memory | URL | the last failed fetch | 30 s | until it cools down |
//!
//! A fresh document in memory costs nothing: no KV read, no subrequest, no KV write. On a cold
//! isolate the exchange starts the key set's `JWKS_CACHE` read ([`KeySets::read_ahead`]) while
//! it reads the account's record, so the two cost one round trip. For an account without
//! `jwksURI` that read is of the issuer's discovered key set (`oidc-jwks:`): the URL that
//! discovery named and the keys there, in one entry ([`discovery`]).
//! `JWKS_CACHE` is written in the background (the answer does not wait for KV's write). A stale
//! document is refetched; if that fails, the last good one serves for up to 24 h past its
//! freshness (stale-if-error). A failed fetch is remembered for 30 s, so an issuer that is down
//! costs one fetch per URL and isolate per 30 s, not one per request. An unknown `kid`
//! refetches once, at most every 30 s per URL (like panva/jose's remote JWKS).
//!
//! What failed is said in two ways: the client hears only that the issuer's keys could not be
//! had; the URL and the issuer's answer go to the rejection's `detail` (log line, dry run).
//! No clock here: `now` (seconds) is passed in. I/O only through the traits handed in.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::apart::{compiled_apart, roomy_map};
use crate::jose::jws::UntrustedToken;
use crate::jose::keys::{key_set_of, select, KeySet};
use crate::jose::reason::{Reason, Rejection};
use crate::jose::verify::{verify, VerifiedToken};
use crate::ports::{
    FetchError, KeySetFetcher, KeyValueStore, Platform, StorageError, MAX_DOCUMENT_BYTES,
};
use crate::text::json::{parse_strict, MAX_DEPTH};

/// Freshness bounds of a fetched document, in seconds (the contract): an issuer's `max-age` is
/// honoured within 5 minutes and 24 hours; without one, 1 hour.
pub const MIN_FRESH_SECONDS: i64 = 300;
pub const MAX_FRESH_SECONDS: i64 = 86_400;
pub const DEFAULT_FRESH_SECONDS: i64 = 3_600;

/// How long past its freshness the last good document still serves when a refetch fails.
pub const STALE_IF_ERROR_SECONDS: i64 = 86_400;

/// Least time between two fetches of one URL for an unknown `kid` (as panva/jose does): a
/// stream of tokens with random `kid`s must not turn into a stream of subrequests.
pub const REFETCH_COOLDOWN_SECONDS: i64 = 30;

/// How long a failed fetch is remembered (the contract): an issuer that is down is asked again after
/// this, not on every anonymous request (each of which could otherwise cost 4 hops of 5 s).
pub const FAILURE_COOLDOWN_SECONDS: i64 = 30;

/// `JWKS_CACHE` key prefixes.
pub const JWKS_PREFIX: &str = "jwks:";
pub const DISCOVERY_PREFIX: &str = "oidc:";
pub const DISCOVERED_SET_PREFIX: &str = "oidc-jwks:";

/// What a client is told when an issuer's keys cannot be had: nothing of the issuer's answer.
const UNAVAILABLE: &str = "the issuer's keys could not be fetched; try again later";
const INVALID: &str =
    "the issuer's keys could not be used: it does not publish a usable key set; try again later";

/// Takes a fetched (or stored) document, parsed, into its in-memory form.
type Parse<'p, T> = &'p dyn Fn(&Value) -> Result<T, String>;

/// A parsed document's form in `JWKS_CACHE`: made only when a fetched one is kept, never when
/// a stored one is read.
type StoredForm<'p, T> = &'p dyn Fn(&T) -> Value;

/// A document as kept in memory.
#[derive(Debug)]
struct Cached<T> {
    value: Rc<T>,
    fresh_until: i64,
    /// Fetched by this isolate, not read from `JWKS_CACHE`.
    fetched: bool,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            fresh_until: self.fresh_until,
            fetched: self.fetched,
        }
    }
}

impl<T> Cached<T> {
    /// Within the issuer's own freshness: used without asking anyone.
    fn is_fresh(&self, now: i64) -> bool {
        now < self.fresh_until
    }

    /// Past its freshness but young enough to serve while the issuer cannot be reached.
    fn is_stale_usable(&self, now: i64) -> bool {
        now < self.fresh_until + STALE_IF_ERROR_SECONDS
    }
}

/// A fetch that failed, remembered so the URL is not fetched again at once.
#[derive(Debug, Clone)]
struct Failure {
    at: i64,
    rejection: Rejection,
}

impl Failure {
    fn is_cooling_down(&self, now: i64) -> bool {
        now - self.at < FAILURE_COOLDOWN_SECONDS
    }
}

/// A document as kept in `JWKS_CACHE` (read back by [`from_stored`]).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    url: String,
    fetched_at: i64,
    fresh_until: i64,
    value: Value,
}

/// Deepest nesting of a fetched document, and of its record in `JWKS_CACHE` (one level more).
const MAX_DOCUMENT_DEPTH: usize = MAX_DEPTH;
const MAX_STORED_DEPTH: usize = MAX_DOCUMENT_DEPTH + 1;

/// One kind of document kept in isolate memory, by name.
#[derive(Debug)]
struct Shelf<T> {
    documents: RefCell<HashMap<String, Cached<T>>>,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Self {
            documents: RefCell::new(roomy_map()),
        }
    }
}

impl<T> Shelf<T> {
    fn get(&self, name: &str) -> Option<Cached<T>> {
        self.documents.borrow().get(name).cloned()
    }

    fn put(&self, name: &str, cached: Cached<T>) {
        self.documents.borrow_mut().insert(name.to_owned(), cached);
    }

    /// A copy read from `JWKS_CACHE` (another isolate's), kept if it is newer than the one held:
    /// an older copy never replaces this isolate's. Whether it was kept.
    fn offer(&self, name: &str, cached: &Cached<T>) -> bool {
        let newer = self
            .get(name)
            .is_none_or(|mine| cached.fresh_until > mine.fresh_until);
        if newer {
            self.put(name, cached.clone());
        }
        newer
    }
}

/// The isolate's key sets and discovered JWKS URIs. Lives as long as the isolate.
#[derive(Debug)]
pub struct KeySets {
    sets: Shelf<KeySet>,
    jwks_uris: Shelf<String>,
    /// When each URL was last refetched for an unknown `kid` (any outcome), for the cooldown.
    last_refetch: RefCell<HashMap<String, i64>>,
    /// The last failed fetch of each URL.
    failures: RefCell<HashMap<String, Failure>>,
    /// Accounts' inline key sets, parsed once, by their JSON text.
    inline: RefCell<HashMap<String, Rc<KeySet>>>,
}

impl Default for KeySets {
    fn default() -> Self {
        Self {
            sets: Shelf::default(),
            jwks_uris: Shelf::default(),
            last_refetch: RefCell::default(),
            failures: RefCell::default(),
            inline: RefCell::new(roomy_map()),
        }
    }
}

/// Most inline key sets kept parsed; past it the map starts over.
const MAX_INLINE_SETS: usize = 256;

/// Where a key set comes from: the platform's fetcher, `JWKS_CACHE` and URL parser, and
/// whether loopback issuers are allowed.
pub(crate) struct Sources<'a, P: Platform> {
    pub platform: &'a P,
    pub allow_http_loopback: bool,
}

/// One document to find: which shelf and KV prefix, its name there, where to fetch it, how
/// to parse it, and its `JWKS_CACHE` entry if that was already read.
struct Wanted<'a, T> {
    shelf: &'a Shelf<T>,
    prefix: &'static str,
    name: &'a str,
    url: &'a str,
    /// What the document is, for a description: "the key set".
    what: &'static str,
    parse: Parse<'a, T>,
    stored_form: StoredForm<'a, T>,
    ahead: Option<ReadAhead>,
}

/// A key set's `JWKS_CACHE` entry, read before it was asked for ([`KeySets::read_ahead`]).
#[derive(Debug)]
pub(crate) struct ReadAhead {
    key: String,
    value: Result<Option<String>, StorageError>,
}

impl KeySets {
    /// The key set at `url`, fresh or within stale-if-error; `ahead`, when it is that URL's
    /// `JWKS_CACHE` entry, instead of reading it (it may not be: the record read meanwhile may
    /// name another URL).
    pub(crate) async fn key_set<P: Platform>(
        &self,
        url: &str,
        sources: &Sources<'_, P>,
        now: i64,
        ahead: Option<ReadAhead>,
    ) -> Result<Rc<KeySet>, Rejection> {
        let wanted = Wanted {
            ahead,
            ..self.wanted_set(url)
        };
        self.find(wanted, sources, now).await
    }

    /// What [`Self::key_set`] would read from `JWKS_CACHE` for `url`, read now; `None`, and no
    /// read, when the isolate holds a fresh set for it.
    pub(crate) async fn read_ahead<P: Platform>(
        &self,
        url: &str,
        platform: &P,
        now: i64,
    ) -> Option<ReadAhead> {
        if self
            .sets
            .get(url)
            .is_some_and(|cached| cached.is_fresh(now))
        {
            return None;
        }
        let key = cache_key(JWKS_PREFIX, url);
        let value = platform.key_set_cache().get(&key).await;
        Some(ReadAhead { key, value })
    }

    /// `token` verified with a key of the set at `url` (its `JWKS_CACHE` entry perhaps read
    /// `ahead`): the key by `kid`; when none fits, the set refetched once, as the issuer may
    /// have rotated (at most every 30 s per URL; if that fails while a set is cached, the key
    /// is simply unknown).
    pub(crate) async fn verify_with<'t, P: Platform>(
        &self,
        token: &'t UntrustedToken,
        url: &str,
        sources: &Sources<'_, P>,
        now: i64,
        ahead: Option<ReadAhead>,
    ) -> Result<VerifiedToken<'t>, Rejection> {
        let verifier = sources.platform.verifier();
        let kid = token.kid.as_deref();
        let set = self.key_set(url, sources, now, ahead).await?;
        match select(&set, token.alg, kid) {
            Ok(candidates) => compiled_apart(verify(token, &candidates, verifier)).await,
            Err(rejection) if rejection.reason == Reason::UnknownKey => {
                let Ok(Some(fresh)) = compiled_apart(self.refetch(url, sources, now)).await else {
                    return Err(rejection);
                };
                compiled_apart(verify(token, &select(&fresh, token.alg, kid)?, verifier)).await
            }
            Err(rejection) => Err(rejection),
        }
    }

    /// For an unknown `kid`: the key set fetched anew, unless `url` was already refetched for
    /// an unknown `kid` in the last [`REFETCH_COOLDOWN_SECONDS`], or its last fetch failed in
    /// the last [`FAILURE_COOLDOWN_SECONDS`] (then `None`). A failed refetch is an error; the
    /// caller still holds the set it had.
    pub(crate) async fn refetch<P: Platform>(
        &self,
        url: &str,
        sources: &Sources<'_, P>,
        now: i64,
    ) -> Result<Option<Rc<KeySet>>, Rejection> {
        let refetched_lately = self
            .last_refetch
            .borrow()
            .get(url)
            .is_some_and(|&last| now - last < REFETCH_COOLDOWN_SECONDS);
        if refetched_lately || self.failure(url, now).is_some() {
            return Ok(None);
        }
        self.last_refetch.borrow_mut().insert(url.to_owned(), now);
        let wanted = self.wanted_set(url);
        let (value, fetched) = self.fetch(&wanted, sources, now).await?;
        Ok(Some(self.keep(&wanted, sources, value, fetched)))
    }

    /// An account's inline `jwks`, parsed (once per text and isolate). It was checked when
    /// written; a set that no longer parses is `jwks_invalid`.
    pub(crate) fn inline(&self, jwks: &Value) -> Result<Rc<KeySet>, Rejection> {
        let text = serde_json::to_string(jwks).unwrap_or_default();
        if let Some(set) = self.inline.borrow().get(&text) {
            return Ok(set.clone());
        }
        let set = Rc::new(key_set_of(jwks).map_err(|why| {
            Rejection::new(Reason::JwksInvalid, INVALID)
                .with_detail(format!("the account's inline jwks is not usable: {why}"))
        })?);
        let mut inline = self.inline.borrow_mut();
        if inline.len() >= MAX_INLINE_SETS {
            inline.clear();
        }
        inline.insert(text, set.clone());
        Ok(set)
    }

    fn wanted_set<'a>(&'a self, url: &'a str) -> Wanted<'a, KeySet> {
        Wanted {
            shelf: &self.sets,
            prefix: JWKS_PREFIX,
            name: url,
            url,
            what: "the key set",
            parse: &key_set_of,
            stored_form: &stored_key_set,
            ahead: None,
        }
    }

    /// The cache walk shared by key sets and discovery documents: memory, then KV, then fetch
    /// (unless the URL failed lately), falling back to a stale copy when the fetch fails.
    async fn find<T, P: Platform>(
        &self,
        mut wanted: Wanted<'_, T>,
        sources: &Sources<'_, P>,
        now: i64,
    ) -> Result<Rc<T>, Rejection> {
        let mut stale = wanted.shelf.get(wanted.name);
        if let Some(cached) = stale.as_ref().filter(|cached| cached.is_fresh(now)) {
            return Ok(cached.value.clone());
        }
        // A KV failure is no reason to fail the exchange: fall through to fetching.
        let kv_key = cache_key(wanted.prefix, wanted.name);
        let read = match wanted.ahead.take() {
            Some(ahead) if ahead.key == kv_key => ahead.value,
            _ => sources.platform.key_set_cache().get(&kv_key).await,
        };
        if let Ok(Some(text)) = read {
            let stored = from_stored(&text, wanted.url, wanted.parse);
            if let Some(cached) = stored.filter(|cached| wanted.shelf.offer(wanted.name, cached)) {
                if cached.is_fresh(now) {
                    return Ok(cached.value);
                }
                stale = Some(cached);
            }
        }
        // Apart: a location that has the document in KV never compiles fetching it.
        compiled_apart(self.fetch_or_stale(&wanted, stale, sources, now)).await
    }

    /// [`Self::find`] when neither memory nor `JWKS_CACHE` has the document fresh: fetched (its
    /// failure remembered), or else the `stale` copy while it may still be used.
    async fn fetch_or_stale<T, P: Platform>(
        &self,
        wanted: &Wanted<'_, T>,
        stale: Option<Cached<T>>,
        sources: &Sources<'_, P>,
        now: i64,
    ) -> Result<Rc<T>, Rejection> {
        let stale = stale.filter(|cached| cached.is_stale_usable(now));
        if let Some(failure) = self.failure(wanted.url, now) {
            return stale.map(|cached| cached.value).ok_or(failure.rejection);
        }
        match self.fetch(wanted, sources, now).await {
            Ok((value, fetched)) => Ok(self.keep(wanted, sources, value, fetched)),
            Err(rejection) => stale.map(|cached| cached.value).ok_or(rejection),
        }
    }

    /// The failure of `url` that is still cooling down, if any.
    fn failure(&self, url: &str, now: i64) -> Option<Failure> {
        self.failures
            .borrow()
            .get(url)
            .filter(|failure| failure.is_cooling_down(now))
            .cloned()
    }

    /// Fetches and parses a document, remembering a failure; returns it and when it was fetched
    /// for how long.
    async fn fetch<T, P: Platform>(
        &self,
        wanted: &Wanted<'_, T>,
        sources: &Sources<'_, P>,
        now: i64,
    ) -> Result<(T, Fetch), Rejection> {
        match fetch(wanted, sources.platform.fetcher()).await {
            Ok((parsed, max_age)) => {
                self.failures.borrow_mut().remove(wanted.url);
                Ok((parsed, Fetch { at: now, max_age }))
            }
            Err(rejection) => {
                let failure = Failure {
                    at: now,
                    rejection: rejection.clone(),
                };
                self.failures
                    .borrow_mut()
                    .insert(wanted.url.to_owned(), failure);
                Err(rejection)
            }
        }
    }

    /// Keeps a fetched document in memory, and in `JWKS_CACHE` in the background.
    fn keep<T, P: Platform>(
        &self,
        wanted: &Wanted<'_, T>,
        sources: &Sources<'_, P>,
        value: T,
        fetched: Fetch,
    ) -> Rc<T> {
        let stored_value = (wanted.stored_form)(&value);
        let cached = Cached {
            value: Rc::new(value),
            fresh_until: fetched.at + fetched.max_age,
            fetched: true,
        };
        wanted.shelf.put(wanted.name, cached.clone());
        let record = Stored {
            url: wanted.url.to_owned(),
            fetched_at: fetched.at,
            fresh_until: cached.fresh_until,
            value: stored_value,
        };
        if let Ok(text) = serde_json::to_string(&record) {
            let ttl = (fetched.max_age + STALE_IF_ERROR_SECONDS) as u64;
            // Best effort, and not waited for: the exchange neither fails nor waits because of
            // the shared cache (a KV write takes far longer than a read).
            sources.platform.key_set_cache().put_in_background(
                &cache_key(wanted.prefix, wanted.name),
                text,
                Some(ttl),
            );
        }
        cached.value
    }
}

/// When a document was fetched, and for how many seconds it is fresh.
#[derive(Debug, Clone, Copy)]
struct Fetch {
    at: i64,
    max_age: i64,
}

fn cache_key(prefix: &str, name: &str) -> String {
    format!(
        "{prefix}{}",
        Base64UrlUnpadded::encode_string(&Sha256::digest(name.as_bytes()))
    )
}

/// A [`Stored`] record's document, parsed, if it is `url`'s and usable. Read by the strict
/// JSON reader that every token's header and claims go through (no reader of its own to
/// compile on a cold isolate).
fn from_stored<T>(text: &str, url: &str, parse: Parse<'_, T>) -> Option<Cached<T>> {
    let stored = parse_strict(text.as_bytes(), MAX_STORED_DEPTH).ok()?;
    // A hand edit (or a hash collision) must not serve another URL's document.
    if stored.get("url").and_then(Value::as_str) != Some(url) {
        return None;
    }
    stored.get("fetchedAt").and_then(Value::as_i64)?;
    let fresh_until = stored.get("freshUntil").and_then(Value::as_i64)?;
    let value = parse(stored.get("value")?).ok()?;
    Some(Cached {
        value: Rc::new(value),
        fresh_until,
        fetched: false,
    })
}

/// Fetches and parses a document; returns it and its freshness in seconds.
async fn fetch<T, F: KeySetFetcher>(
    wanted: &Wanted<'_, T>,
    fetcher: &F,
) -> Result<(T, i64), Rejection> {
    let url = wanted.url;
    let unavailable = |why: String| {
        Rejection::new(Reason::JwksUnavailable, UNAVAILABLE)
            .with_detail(format!("fetching {url} failed: {why}"))
    };
    let fetched = fetcher
        .fetch(url)
        .await
        .map_err(|error: FetchError| unavailable(error.to_string()))?;
    if fetched.status != 200 {
        return Err(unavailable(format!("it answered HTTP {}", fetched.status)));
    }
    if fetched.body.len() > MAX_DOCUMENT_BYTES {
        return Err(unavailable(format!(
            "the body is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let parsed = parse_strict(&fetched.body, MAX_DOCUMENT_DEPTH)
        .map_err(|error| format!("{} is not JSON: {error}", wanted.what))
        .and_then(|document| (wanted.parse)(&document))
        .map_err(|why| {
            Rejection::new(Reason::JwksInvalid, INVALID)
                .with_detail(format!("{url} is not usable: {why}"))
        })?;
    Ok((parsed, freshness(fetched.cache_control.as_deref())))
}

/// Seconds a response stays fresh: its `max-age`, clamped; [`DEFAULT_FRESH_SECONDS`] without.
pub fn freshness(cache_control: Option<&str>) -> i64 {
    let max_age = cache_control.and_then(|header| {
        header.split(',').find_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| value.trim().trim_matches('"').parse::<i64>().ok())?
        })
    });
    max_age
        .unwrap_or(DEFAULT_FRESH_SECONDS)
        .clamp(MIN_FRESH_SECONDS, MAX_FRESH_SECONDS)
}

/// A key set's form in `JWKS_CACHE`: its usable keys.
fn stored_key_set(set: &KeySet) -> Value {
    let keys: Vec<Value> = set.keys.iter().map(|key| key.to_jwk()).collect();
    json!({ "keys": keys })
}

mod discovery;
#[cfg(test)]
mod tests;

//! Issuer key sets and OIDC discovery, cached in isolate memory and in `JWKS_CACHE`.
//!
//! | cache | key | value | fresh for | kept |
//! |---|---|---|---|---|
//! | isolate memory | JWKS URL | parsed [`KeySet`] | response `max-age`, clamped 5 min–24 h (default 1 h) | for the isolate's life |
//! | `JWKS_CACHE` | `jwks:{sha256(url)}` | `{url, fetchedAt, freshUntil, value: {keys}}` | same | freshness + 24 h (KV TTL) |
//! | isolate memory | issuer URL | discovered `jwks_uri` | discovery response `max-age`, clamped | for the isolate's life |
//! | `JWKS_CACHE` | `oidc:{sha256(issuerURL)}` | `{url, fetchedAt, freshUntil, value: {issuer, jwks_uri}}` | same | freshness + 24 h |
//!
//! A fresh set in memory costs nothing: no KV read, no subrequest, no KV write. `JWKS_CACHE` is
//! written in the background (the answer does not wait for KV's write). A stale one is
//! refetched; if that fails, the last good set serves for up to 24 h past its freshness
//! (stale-if-error). An unknown `kid` refetches once, at most every 30 s per URL.
//! No clock here: `now` (seconds) is passed in. I/O only through the traits handed in.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::keys::{parse_key_set, KeySet};
use super::reason::{Reason, Rejection};
use crate::json::parse_strict;
use crate::ports::{FetchError, KeySetFetcher, KeyValueStore};
use crate::url::normalize_url;

/// Freshness bounds of a fetched document, in seconds (SPEC.md): an issuer's `max-age` is
/// honoured within 5 minutes and 24 hours; without one, 1 hour.
pub const MIN_FRESH_SECONDS: i64 = 300;
pub const MAX_FRESH_SECONDS: i64 = 86_400;
pub const DEFAULT_FRESH_SECONDS: i64 = 3_600;

/// How long past its freshness the last good document still serves when a refetch fails.
pub const STALE_IF_ERROR_SECONDS: i64 = 86_400;

/// Least time between two fetches of one URL for an unknown `kid` (as panva/jose does): a
/// stream of tokens with random `kid`s must not turn into a stream of subrequests.
pub const REFETCH_COOLDOWN_SECONDS: i64 = 30;

/// Largest document accepted, in bytes (SPEC.md). Google's JWKS is ~1.5 KiB; 100 RSA-4096 keys
/// with certificates stay under 256 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// `JWKS_CACHE` key prefixes.
pub const JWKS_PREFIX: &str = "jwks:";
pub const DISCOVERY_PREFIX: &str = "oidc:";

/// Parses a fetched (or stored) document into its in-memory form and the JSON kept in KV.
type Parse<'p, T> = &'p dyn Fn(&[u8]) -> Result<(T, Value), String>;

/// A document as kept in memory.
#[derive(Debug)]
struct Cached<T> {
    value: Rc<T>,
    fresh_until: i64,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            fresh_until: self.fresh_until,
        }
    }
}

/// A document as kept in `JWKS_CACHE`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    url: String,
    fetched_at: i64,
    fresh_until: i64,
    value: Value,
}

/// The isolate's key sets and discovered JWKS URIs. Lives as long as the isolate.
#[derive(Debug, Default)]
pub struct KeySets {
    sets: RefCell<HashMap<String, Cached<KeySet>>>,
    jwks_uris: RefCell<HashMap<String, Cached<String>>>,
    /// When each URL was last refetched for an unknown `kid` (any outcome), for the cooldown.
    last_refetch: RefCell<HashMap<String, i64>>,
}

/// Where a key set comes from, and the services to get it.
pub struct Sources<'a, F: KeySetFetcher, K: KeyValueStore> {
    pub fetcher: &'a F,
    pub cache: &'a K,
    pub allow_http_loopback: bool,
}

impl KeySets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The JWKS URL of an account: its `jwksURI`, or the one its issuer's discovery names.
    pub async fn jwks_url<F: KeySetFetcher, K: KeyValueStore>(
        &self,
        issuer_url: &str,
        jwks_uri: Option<&str>,
        sources: &Sources<'_, F, K>,
        now: i64,
    ) -> Result<String, Rejection> {
        if let Some(uri) = jwks_uri {
            return Ok(uri.to_owned());
        }
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer_url.trim_end_matches('/')
        );
        let parse =
            |body: &[u8]| discovered_jwks_uri(body, issuer_url, sources.allow_http_loopback);
        let uri = self
            .document(
                &self.jwks_uris,
                DISCOVERY_PREFIX,
                issuer_url,
                &discovery_url,
                sources,
                now,
                false,
                &parse,
            )
            .await?;
        Ok((*uri).clone())
    }

    /// The key set at `url`, fresh or within stale-if-error.
    pub async fn key_set<F: KeySetFetcher, K: KeyValueStore>(
        &self,
        url: &str,
        sources: &Sources<'_, F, K>,
        now: i64,
    ) -> Result<Rc<KeySet>, Rejection> {
        self.document(
            &self.sets,
            JWKS_PREFIX,
            url,
            url,
            sources,
            now,
            false,
            &parse_stored_key_set,
        )
        .await
    }

    /// For an unknown `kid`: the key set fetched anew, unless `url` was already refetched for
    /// an unknown `kid` in the last [`REFETCH_COOLDOWN_SECONDS`] (then `None`). A failed
    /// refetch is an error; the caller still holds the set it had.
    pub async fn refetch<F: KeySetFetcher, K: KeyValueStore>(
        &self,
        url: &str,
        sources: &Sources<'_, F, K>,
        now: i64,
    ) -> Result<Option<Rc<KeySet>>, Rejection> {
        let last = self.last_refetch.borrow().get(url).copied();
        if last.is_some_and(|last| now - last < REFETCH_COOLDOWN_SECONDS) {
            return Ok(None);
        }
        self.last_refetch.borrow_mut().insert(url.to_owned(), now);
        self.document(
            &self.sets,
            JWKS_PREFIX,
            url,
            url,
            sources,
            now,
            true,
            &parse_stored_key_set,
        )
        .await
        .map(Some)
    }

    /// The cache walk shared by key sets and discovery documents: memory, then KV, then fetch,
    /// falling back to a stale copy when the fetch fails.
    #[allow(clippy::too_many_arguments)]
    async fn document<T, F: KeySetFetcher, K: KeyValueStore>(
        &self,
        memory: &RefCell<HashMap<String, Cached<T>>>,
        prefix: &str,
        name: &str,
        url: &str,
        sources: &Sources<'_, F, K>,
        now: i64,
        force: bool,
        parse: Parse<'_, T>,
    ) -> Result<Rc<T>, Rejection> {
        let mut stale: Option<Cached<T>> = None;
        if let Some(cached) = memory.borrow().get(name) {
            if now < cached.fresh_until && !force {
                return Ok(cached.value.clone());
            }
            stale = Some(cached.clone());
        }
        let kv_key = cache_key(prefix, name);
        if !force {
            // A KV failure is no reason to fail the exchange: fall through to fetching.
            if let Ok(Some(text)) = sources.cache.get(&kv_key).await {
                if let Some(cached) = from_stored(&text, url, parse) {
                    memory.borrow_mut().insert(name.to_owned(), cached.clone());
                    if now < cached.fresh_until {
                        return Ok(cached.value);
                    }
                    stale = Some(cached);
                }
            }
        }
        match fetch(url, sources, parse).await {
            Ok((value, stored_value, max_age)) => {
                let fresh_until = now + max_age;
                let cached = Cached {
                    value: Rc::new(value),
                    fresh_until,
                };
                memory.borrow_mut().insert(name.to_owned(), cached.clone());
                let record = Stored {
                    url: url.to_owned(),
                    fetched_at: now,
                    fresh_until,
                    value: stored_value,
                };
                if let Ok(text) = serde_json::to_string(&record) {
                    let ttl = (max_age + STALE_IF_ERROR_SECONDS) as u64;
                    // Best effort, and not waited for: the exchange neither fails nor waits
                    // because of the shared cache (a KV write takes far longer than a read).
                    sources.cache.put_in_background(&kv_key, text, Some(ttl));
                }
                Ok(cached.value)
            }
            Err(rejection) => match stale {
                Some(stale) if now < stale.fresh_until + STALE_IF_ERROR_SECONDS && !force => {
                    Ok(stale.value)
                }
                _ => Err(rejection),
            },
        }
    }
}

fn cache_key(prefix: &str, name: &str) -> String {
    format!(
        "{prefix}{}",
        Base64UrlUnpadded::encode_string(&Sha256::digest(name.as_bytes()))
    )
}

fn from_stored<T>(text: &str, url: &str, parse: Parse<'_, T>) -> Option<Cached<T>> {
    let stored: Stored = serde_json::from_str(text).ok()?;
    // A hand edit (or a hash collision) must not serve another URL's document.
    if stored.url != url {
        return None;
    }
    let body = serde_json::to_vec(&stored.value).ok()?;
    let (value, _) = parse(&body).ok()?;
    Some(Cached {
        value: Rc::new(value),
        fresh_until: stored.fresh_until,
    })
}

/// Fetches and parses a document; returns it, its form for KV, and its freshness in seconds.
async fn fetch<T, F: KeySetFetcher, K: KeyValueStore>(
    url: &str,
    sources: &Sources<'_, F, K>,
    parse: Parse<'_, T>,
) -> Result<(T, Value, i64), Rejection> {
    let unavailable = |why: String| {
        Rejection::new(
            Reason::JwksUnavailable,
            format!("fetching {url} failed: {why}"),
        )
    };
    let fetched = sources.fetcher.fetch(url).await.map_err(|error| {
        unavailable(match error {
            FetchError::Timeout => "no answer within 5 s".into(),
            FetchError::TooLarge => format!("the body is larger than {MAX_DOCUMENT_BYTES} bytes"),
            FetchError::BadRedirect(why) => why,
            FetchError::Network(why) => why,
        })
    })?;
    if fetched.status != 200 {
        return Err(unavailable(format!("it answered HTTP {}", fetched.status)));
    }
    if fetched.body.len() > MAX_DOCUMENT_BYTES {
        return Err(unavailable(format!(
            "the body is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let (value, stored) = parse(&fetched.body).map_err(|why| {
        Rejection::new(Reason::JwksInvalid, format!("{url} is not usable: {why}"))
    })?;
    Ok((value, stored, freshness(fetched.cache_control.as_deref())))
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

/// A JWKS body: the parsed set, and the usable keys for KV.
fn parse_stored_key_set(body: &[u8]) -> Result<(KeySet, Value), String> {
    let set = parse_key_set(body)?;
    let keys: Vec<Value> = set.keys.iter().map(|key| key.to_jwk()).collect();
    Ok((set, json!({ "keys": keys })))
}

/// An OIDC discovery document: its `jwks_uri`, after checking its `issuer` is the account's.
fn discovered_jwks_uri(
    body: &[u8],
    issuer_url: &str,
    allow_http_loopback: bool,
) -> Result<(String, Value), String> {
    let document = parse_strict(body, 32)
        .map_err(|error| format!("the discovery document is not JSON: {error}"))?;
    let issuer = document
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no issuer")?;
    if issuer != issuer_url {
        return Err(format!(
            "the discovery document's issuer {issuer:?} is not the account's issuerURL"
        ));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the discovery document has no jwks_uri")?;
    let jwks_uri = normalize_url(jwks_uri, allow_http_loopback)
        .map_err(|problem| format!("the discovery document's jwks_uri is refused: {problem}"))?;
    // Stored in the same shape it is read back from.
    let stored = json!({ "issuer": issuer, "jwks_uri": jwks_uri });
    Ok((jwks_uri, stored))
}

#[cfg(test)]
mod tests;

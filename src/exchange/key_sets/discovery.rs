//! How an account without `jwksURI` finds its keys: its issuer's OIDC discovery document names
//! the JWKS URL. Both documents are kept as any other ([`KeySets::find`]: memory, `JWKS_CACHE`,
//! fetch), the discovery document under the issuer and the key set under its URL; and, for
//! cold isolates, once more together: the issuer's discovered key set (`oidc-jwks:`), the
//! issuer, the URL and the keys there, fresh until the earlier of the two documents. A cold
//! isolate reads it with the account's record, and so waits on KV twice before the signature,
//! not four times (the index; the record; the discovery document; the key set).
//!
//! The entry is written, in the background, by an isolate that checked a discovery account's
//! token (whatever the verdict) and found in memory a document it fetched since the request
//! began, or had read the entry and found it missing, stale, or older than what it then held.
//! So it moves with every fetch made for a discovery account, rotations included (not with one
//! made for an account that names the same URL as its `jwksURI`). When it is stale, it still
//! names the URL, and the discovery document and that key set are read together: three waits.
//! When it is missing (an issuer's first exchanges after this entry was introduced, or an
//! entry whose KV TTL lapsed) or cannot be read, the two are read in turn: four, once.

use std::rc::Rc;

use futures_util::future::join;
use serde_json::{json, Value};

use super::{
    cache_key, from_stored, stored_key_set, Cached, KeySets, ReadAhead, Sources, Stored, Wanted,
    DISCOVERED_SET_PREFIX, DISCOVERY_PREFIX, STALE_IF_ERROR_SECONDS,
};
use crate::jose::jws::UntrustedToken;
use crate::jose::keys::{key_set_of, KeySet};
use crate::jose::reason::Rejection;
use crate::jose::verify::VerifiedToken;
use crate::ports::{KeyValueStore, Platform, UrlParser};
use crate::text::url::normalize_url;

/// What reading the issuer's discovered key set found.
#[derive(Debug)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub(super) enum Read {
    /// KV failed, which says nothing of what it holds: nothing to write over.
    Failed,
    /// None, or none usable for this issuer.
    Absent,
    /// An entry of this issuer, taken into memory (each part kept if newer than the one held),
    /// fresh or not.
    Stored { jwks_uri: String, fresh_until: i64 },
}

impl KeySets {
    /// What to read ahead for an account that finds its keys through its issuer's discovery:
    /// with the JWKS URL fresh in memory, that key set's entry (as [`Self::read_ahead`]);
    /// without, the issuer's discovered key set.
    pub(crate) async fn read_ahead_discovered<P: Platform>(
        &self,
        issuer_url: &str,
        platform: &P,
        now: i64,
    ) -> Option<ReadAhead> {
        if let Some(url) = self.fresh_jwks_uri(issuer_url, now) {
            return self.read_ahead(&url, platform, now).await;
        }
        let key = cache_key(DISCOVERED_SET_PREFIX, issuer_url);
        let value = platform.key_set_cache().get(&key).await;
        Some(ReadAhead { key, value })
    }

    /// The discovered JWKS URL held fresh in memory.
    pub(super) fn fresh_jwks_uri(&self, issuer_url: &str, now: i64) -> Option<String> {
        self.jwks_uris
            .get(issuer_url)
            .filter(|cached| cached.is_fresh(now))
            .map(|cached| (*cached.value).clone())
    }

    /// `token` verified with a key of the set that `issuer_url`'s discovery document names: the
    /// issuer's discovered key set read `ahead` gives both when it is fresh; else the discovery
    /// document and the key set are found as any other, read together when a stale entry names
    /// the URL. Then the entry is written if this request fetched, or found it behind.
    pub(crate) async fn verify_discovered<'t, P: Platform>(
        &self,
        token: &'t UntrustedToken,
        issuer_url: &str,
        sources: &Sources<'_, P>,
        now: i64,
        mut ahead: Option<ReadAhead>,
    ) -> Result<VerifiedToken<'t>, Rejection> {
        // Only a cold read has a key to compare (no hashing on a warm exchange).
        let read = ahead
            .take_if(|ahead| ahead.key == cache_key(DISCOVERED_SET_PREFIX, issuer_url))
            .map(|read| self.adopt_discovered(issuer_url, read, sources));
        let before = self.discovered_in_memory(issuer_url);
        let named = match &read {
            Some(Read::Stored { jwks_uri, .. }) => Some(jwks_uri.as_str()),
            _ => None,
        };
        let set_ahead = async { self.read_ahead(named?, sources.platform, now).await };
        let (url, set_ahead) = join(
            self.discovered_jwks_url(issuer_url, sources, now),
            set_ahead,
        )
        .await;
        let url = url?;
        let verified = self
            .verify_with(token, &url, sources, now, ahead.or(set_ahead))
            .await;
        self.store_discovered(issuer_url, &url, read.as_ref(), &before, sources, now);
        verified
    }

    /// Takes the issuer's discovered key set as `read` into memory: the JWKS URL and the set,
    /// each kept if newer than the one held (a stale copy too, for stale-if-error).
    pub(super) fn adopt_discovered<P: Platform>(
        &self,
        issuer_url: &str,
        read: ReadAhead,
        sources: &Sources<'_, P>,
    ) -> Read {
        let text = match read.value {
            Ok(Some(text)) => text,
            Ok(None) => return Read::Absent,
            Err(_) => return Read::Failed,
        };
        let parse = |value: &Value| discovered_set_of(value, issuer_url, sources);
        let Some(stored) = from_stored(&text, &discovery_url(issuer_url), &parse) else {
            return Read::Absent;
        };
        let fresh_until = stored.fresh_until;
        let (jwks_uri, set) = Rc::unwrap_or_clone(stored.value);
        let uri = Cached {
            value: Rc::new(jwks_uri.clone()),
            fresh_until,
            fetched: false,
        };
        self.jwks_uris.offer(issuer_url, &uri);
        let set = Cached {
            value: Rc::new(set),
            fresh_until,
            fetched: false,
        };
        self.sets.offer(&jwks_uri, &set);
        Read::Stored {
            jwks_uri,
            fresh_until,
        }
    }

    /// The issuer's discovered JWKS URL and the key set there, as memory holds them now.
    fn discovered_in_memory(&self, issuer_url: &str) -> Memory {
        let uri = self.jwks_uris.get(issuer_url);
        let set = uri.as_ref().and_then(|uri| self.sets.get(&uri.value));
        Memory {
            uri: uri.map(|cached| cached.value),
            set: set.map(|cached| cached.value),
        }
    }

    /// Writes the issuer's discovered key set from memory (the JWKS URL `url` and the set
    /// there, fresh until the earlier of the two) when either is one this isolate fetched and
    /// not the one it held `before` (fetched during this request, or by another request of the
    /// isolate meanwhile), or when what it `read` of the entry (if it read it) is absent or
    /// older.
    fn store_discovered<P: Platform>(
        &self,
        issuer_url: &str,
        url: &str,
        read: Option<&Read>,
        before: &Memory,
        sources: &Sources<'_, P>,
        now: i64,
    ) {
        let (Some(uri), Some(set)) = (self.jwks_uris.get(issuer_url), self.sets.get(url)) else {
            return;
        };
        let fresh_until = uri.fresh_until.min(set.fresh_until);
        if *uri.value != url || fresh_until <= now {
            return;
        }
        let fetched =
            fetched_since(&uri, before.uri.as_ref()) || fetched_since(&set, before.set.as_ref());
        let behind = match read {
            None | Some(Read::Failed) => false,
            Some(Read::Absent) => true,
            Some(Read::Stored {
                fresh_until: stored,
                ..
            }) => *stored < fresh_until,
        };
        if !fetched && !behind {
            return;
        }
        let mut value = stored_key_set(&set.value);
        value["issuer"] = Value::from(issuer_url);
        value["jwks_uri"] = Value::from(url);
        // `fetchedAt` here is when the two were put together.
        let record = Stored {
            url: discovery_url(issuer_url),
            fetched_at: now,
            fresh_until,
            value,
        };
        if let Ok(text) = serde_json::to_string(&record) {
            let ttl = (fresh_until - now + STALE_IF_ERROR_SECONDS) as u64;
            sources.platform.key_set_cache().put_in_background(
                &cache_key(DISCOVERED_SET_PREFIX, issuer_url),
                text,
                Some(ttl),
            );
        }
    }

    /// The JWKS URL that `issuer_url`'s discovery document names.
    async fn discovered_jwks_url<P: Platform>(
        &self,
        issuer_url: &str,
        sources: &Sources<'_, P>,
        now: i64,
    ) -> Result<String, Rejection> {
        let discovery_url = discovery_url(issuer_url);
        let parse = discovery_parser(issuer_url, sources);
        let stored_form = |jwks_uri: &String| json!({ "issuer": issuer_url, "jwks_uri": jwks_uri });
        let wanted = Wanted {
            shelf: &self.jwks_uris,
            prefix: DISCOVERY_PREFIX,
            name: issuer_url,
            url: &discovery_url,
            what: "the discovery document",
            parse: &parse,
            stored_form: &stored_form,
            ahead: None,
        };
        let uri = self.find(wanted, sources, now).await?;
        Ok((*uri).clone())
    }
}

/// The discovered JWKS URL and its key set held in memory, as [`KeySets::verify_discovered`]
/// found them before looking further.
#[derive(Debug)]
struct Memory {
    uri: Option<Rc<String>>,
    set: Option<Rc<KeySet>>,
}

/// Whether `cached` is one this isolate fetched, other than the one it held `before`.
fn fetched_since<T>(cached: &Cached<T>, before: Option<&Rc<T>>) -> bool {
    cached.fetched && !before.is_some_and(|before| Rc::ptr_eq(before, &cached.value))
}

/// How `issuer_url`'s discovery document is read: its `jwks_uri`, once its `issuer` is checked.
fn discovery_parser<'a, P: Platform>(
    issuer_url: &'a str,
    sources: &'a Sources<'_, P>,
) -> impl Fn(&Value) -> Result<String, String> + 'a {
    move |document| {
        discovered_jwks_uri(
            document,
            issuer_url,
            sources.allow_http_loopback,
            sources.platform.urls(),
        )
    }
}

/// Where an issuer publishes its OpenID Provider metadata.
fn discovery_url(issuer_url: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    )
}

/// An issuer's discovered key set as stored: its `issuer` and `jwks_uri`, checked as a fetched
/// discovery document's are, and its keys.
fn discovered_set_of<P: Platform>(
    value: &Value,
    issuer_url: &str,
    sources: &Sources<'_, P>,
) -> Result<(String, KeySet), String> {
    let url = discovered_jwks_uri(
        value,
        issuer_url,
        sources.allow_http_loopback,
        sources.platform.urls(),
    )?;
    Ok((url, key_set_of(value)?))
}

/// An OIDC discovery document (or the issuer's discovered key set): its `jwks_uri`, after
/// checking its `issuer` is the account's.
fn discovered_jwks_uri(
    document: &Value,
    issuer_url: &str,
    allow_http_loopback: bool,
    urls: &dyn UrlParser,
) -> Result<String, String> {
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
    normalize_url(jwks_uri, allow_http_loopback, urls)
        .map_err(|problem| format!("the discovery document's jwks_uri is refused: {problem}"))
}

//! The key-set cache on a fixed `now`: freshness from `Cache-Control` clamped to 5 min–24 h,
//! stale-if-error for 24 h, a failure remembered for 30 s, the unknown-`kid` refetch cooldown.

use serde_json::json;

use super::*;
use crate::ports::KeyValueStore;
use crate::ports::{FetchError, Fetched};
use crate::testing::memory::block_on;
use crate::testing::platform::MemoryPlatform;

const NOW: i64 = 1_795_435_200;
const URL: &str = "https://idp.example.com/jwks";

fn jwks() -> String {
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1"}]})
        .to_string()
}

struct Fixture {
    key_sets: KeySets,
    platform: MemoryPlatform,
}

impl Fixture {
    fn new() -> Self {
        let fixture = Self {
            key_sets: KeySets::default(),
            platform: MemoryPlatform::default(),
        };
        fixture.platform.fetcher.serve(URL, &jwks(), None);
        fixture
    }

    fn sources(&self) -> Sources<'_, MemoryPlatform> {
        Sources {
            platform: &self.platform,
            allow_http_loopback: false,
        }
    }

    fn get(&self, now: i64) -> Result<Rc<KeySet>, Rejection> {
        block_on(self.key_sets.key_set(URL, &self.sources(), now, None))
    }

    fn fetches(&self) -> usize {
        self.platform.fetcher.requests().len()
    }

    /// A new isolate whose location's `JWKS_CACHE` holds `record` for [`URL`]'s key set.
    fn with_stored(record: &Value) -> Self {
        let fixture = Self::new();
        let key = cache_key(JWKS_PREFIX, URL);
        block_on(
            fixture
                .platform
                .jwks_cache
                .put(&key, &record.to_string(), None),
        )
        .unwrap();
        fixture
    }
}

/// A `JWKS_CACHE` record for [`URL`]'s set, fresh for an hour from [`NOW`], naming `url`.
fn stored_record(url: &str, value: Value) -> Value {
    json!({"url": url, "fetchedAt": NOW, "freshUntil": NOW + 3_600, "value": value})
}

#[test]
fn freshness_is_the_max_age_clamped_to_5_minutes_and_24_hours() {
    let cases = [
        (None, 3_600),
        (Some("no-store"), 3_600),
        (Some("max-age=600"), 600),
        (Some("public, max-age=7200, must-revalidate"), 7_200),
        (Some("MAX-AGE=\"900\""), 900),
        (Some("max-age=0"), 300),
        (Some("max-age=60"), 300),
        (Some("max-age=604800"), 86_400),
        (Some("max-age=-5"), 300),
        (Some("max-age=soon"), 3_600),
    ];
    for (header, seconds) in cases {
        assert_eq!(freshness(header), seconds, "{header:?}");
    }
}

#[test]
fn a_fresh_set_is_served_from_memory_a_stale_one_is_fetched_again() {
    let fixture = Fixture::new();
    fixture.platform.fetcher.respond(
        URL,
        Ok(Fetched {
            status: 200,
            cache_control: Some("max-age=600".into()),
            body: jwks().into_bytes(),
        }),
    );
    fixture.get(NOW).unwrap();
    fixture.get(NOW + 599).unwrap();
    assert_eq!(fixture.fetches(), 1);
    fixture.get(NOW + 600).unwrap();
    assert_eq!(fixture.fetches(), 2);
}

#[test]
fn a_stale_set_serves_for_24_hours_while_the_issuer_is_down() {
    let fixture = Fixture::new();
    fixture.get(NOW).unwrap(); // fresh for the default hour
    fixture
        .platform
        .fetcher
        .respond(URL, Err(FetchError::Network("down".into())));
    assert!(fixture.get(NOW + 3_600).is_ok(), "stale, served");
    assert!(fixture.get(NOW + 3_600 + 86_399).is_ok());
    let gone = fixture.get(NOW + 3_600 + 86_400).unwrap_err();
    assert_eq!(gone.reason, Reason::JwksUnavailable);
}

#[test]
fn a_failure_is_remembered_for_30_seconds() {
    let fixture = Fixture::new();
    fixture
        .platform
        .fetcher
        .respond(URL, Err(FetchError::Timeout));
    for offset in [0, 1, 29] {
        let rejection = fixture.get(NOW + offset).unwrap_err();
        assert_eq!(rejection.reason, Reason::JwksUnavailable);
        assert!(rejection.detail.unwrap().contains("5 s"));
    }
    assert_eq!(fixture.fetches(), 1);
    fixture.platform.fetcher.serve(URL, &jwks(), None);
    assert!(fixture.get(NOW + 30).is_ok());
    assert_eq!(fixture.fetches(), 2);
}

#[test]
fn an_unknown_kid_refetches_at_most_every_30_seconds_and_not_after_a_failure() {
    let fixture = Fixture::new();
    fixture.get(NOW).unwrap();
    let refetch = |now| block_on(fixture.key_sets.refetch(URL, &fixture.sources(), now));
    assert!(refetch(NOW + 1).unwrap().is_some());
    assert!(refetch(NOW + 2).unwrap().is_none(), "cooling down");
    assert!(refetch(NOW + 31).unwrap().is_some());
    fixture
        .platform
        .fetcher
        .respond(URL, Err(FetchError::Network("down".into())));
    assert!(refetch(NOW + 62).is_err());
    assert_eq!(fixture.fetches(), 4);
    // The failure cools down before the next try, whatever the refetch cooldown says.
    assert!(refetch(NOW + 91).unwrap().is_none());
    assert!(
        fixture.get(NOW + 93).is_ok(),
        "the set refetched at NOW + 31 is still fresh and serves, failures or not"
    );
    assert_eq!(fixture.fetches(), 4);
}

#[test]
fn the_shared_cache_holds_what_was_fetched_for_other_isolates() {
    let fixture = Fixture::new();
    fixture.get(NOW).unwrap();
    let key = cache_key(JWKS_PREFIX, URL);
    let stored = fixture.platform.jwks_cache.entry(&key).unwrap();
    assert_eq!(stored.ttl_seconds, Some(3_600 + 86_400));
    let record: Value = serde_json::from_str(&stored.value).unwrap();
    assert_eq!(record["url"], URL);
    assert_eq!(record["freshUntil"], NOW + 3_600);
    // Another isolate reads it instead of fetching.
    let other = Fixture::with_stored(&record);
    assert!(other.get(NOW + 10).is_ok());
    assert_eq!(other.fetches(), 0);
}

/// A copy in `JWKS_CACHE` older than the isolate's own (another isolate's, written earlier)
/// never replaces it: the isolate's stale-if-error window stays its own.
#[test]
fn an_older_shared_copy_does_not_replace_a_newer_one_in_memory() {
    let earlier = Fixture::new();
    earlier.get(NOW).unwrap(); // fresh until NOW + 3600
    let key = cache_key(JWKS_PREFIX, URL);
    let older = earlier.platform.jwks_cache.entry(&key).unwrap().value;
    let fixture = Fixture::new();
    fixture.get(NOW + 1_000).unwrap(); // fresh until NOW + 4600
    block_on(fixture.platform.jwks_cache.put(&key, &older, None)).unwrap();
    fixture
        .platform
        .fetcher
        .respond(URL, Err(FetchError::Network("down".into())));
    assert!(
        fixture.get(NOW + 3_600 + 86_400 + 10).is_ok(),
        "its own copy serves until NOW + 4600 + 24 h"
    );
}

/// The shared copy holds the set's usable public keys only: no key of a kind edge-sts does not
/// verify with, no private member an issuer published by mistake.
#[test]
fn the_shared_copy_is_the_usable_public_keys_only() {
    let fixture = Fixture::new();
    let public = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1"});
    let mut published = public.clone();
    published["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let served = json!({"keys": [published, {"kty": "oct", "k": "c2VjcmV0", "kid": "k2"}]});
    fixture
        .platform
        .fetcher
        .serve(URL, &served.to_string(), None);
    assert_eq!(
        fixture.get(NOW).unwrap().skipped,
        1,
        "the oct key was served and skipped"
    );
    let key = cache_key(JWKS_PREFIX, URL);
    let record: Value =
        serde_json::from_str(&fixture.platform.jwks_cache.entry(&key).unwrap().value).unwrap();
    assert_eq!(record["value"], json!({"keys": [public]}));
}

/// A shared copy whose value is not a usable key set (a hand edit) is not served: the set is
/// fetched again.
#[test]
fn an_unusable_shared_copy_is_fetched_again() {
    for value in [
        json!({"keys": []}),
        json!("keys"),
        json!({"keys": [{"kty": "oct"}]}),
    ] {
        let fixture = Fixture::with_stored(&stored_record(URL, value.clone()));
        assert!(fixture.get(NOW + 10).is_ok(), "{value}");
        assert_eq!(fixture.fetches(), 1, "{value}");
    }
}

/// The issuer's discovered key set as `JWKS_CACHE` holds `record` (none: nothing), read
/// ahead on a new isolate at [`NOW`] + 10 and taken in: what was read, and whether memory then
/// holds the JWKS URL and the set fresh.
fn adopt(record: Option<&Value>, fail: bool) -> (discovery::Read, bool) {
    const ISSUER: &str = "https://idp.example.com";
    let fixture = Fixture::new();
    let cache = &fixture.platform.jwks_cache;
    if let Some(record) = record {
        let key = cache_key(DISCOVERED_SET_PREFIX, ISSUER);
        block_on(cache.put(&key, &record.to_string(), None)).unwrap();
    }
    if fail {
        cache.fail_with(Some("KV is down"));
    }
    let now = NOW + 10;
    let ahead = block_on(
        fixture
            .key_sets
            .read_ahead_discovered(ISSUER, &fixture.platform, now),
    )
    .expect("nothing in memory: read");
    let read = fixture
        .key_sets
        .adopt_discovered(ISSUER, ahead, &fixture.sources());
    let held = fixture.key_sets.fresh_jwks_uri(ISSUER, now).as_deref() == Some(URL)
        && fixture
            .key_sets
            .sets
            .get(URL)
            .is_some_and(|set| set.is_fresh(now));
    (read, held)
}

/// A stored discovered key set is taken in when it is the issuer's: its record names the
/// issuer's discovery document, its `issuer` is exactly the account's (not another issuer's,
/// nor the same with a `/` more: a hand edit, a hash collision; nor missing, as in the first
/// version of the entry), and its `jwks_uri` passes the
/// checks a fetched discovery document's does. A stale one is kept for stale-if-error, not used.
#[test]
fn a_stored_discovered_key_set_is_used_only_when_it_is_the_issuers_and_fresh() {
    use discovery::Read;
    let discovery = "https://idp.example.com/.well-known/openid-configuration";
    let keys = serde_json::from_str::<Value>(&jwks()).unwrap()["keys"].clone();
    let record = |url: &str, issuer: &str, jwks_uri: &str| {
        stored_record(
            url,
            json!({"issuer": issuer, "jwks_uri": jwks_uri, "keys": keys}),
        )
    };
    let stored = Read::Stored {
        jwks_uri: URL.into(),
        fresh_until: NOW + 3_600,
    };
    let issuer = "https://idp.example.com";
    let good = record(discovery, issuer, URL);
    assert_eq!(adopt(Some(&good), false), (stored, true));
    let other = "https://other.example.com/.well-known/openid-configuration";
    assert_eq!(
        adopt(Some(&record(other, issuer, URL)), false),
        (Read::Absent, false)
    );
    let slash = record(discovery, "https://idp.example.com/", URL);
    assert_eq!(adopt(Some(&slash), false), (Read::Absent, false));
    let mut without_issuer = good.clone();
    without_issuer["value"]["issuer"].take();
    assert_eq!(adopt(Some(&without_issuer), false), (Read::Absent, false));
    let plain = record(discovery, issuer, "http://idp.example.com/jwks");
    assert_eq!(adopt(Some(&plain), false), (Read::Absent, false));
    assert_eq!(adopt(None, false), (Read::Absent, false), "none stored");
    let mut stale = good.clone();
    stale["freshUntil"] = json!(NOW);
    let stale_read = Read::Stored {
        jwks_uri: URL.into(),
        fresh_until: NOW,
    };
    assert_eq!(adopt(Some(&stale), false), (stale_read, false));
    assert_eq!(adopt(Some(&good), true), (Read::Failed, false));
}

/// A `JWKS_CACHE` record names the URL it was fetched from: one that names another URL (a hand
/// edit, a hash collision) is never served for this one, however fresh; the set is fetched.
#[test]
fn a_shared_copy_of_another_url_is_not_served() {
    let other_keys = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "not-k1"}]});
    for (url, served) in [("https://idp.example.com/other-jwks", false), (URL, true)] {
        let fixture = Fixture::with_stored(&stored_record(url, other_keys.clone()));
        let set = fixture.get(NOW + 10).unwrap();
        let kid = set.keys[0].kid.as_deref();
        assert_eq!(kid == Some("not-k1"), served, "{url}");
        assert_eq!(fixture.fetches(), usize::from(!served), "{url}");
    }
}

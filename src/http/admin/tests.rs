//! The admin API through the router, with in-memory KV, a fixed clock and counting entropy.

use serde_json::{json, Value};

use super::*;
use crate::config::settings::Vars;
use crate::config::signing_keys::SigningKeysError;
use crate::exchange::key_sets::KeySets;
use crate::http::auth::{constant_time_eq, AdminToken};
use crate::http::extract::MAX_BODY_BYTES;
use crate::http::router::{handle as handle_request, Isolate};
use crate::testing::memory::{block_on, FixedClock, MemoryPlatform, MemoryRateLimiter, WhatwgUrls};

const TOKEN: &str = "admin-token-for-tests";
/// 2026-11-23T12:00:00Z
const NOW_SECONDS: u64 = 1_795_435_200;

struct World {
    isolate: Isolate,
    platform: MemoryPlatform,
}

impl World {
    fn new(admin_token: Option<&str>) -> Self {
        Self {
            isolate: Isolate {
                settings: Settings::from_vars(&Vars::default(), &WhatwgUrls),
                signing_keys: Err(SigningKeysError::Missing),
                admin_token: AdminToken::from_secret(admin_token.map(str::to_owned)),
                key_sets: KeySets::default(),
            },
            platform: MemoryPlatform {
                clock: FixedClock::at_seconds(NOW_SECONDS),
                ..MemoryPlatform::default()
            },
        }
    }

    fn send(&self, request: Request) -> (u16, Value, Response) {
        let response = block_on(handle_request(&request, &self.isolate, &self.platform));
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).expect("every body is JSON")
        };
        (response.status, body, response)
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value, Response) {
        let mut request = Request::new(method, "http://sts.test", path);
        request
            .headers
            .push(("authorization".into(), format!("Bearer {TOKEN}")));
        if method == Method::Patch {
            // The tests read the patched account; a plain PATCH answers 204 (tested apart).
            request
                .headers
                .push(("prefer".into(), "return=representation".into()));
        }
        if let Some(body) = body {
            request
                .headers
                .push(("content-type".into(), "application/json".into()));
            request.body = body.to_string().into_bytes();
        }
        self.send(request)
    }
}

fn account_body() -> Value {
    json!({
        "name": "deploy",
        "scopes": ["certificate-issuance"],
        "issuerURL": "https://token.actions.githubusercontent.com",
        "subject": "repo:acme/app:ref:refs/heads/main",
        "audience": "https://sts.example.com",
    })
}

#[test]
fn without_admin_token_the_api_is_disabled() {
    let world = World::new(None);
    let (status, body, response) = world.call(Method::Get, COLLECTION_PATH, None);
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "admin API disabled");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer realm="edge-sts""#)
    );
}

#[test]
fn a_missing_or_wrong_token_is_401_with_a_challenge() {
    let world = World::new(Some(TOKEN));
    let cases = [
        (None, "unauthorized"),
        (Some("Basic YWRtaW46YWRtaW4="), "unauthorized"),
        (Some("Bearer wrong"), "invalid_token"),
        (Some("Bearer admin-token-for-test"), "invalid_token"),
        (Some("Bearer admin-token-for-testss"), "invalid_token"),
    ];
    for (authorization, error) in cases {
        let mut request = Request::new(Method::Get, "http://sts.test", COLLECTION_PATH);
        if let Some(value) = authorization {
            request.headers.push(("authorization".into(), value.into()));
        }
        let (status, body, response) = world.send(request);
        assert_eq!(status, 401, "{authorization:?}");
        assert_eq!(body["error"], error, "{authorization:?}");
        assert!(response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let world = World::new(Some(TOKEN));
    let mut request = Request::new(Method::Get, "http://sts.test", COLLECTION_PATH);
    request
        .headers
        .push(("authorization".into(), format!("bearer {TOKEN}")));
    assert_eq!(world.send(request).0, 200);
}

#[test]
fn constant_time_eq_compares_contents_and_lengths() {
    assert!(constant_time_eq(b"secret", b"secret"));
    assert!(!constant_time_eq(b"secret", b"secreT"));
    assert!(!constant_time_eq(b"secret", b"secret2"));
    assert!(!constant_time_eq(b"", b"x"));
}

#[test]
fn create_assigns_a_uuid_and_timestamps() {
    let world = World::new(Some(TOKEN));
    let (status, body, response) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    assert_eq!(status, 201, "{body}");
    // CountingEntropy fills the first id with 0x01 bytes; version and variant bits are set.
    assert_eq!(body["id"], "01010101-0101-4101-8101-010101010101");
    assert!(is_account_id(body["id"].as_str().unwrap()));
    assert_eq!(body["createdAt"], "2026-11-23T12:00:00.000Z");
    assert_eq!(body["updatedAt"], "2026-11-23T12:00:00.000Z");
    assert_eq!(body["authenticationType"], "rsaKeyFederated");
    assert_eq!(body["enabled"], true);
    assert_eq!(
        response.header("location"),
        Some("/v1/serviceaccounts/01010101-0101-4101-8101-010101010101")
    );
}

#[test]
fn a_patch_merges_and_switches_subject_rules() {
    let world = World::new(Some(TOKEN));
    let (_, created, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let path = format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap());
    world.platform.clock.advance_seconds(60);
    let patch = json!({"subjectPattern": "repo:acme/*", "owner": "platform", "enabled": false});
    let (status, body, _) = world.call(Method::Patch, &path, Some(patch));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subjectPattern"], "repo:acme/*");
    assert!(body.get("subject").is_none());
    assert_eq!(body["owner"], "platform");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["name"], "deploy");
    assert_eq!(body["createdAt"], "2026-11-23T12:00:00.000Z");
    assert_eq!(body["updatedAt"], "2026-11-23T12:01:00.000Z");
    // null removes an optional field; a required one cannot be removed.
    let (_, body, _) = world.call(Method::Patch, &path, Some(json!({"owner": null})));
    assert!(body.get("owner").is_none());
    let (status, body, _) = world.call(Method::Patch, &path, Some(json!({"audience": null})));
    assert_eq!((status, body["field"].as_str()), (400, Some("audience")));
}

#[test]
fn a_patch_accepts_the_merge_patch_media_type() {
    let world = World::new(Some(TOKEN));
    let (_, created, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let mut request = Request::new(
        Method::Patch,
        "http://sts.test",
        &format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap()),
    );
    request
        .headers
        .push(("authorization".into(), format!("Bearer {TOKEN}")));
    request
        .headers
        .push(("content-type".into(), "application/merge-patch+json".into()));
    request.body = br#"{"name":"renamed"}"#.to_vec();
    let (status, _, response) = world.send(request);
    assert_eq!(status, 204);
    assert!(response.header("etag").is_some());
    let (_, body, _) = world.call(
        Method::Get,
        &format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(body["name"], "renamed");
}

/// Venafi's shape: a PATCH answers 204 with the new `ETag` (its Terraform provider treats any
/// other success as an error); `Prefer: return=representation` answers 200 with the account.
/// Reads answer the same `ETag`; `tppl-api-key` authenticates like a bearer token.
#[test]
fn a_patch_answers_204_with_an_etag_unless_the_representation_is_preferred() {
    let world = World::new(Some(TOKEN));
    let (_, created, created_response) =
        world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let path = format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap());
    let first_etag = created_response.header("etag").unwrap().to_owned();
    let mut request = Request::new(Method::Patch, "http://sts.test", &path);
    request.headers.push(("tppl-api-key".into(), TOKEN.into()));
    request
        .headers
        .push(("content-type".into(), "application/json".into()));
    request.body = br#"{"owner":"platform"}"#.to_vec();
    let (status, body, response) = world.send(request);
    assert_eq!((status, body), (204, Value::Null));
    assert!(response.body.is_empty());
    let patched_etag = response.header("etag").unwrap().to_owned();
    assert_ne!(patched_etag, first_etag);
    let (status, body, read) = world.call(Method::Get, &path, None);
    assert_eq!((status, body["owner"].as_str()), (200, Some("platform")));
    assert_eq!(read.header("etag"), Some(patched_etag.as_str()));
    let (status, body, response) = world.call(Method::Patch, &path, Some(json!({"owner": "sre"})));
    assert_eq!((status, body["owner"].as_str()), (200, Some("sre")));
    assert_eq!(
        response.header("preference-applied"),
        Some("return=representation")
    );
}

#[test]
fn body_shape_errors() {
    let world = World::new(Some(TOKEN));
    let post = |content_type: Option<&str>, body: &[u8], declared: Option<&str>| {
        let mut request = Request::new(Method::Post, "http://sts.test", COLLECTION_PATH);
        request
            .headers
            .push(("authorization".into(), format!("Bearer {TOKEN}")));
        if let Some(content_type) = content_type {
            request
                .headers
                .push(("content-type".into(), content_type.into()));
        }
        if let Some(declared) = declared {
            request
                .headers
                .push(("content-length".into(), declared.into()));
        }
        request.body = body.to_vec();
        world.send(request)
    };
    let json = account_body().to_string();
    assert_eq!(post(None, json.as_bytes(), None).0, 415);
    assert_eq!(post(Some("text/plain"), json.as_bytes(), None).0, 415);
    assert_eq!(
        post(Some("application/merge-patch+json"), json.as_bytes(), None).0,
        415
    );
    assert_eq!(
        post(
            Some("application/json; charset=utf-8"),
            json.as_bytes(),
            None
        )
        .0,
        201
    );
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(post(Some("application/json"), &big, None).0, 413);
    assert_eq!(post(Some("application/json"), b"", Some("70000")).0, 413);
    for malformed in [
        &b"{"[..],
        b"",
        b"{\"name\":\"a\",\"name\":\"b\"}",
        b"[]",
        b"\"text\"",
    ] {
        let (status, body, _) = post(Some("application/json"), malformed, None);
        assert_eq!(status, 400, "{malformed:?}");
        assert_eq!(body["field"], Value::Null, "{malformed:?}");
        assert!(
            body.as_object().unwrap().contains_key("field"),
            "field is present, as null"
        );
    }
}

#[test]
fn list_query_errors_name_their_parameter() {
    let world = World::new(Some(TOKEN));
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=!!", "cursor"),
        ("page=2", "page"),
    ] {
        let mut request = Request::new(Method::Get, "http://sts.test", COLLECTION_PATH);
        request.query = Some(query.into());
        request
            .headers
            .push(("authorization".into(), format!("Bearer {TOKEN}")));
        let (status, body, _) = world.send(request);
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }
}

#[test]
fn unknown_ids_are_404_and_wrong_methods_405() {
    let world = World::new(Some(TOKEN));
    for id in [
        "01010101-0101-4101-8101-010101010101",
        "not-a-uuid",
        "../healthz",
    ] {
        let (status, body, _) = world.call(Method::Get, &format!("{COLLECTION_PATH}/{id}"), None);
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{id}"
        );
    }
    let (status, _, response) = world.call(Method::Post, &format!("{COLLECTION_PATH}/x"), None);
    assert_eq!(
        (status, response.header("allow")),
        (405, Some("GET, PATCH, DELETE"))
    );
    let (status, _, response) = world.call(Method::Delete, COLLECTION_PATH, None);
    assert_eq!((status, response.header("allow")), (405, Some("GET, POST")));
}

#[test]
fn a_kv_outage_is_503_with_retry_after() {
    let world = World::new(Some(TOKEN));
    world.platform.accounts.fail_with(Some("connection reset"));
    let (status, body, response) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    assert_eq!(status, 503);
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(response.header("retry-after"), Some("5"));
}

#[test]
fn a_dry_run_body_declared_over_64_kib_is_413_not_a_json_error() {
    // The platform does not read a body declared too large, so the core sees it empty.
    let world = World::new(Some(TOKEN));
    let (_, created, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let path = format!(
        "{COLLECTION_PATH}/{}/verify",
        created["id"].as_str().unwrap()
    );
    let mut request = Request::new(Method::Post, "http://sts.test", &path);
    request
        .headers
        .push(("authorization".into(), format!("Bearer {TOKEN}")));
    request
        .headers
        .push(("content-type".into(), "application/json".into()));
    request
        .headers
        .push(("content-length".into(), "70000".into()));
    let (status, body, _) = world.send(request);
    assert_eq!(status, 413, "{body}");
}

/// With `TOKEN_RATE_LIMIT` bound, failed admin authentications count per address: past the
/// limit a guess is answered 429 `slow_down`, and a right token still works.
#[test]
fn failed_admin_authentications_are_rate_limited_per_address() {
    let mut world = World::new(Some(TOKEN));
    world.platform.rate_limiter = Some(MemoryRateLimiter::new(2));
    let guess = |ip: &str| {
        let mut request = Request::new(Method::Get, "http://sts.test", COLLECTION_PATH);
        request
            .headers
            .push(("authorization".into(), "Bearer guess".into()));
        request.headers.push(("cf-connecting-ip".into(), ip.into()));
        world.send(request)
    };
    assert_eq!(guess("192.0.2.1").0, 401);
    assert_eq!(guess("192.0.2.1").0, 401);
    let (status, body, response) = guess("192.0.2.1");
    assert_eq!(status, 429);
    assert_eq!(body["error"], "slow_down");
    assert!(body.get("reason").is_none());
    assert_eq!(response.header("retry-after"), Some("60"));
    // Another address has its own count, and the right token is never counted.
    assert_eq!(guess("192.0.2.2").0, 401);
    assert_eq!(world.call(Method::Get, COLLECTION_PATH, None).0, 200);
    let limiter = world.platform.rate_limiter.as_ref().unwrap();
    assert_eq!(limiter.count("admin-auth:192.0.2.1"), 3);
    assert_eq!(limiter.count("admin-auth:unknown"), 0);
}

/// With `TOKEN_RATE_LIMIT` bound, the token endpoint counts every request per address.
#[test]
fn token_requests_are_rate_limited_per_address() {
    let mut world = World::new(Some(TOKEN));
    world.platform.rate_limiter = Some(MemoryRateLimiter::new(2));
    let token_request = || {
        let mut request = Request::new(Method::Post, "http://sts.test", "/oauth2/token");
        request.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        request
            .headers
            .push(("cf-connecting-ip".into(), "198.51.100.7".into()));
        request.body = b"grant_type=password".to_vec();
        world.send(request)
    };
    assert_eq!(token_request().0, 400);
    assert_eq!(token_request().0, 400);
    let (status, body, response) = token_request();
    assert_eq!(status, 429);
    assert_eq!(body["error"], "slow_down");
    assert!(body.get("reason").is_none());
    assert_eq!(response.header("retry-after"), Some("60"));
}

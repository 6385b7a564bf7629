//! The admin API through the router, with in-memory KV, a fixed clock and counting entropy.

use serde_json::{json, Value};

use super::*;
use crate::config::admins::{AdminSecrets, LazyAdmins};
use crate::config::settings::Vars;
use crate::config::signing_keys::SigningKeysError;
use crate::exchange::key_sets::KeySets;
use crate::http::extract::MAX_BODY_BYTES;
use crate::http::router::{handle as handle_request, Isolate};
use crate::testing::memory::{block_on, FixedClock, MemoryRateLimiter, WhatwgUrls};
use crate::testing::platform::MemoryPlatform;

const TOKEN: &str = "admin-token-for-tests";
/// 2026-11-23T12:00:00Z
const NOW_SECONDS: u64 = 1_795_435_200;

struct World {
    isolate: Isolate,
    platform: MemoryPlatform,
}

impl World {
    fn new(admin_token: Option<&str>) -> Self {
        Self::with_admins(AdminSecrets {
            admin_token: admin_token.map(str::to_owned),
            ..AdminSecrets::default()
        })
    }

    fn with_admins(secrets: AdminSecrets) -> Self {
        let world = Self {
            isolate: Isolate {
                settings: Settings::from_vars(
                    &Vars {
                        issuer: Some("https://sts.test".into()),
                        ..Vars::default()
                    },
                    &WhatwgUrls,
                ),
                signing_keys: Err(SigningKeysError::Missing),
                admins: LazyAdmins::new(secrets),
                key_sets: KeySets::default(),
            },
            platform: MemoryPlatform {
                clock: FixedClock::at_seconds(NOW_SECONDS),
                ..MemoryPlatform::default()
            },
        };
        world.platform.registry.clock.advance_seconds(NOW_SECONDS);
        world
    }

    /// Moves both clocks (the worker's and the registry's) forward.
    fn advance_seconds(&self, seconds: u64) {
        self.platform.clock.advance_seconds(seconds);
        self.platform.registry.clock.advance_seconds(seconds);
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

/// Admin secrets are checked on the first request that needs them: a malformed `ADMIN_TOKENS`
/// is a 500 naming it on the admin API, and on nothing else.
#[test]
fn a_malformed_admin_tokens_is_reported_by_the_admin_api_only() {
    let mut world = World::with_admins(AdminSecrets {
        admin_token: Some(TOKEN.into()),
        admin_tokens: Some("not json".into()),
        ..AdminSecrets::default()
    });
    world.isolate.signing_keys =
        crate::config::signing_keys::SigningKeys::parse(crate::testing::test_issuer::MINT_KEY);
    for path in [
        "/openapi.json",
        "/healthz",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let (status, body, _) = world.send(Request::new(Method::Get, "http://sts.test", path));
        assert_eq!(status, 200, "{path}: {body}");
    }
    for _ in 0..2 {
        let (status, body, _) = world.call(Method::Get, COLLECTION_PATH, None);
        assert_eq!(status, 500, "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("ADMIN_TOKENS"), "{description}");
        assert!(!description.contains("not json"), "{description}");
    }
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
fn create_assigns_a_uuid_and_timestamps() {
    let world = World::new(Some(TOKEN));
    let (status, body, response) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    assert_eq!(status, 201, "{body}");
    // The registry's twin numbers its ids; the Durable Object makes random version 4 UUIDs.
    assert_eq!(body["id"], "00000000-0000-4000-8000-000000000001");
    assert!(is_account_id(body["id"].as_str().unwrap()));
    assert_eq!(body["createdAt"], "2026-11-23T12:00:00.000Z");
    assert_eq!(body["updatedAt"], "2026-11-23T12:00:00.000Z");
    assert_eq!(body["authenticationType"], "rsaKeyFederated");
    assert_eq!(body["enabled"], true);
    assert_eq!(
        response.header("location"),
        Some("/v1/serviceaccounts/00000000-0000-4000-8000-000000000001")
    );
}

#[test]
fn a_patch_merges_and_switches_subject_rules() {
    let world = World::new(Some(TOKEN));
    let (_, created, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let path = format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap());
    world.advance_seconds(60);
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
fn a_registry_outage_is_503_with_retry_after() {
    let world = World::new(Some(TOKEN));
    world
        .platform
        .registry
        .store
        .fail_with(Some("connection reset"));
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

fn hex_sha256(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn with_roles() -> World {
    let tokens = json!([
        {"name": "ci-terraform", "role": "admin", "sha256": hex_sha256("tf-token")},
        {"name": "dashboards", "role": "reader", "sha256": hex_sha256("reader-token")},
        {"name": "api-gateway", "role": "introspector", "sha256": hex_sha256("gw-token")},
    ]);
    World::with_admins(AdminSecrets {
        admin_token: Some(TOKEN.into()),
        admin_tokens: Some(tokens.to_string()),
        ..AdminSecrets::default()
    })
}

fn request_as(token: &str, method: Method, path: &str, body: Option<Value>) -> Request {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (path, None),
    };
    let mut request = Request::new(method, "http://sts.test", path);
    request.query = query;
    request
        .headers
        .push(("authorization".into(), format!("Bearer {token}")));
    if let Some(body) = body {
        let media = if path == "/oauth2/introspect" {
            request.body = b"token=x".to_vec();
            "application/x-www-form-urlencoded"
        } else {
            request.body = body.to_string().into_bytes();
            "application/json"
        };
        request.headers.push(("content-type".into(), media.into()));
    }
    request
}

/// Every admin route, and which roles may call it (the contract): `reader` the GET calls, the dry
/// run and the audit trail; `introspector` introspection only; `admin` everything.
#[test]
fn each_role_may_call_its_routes_and_gets_403_elsewhere() {
    let mut world = with_roles();
    world.isolate.signing_keys =
        crate::config::signing_keys::SigningKeys::parse(crate::testing::test_issuer::MINT_KEY);
    let (_, created, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let item = format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap());
    let verify = format!("{item}/verify");
    // Each route with the status its allowed roles get (the bodies are the least each accepts,
    // or deliberately incomplete: a 400 is an answer past authorisation too).
    type Route<'a> = (Method, &'a str, Option<Value>, &'a [&'a str], u16);
    let routes: Vec<Route> = vec![
        (
            Method::Get,
            COLLECTION_PATH,
            None,
            &["admin", "reader"],
            200,
        ),
        (
            Method::Post,
            COLLECTION_PATH,
            Some(json!({"name": "x"})),
            &["admin"],
            400,
        ),
        (Method::Get, &item, None, &["admin", "reader"], 200),
        (
            Method::Patch,
            &item,
            Some(json!({"name": "renamed"})),
            &["admin"],
            204,
        ),
        (
            Method::Get,
            "/v1/serviceaccounts/scopes",
            None,
            &["admin", "reader"],
            200,
        ),
        (
            Method::Post,
            &verify,
            Some(json!({"token": "x"})),
            &["admin", "reader"],
            200,
        ),
        (Method::Get, "/v1/audit", None, &["admin", "reader"], 200),
        (
            Method::Post,
            "/oauth2/introspect",
            Some(json!({})),
            &["admin", "introspector"],
            200,
        ),
        (
            Method::Get,
            "/healthz?deep=1",
            None,
            &["admin", "reader"],
            200,
        ),
        (Method::Delete, &item, None, &["admin"], 204),
    ];
    for (method, path, body, allowed, expected) in routes {
        // The admin last, so the DELETE does not take the account from the others.
        for (role, token) in [
            ("reader", "reader-token"),
            ("introspector", "gw-token"),
            ("admin", "tf-token"),
        ] {
            let (status, answer, _) = world.send(request_as(token, method, path, body.clone()));
            if allowed.contains(&role) {
                assert_eq!(status, expected, "{role} {method:?} {path}: {answer}");
            } else {
                assert_eq!(status, 403, "{role} {method:?} {path}: {answer}");
                assert_eq!(answer["error"], "forbidden");
                assert_eq!(answer["errors"][0]["code"], 1109);
                let named = ["dashboards", "api-gateway"].iter().any(|name| {
                    answer["error_description"]
                        .as_str()
                        .unwrap()
                        .starts_with(name)
                });
                assert!(named, "the 403 names the credential: {answer}");
            }
        }
    }
}

/// Every change names who made it: the credential's name, in the audit trail.
#[test]
fn the_audit_trail_names_each_credential_and_pages_with_link() {
    let world = with_roles();
    let send =
        |token: &str, method, path: &str, body| world.send(request_as(token, method, path, body));
    let (status, created, _) = send(
        "tf-token",
        Method::Post,
        COLLECTION_PATH,
        Some(account_body()),
    );
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    let item = format!("{COLLECTION_PATH}/{id}");
    world.advance_seconds(60);
    assert_eq!(
        send(TOKEN, Method::Patch, &item, Some(json!({"enabled": false}))).0,
        204
    );
    world.advance_seconds(60);
    assert_eq!(
        send(
            "tf-token",
            Method::Patch,
            &item,
            Some(json!({"owner": "sre"}))
        )
        .0,
        204
    );
    let (status, events, response) = send("reader-token", Method::Get, "/v1/audit?limit=2", None);
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["action"], "update");
    assert_eq!(events[0]["actor"], "ci-terraform");
    assert_eq!(events[0]["account"], id.as_str());
    assert_eq!(
        events[0]["changes"],
        json!({"owner": {"old": null, "new": "sre"}})
    );
    assert_eq!(events[0]["at"], "2026-11-23T12:02:00.000Z");
    assert!(events[0]["requestId"]
        .as_str()
        .unwrap()
        .starts_with("local-"));
    assert_eq!(events[1]["action"], "disable");
    assert_eq!(events[1]["actor"], "admin");
    let link = response.header("link").unwrap();
    assert!(link.starts_with("</v1/audit?limit=2&cursor="), "{link}");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let (_, rest, _) = send("reader-token", Method::Get, next, None);
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["action"], "create");
    // Filters, and their errors.
    let (_, by_admin, _) = send(TOKEN, Method::Get, "/v1/audit?actor=admin", None);
    assert_eq!(by_admin.as_array().unwrap().len(), 1);
    let since = "/v1/audit?since=2026-11-23T13:01:00%2B01:00";
    let (_, recent, _) = send(TOKEN, Method::Get, since, None);
    assert_eq!(recent.as_array().unwrap().len(), 2);
    let (_, of_it, _) = send(TOKEN, Method::Get, &format!("/v1/audit?account={id}"), None);
    assert_eq!(of_it.as_array().unwrap().len(), 3);
    for (query, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("account=x", "account"),
        ("cursor=-1", "cursor"),
        ("page=2", "page"),
    ] {
        let (status, body, _) = send(TOKEN, Method::Get, &format!("/v1/audit?{query}"), None);
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }
    // Nothing changes or deletes an event.
    for method in [Method::Post, Method::Patch, Method::Delete] {
        assert_eq!(send(TOKEN, method, "/v1/audit", Some(json!({}))).0, 405);
    }
}

#[test]
fn if_match_with_a_stale_etag_is_412() {
    let world = World::new(Some(TOKEN));
    let (_, created, response) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    let etag = response.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let item = format!("{COLLECTION_PATH}/{}", created["id"].as_str().unwrap());
    let conditional = |method, body: Option<Value>, tag: &str| {
        let mut request = request_as(TOKEN, method, &item, body);
        request.headers.push(("if-match".into(), tag.into()));
        world.send(request)
    };
    let (status, _, response) = conditional(Method::Patch, Some(json!({"name": "a"})), &etag);
    assert_eq!((status, response.header("etag")), (204, Some("\"2\"")));
    let (status, body, _) = conditional(Method::Patch, Some(json!({"name": "b"})), &etag);
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"], "precondition_failed");
    assert_eq!(body["errors"][0]["code"], 1111);
    assert_eq!(conditional(Method::Delete, None, &etag).0, 412);
    assert_eq!(conditional(Method::Delete, None, "\"2\"").0, 204);
}

#[test]
fn the_deep_health_check_reports_a_lagging_projection() {
    let mut world = World::new(Some(TOKEN));
    world.isolate.signing_keys =
        crate::config::signing_keys::SigningKeys::parse(crate::testing::test_issuer::MINT_KEY);
    let deep = || world.send(request_as(TOKEN, Method::Get, "/healthz?deep=1", None));
    let (status, body, _) = deep();
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    // The read model's writes fail: the change is committed, and waits to be written.
    world.platform.accounts.fail_with(Some("KV is down"));
    let (status, _, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    assert_eq!(status, 201);
    let (status, body, _) = deep();
    assert_eq!(status, 503);
    assert_eq!(body["status"], "lagging");
    assert_eq!(body["projection"]["pending"], 2);
    assert!(body["projection"]["lastError"]
        .as_str()
        .unwrap()
        .contains("KV is down"));
    // Without credentials the deep check is refused; the plain one is public.
    let mut anonymous = Request::new(Method::Get, "http://sts.test", "/healthz");
    anonymous.query = Some("deep=1".into());
    assert_eq!(world.send(anonymous).0, 401);
    world.platform.accounts.fail_with(None);
    world.platform.registry.project().unwrap();
    assert_eq!(deep().0, 200);
}

/// A world with one account and a token minted for it, as introspection sees them: the world,
/// the token, the account's id.
fn minted_for_an_account() -> (World, String, String) {
    use crate::ports::Signer;
    use base64ct::{Base64UrlUnpadded, Encoding};
    let mut world = World::new(Some(TOKEN));
    let keys =
        crate::config::signing_keys::SigningKeys::parse(crate::testing::test_issuer::MINT_KEY)
            .unwrap();
    let (status, account, _) = world.call(Method::Post, COLLECTION_PATH, Some(account_body()));
    assert_eq!(status, 201);
    let signer = crate::testing::memory::MemorySigner::new(keys.active()).unwrap();
    let part = |value: Value| Base64UrlUnpadded::encode_string(value.to_string().as_bytes());
    let input = format!(
        "{}.{}",
        part(json!({"alg": "ES256", "typ": "at+jwt", "kid": signer.kid()})),
        part(
            json!({"iss": "https://sts.test", "aud": "https://sts.test", "client_id": account["id"],
            "sub": account["id"], "scope": "certificate-issuance", "iat": NOW_SECONDS,
            "exp": NOW_SECONDS + 900, "jti": "j"})
        )
    );
    let signature = block_on(signer.sign(input.as_bytes())).unwrap();
    let token = format!("{input}.{}", Base64UrlUnpadded::encode_string(&signature));
    world.isolate.signing_keys = Ok(keys);
    let id = account["id"].as_str().unwrap().to_owned();
    (world, token, id)
}

fn introspect(world: &World, token: &str) -> (u16, Value, Response) {
    let mut request = request_as(TOKEN, Method::Post, "/oauth2/introspect", None);
    request.headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    request.body = format!("token={token}").into_bytes();
    world.send(request)
}

/// Introspection that cannot read the account because KV fails says so (503, retry), rather
/// than calling a valid token inactive.
#[test]
fn introspection_that_cannot_read_the_account_is_unavailable_not_inactive() {
    let (world, token, _) = minted_for_an_account();
    let (status, body, _) = introspect(&world, &token);
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    world.platform.accounts.fail_with(Some("KV is down"));
    let (status, body, _) = introspect(&world, &token);
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
}

/// A stored record that cannot be read is no outage to retry: 500, the operator's to mend.
#[test]
fn introspection_of_a_corrupt_record_is_a_server_error() {
    let (world, token, id) = minted_for_an_account();
    block_on(
        world
            .platform
            .accounts
            .put(&format!("account:{id}"), "{not json", None),
    )
    .unwrap();
    let (status, body, _) = introspect(&world, &token);
    assert_eq!(
        (status, &body["error"]),
        (500, &json!("server_error")),
        "{body}"
    );
}

/// When Access's certificates cannot be fetched, an assertion is not the caller's fault: 503,
/// not 401, and no failed sign-in is counted.
#[test]
fn an_access_outage_is_unavailable_not_unauthorized() {
    use crate::jose::alg::Alg;
    use crate::ports::FetchError;
    use crate::testing::test_issuer::TestIssuer;
    const TEAM: &str = "acme.cloudflareaccess.com";
    let mut world = World::with_admins(AdminSecrets {
        access_team_domain: Some(TEAM.into()),
        access_aud: Some("aud".into()),
        ..AdminSecrets::default()
    });
    world.platform.rate_limiter = Some(MemoryRateLimiter::new(100));
    world.platform.fetcher.respond(
        &format!("https://{TEAM}/cdn-cgi/access/certs"),
        Err(FetchError::Network("connection refused".into())),
    );
    let claims = json!({"iss": format!("https://{TEAM}"), "aud": ["aud"], "email": "alice@example.com",
        "iat": NOW_SECONDS, "exp": NOW_SECONDS + 3600});
    let mut request = Request::new(Method::Get, "http://sts.test", COLLECTION_PATH);
    request.headers.push((
        "cf-access-jwt-assertion".into(),
        TestIssuer::new().sign(Alg::Rs256, &claims, json!({})),
    ));
    let (status, body, _) = world.send(request);
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    let limiter = world.platform.rate_limiter.as_ref().unwrap();
    assert_eq!(
        limiter.count("admin-auth:unknown"),
        0,
        "no failed sign-in counted"
    );
}

/// Cloudflare Access: the assertion is verified against the team's certs (fetched and cached
/// as an issuer's key set), `iss` must be the team and `aud` hold `ACCESS_AUD`; the actor is
/// its `email`, with the `admin` role.
#[test]
fn a_cloudflare_access_assertion_is_an_admin_named_by_its_email() {
    use crate::jose::alg::Alg;
    use crate::testing::test_issuer::TestIssuer;
    const TEAM: &str = "acme.cloudflareaccess.com";
    const AUD: &str = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3bf41b8c8b5ff";
    let world = World::with_admins(AdminSecrets {
        access_team_domain: Some(TEAM.into()),
        access_aud: Some(AUD.into()),
        ..AdminSecrets::default()
    });
    let issuer = TestIssuer::new();
    // Access publishes `keys` and, beside them, its certificates in PEM.
    let mut certs = issuer.jwks();
    certs["public_cert"] = json!({"kid": "RS256", "cert": "-----BEGIN CERTIFICATE-----..."});
    world.platform.fetcher.serve(
        &format!("https://{TEAM}/cdn-cgi/access/certs"),
        &certs.to_string(),
        None,
    );
    let assertion = |claims: Value| {
        let mut claims_with_defaults = json!({
            "iss": format!("https://{TEAM}"),
            "aud": [AUD],
            "email": "alice@example.com",
            "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
            "iat": NOW_SECONDS - 3600,
            "nbf": NOW_SECONDS - 3600,
            "exp": NOW_SECONDS + 20 * 3600,
            "type": "app",
        });
        for (name, value) in claims.as_object().unwrap() {
            claims_with_defaults[name] = value.clone();
        }
        issuer.sign(Alg::Rs256, &claims_with_defaults, json!({}))
    };
    let call = |assertion: String, method, body: Option<Value>| {
        let mut request = Request::new(method, "http://sts.test", COLLECTION_PATH);
        request
            .headers
            .push(("cf-access-jwt-assertion".into(), assertion));
        if let Some(body) = body {
            request
                .headers
                .push(("content-type".into(), "application/json".into()));
            request.body = body.to_string().into_bytes();
        }
        world.send(request)
    };
    let (status, body, _) = call(assertion(json!({})), Method::Post, Some(account_body()));
    assert_eq!(status, 201, "{body}");
    let events = world.platform.registry.store.events();
    assert_eq!(events[0].actor, "alice@example.com");
    // An Access service token has no email: its common_name names it.
    let (status, _, _) = call(
        assertion(json!({"email": null, "common_name": "ci.access"})),
        Method::Get,
        None,
    );
    assert_eq!(status, 200);
    for (claims, says) in [
        (
            json!({"aud": ["another-application"]}),
            "another Access application",
        ),
        (
            json!({"iss": "https://evil.cloudflareaccess.com"}),
            "not issued by",
        ),
        (json!({"exp": NOW_SECONDS - 3600}), "expired"),
        (json!({"email": null}), "names no email"),
    ] {
        let (status, body, _) = call(assertion(claims.clone()), Method::Get, None);
        assert_eq!(status, 401, "{claims}");
        assert_eq!(body["error"], "invalid_token");
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "{claims}: {body}"
        );
    }
    // A forged signature: the same claims signed by another key.
    let forged = {
        let good = assertion(json!({}));
        let (head, _) = good.rsplit_once('.').unwrap();
        format!("{head}.{}", "A".repeat(342))
    };
    assert_eq!(call(forged, Method::Get, None).0, 401);
    // Without the header, the 401 says to sign in through Access.
    let (status, body, _) = world.send(Request::new(
        Method::Get,
        "http://sts.test",
        COLLECTION_PATH,
    ));
    assert_eq!(status, 401);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("Cloudflare Access"));
    // The certs were fetched once, then served from the isolate's cache.
    assert_eq!(world.platform.fetcher.requests().len(), 1);
}

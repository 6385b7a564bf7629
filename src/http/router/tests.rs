//! The router: one log line per token request, and the route table.

use serde_json::Value;

use super::*;
use crate::config::settings::{Settings, Vars};
use crate::config::signing_keys::{SigningKeys, SigningKeysError};
use crate::exchange::key_sets::KeySets;
use crate::testing::memory::{block_on, FixedClock, WhatwgUrls};
use crate::testing::platform::MemoryPlatform;
use crate::testing::test_issuer::MINT_KEY;

/// An isolate with these vars and signing keys, and nothing cached.
fn isolate(vars: &Vars, signing_keys: Result<SigningKeys, SigningKeysError>) -> Isolate {
    Isolate {
        settings: Settings::from_vars(vars, &WhatwgUrls),
        signing_keys,
        admins: Default::default(),
        key_sets: KeySets::default(),
    }
}

/// A form POST to the token endpoint.
fn token_request(body: String) -> Request {
    let mut request = Request::new(Method::Post, "https://sts.test", "/oauth2/token");
    request.headers.push((
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    ));
    request.body = body.into_bytes();
    request
}

/// A token request through the router: one log line, with the SPEC's fields and without the
/// token or any part of it.
#[test]
fn each_token_request_logs_one_line_without_the_token() {
    let isolate = isolate(&Vars::default(), Err(SigningKeysError::Missing));
    let platform = MemoryPlatform {
        clock: FixedClock::at_seconds(1_795_435_200),
        ..MemoryPlatform::default()
    };
    // A token whose payload names iss/sub but whose signature part is recognisable.
    let token =
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6InMifQ.U0lHTkFUVVJFLVNFQ1JFVA";
    for body in [
        format!("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={token}"),
        "grant_type=password".into(),
    ] {
        block_on(handle(&token_request(body), &isolate, &platform));
    }
    let lines = platform.log.lines();
    assert_eq!(lines.len(), 2, "one line per request");
    for line in &lines {
        for field in [
            "event", "outcome", "status", "reason", "account", "iss", "sub", "jti",
        ] {
            assert!(line.get(field).is_some(), "{field} in {line}");
        }
        let text = line.to_string();
        assert!(
            !text.contains("U0lHTkFUVVJF") && !text.contains("eyJ"),
            "no token in {text}"
        );
    }
    assert_eq!(lines[1]["error"], Value::from("unsupported_grant_type"));
}

/// The routes `dispatch` hands on to `answer_other` are each answered by their own endpoint:
/// what it serves, or, for the admin routes, their authorization's refusal (no admin secret is
/// set here). None falls through to a 404.
#[test]
fn every_other_route_is_answered_by_its_endpoint() {
    const DISABLED: (u16, &str) = (401, "admin API disabled");
    let vars = Vars {
        issuer: Some("https://sts.test".into()),
        ..Vars::default()
    };
    let isolate = isolate(&vars, SigningKeys::parse(MINT_KEY));
    let platform = MemoryPlatform {
        clock: FixedClock::at_seconds(1_795_435_200),
        ..MemoryPlatform::default()
    };
    let (get, post) = (Method::Get, Method::Post);
    for (method, path, (status, says)) in [
        (get, "/openapi.json", (200, "\"openapi\"")),
        (get, "/.well-known/jwks.json", (200, "\"keys\"")),
        (
            get,
            "/.well-known/openid-configuration",
            (200, "token_endpoint"),
        ),
        (get, "/admin", (200, "<html")),
        (get, "/v1/serviceaccounts/scopes", DISABLED),
        (get, "/v1/serviceaccounts", DISABLED),
        (get, "/v1/serviceaccounts/abc", DISABLED),
        (post, "/v1/serviceaccounts/abc/verify", DISABLED),
        (get, "/v1/audit", DISABLED),
        (post, "/oauth2/introspect", DISABLED),
    ] {
        let response = block_on(handle(
            &Request::new(method, "https://sts.test", path),
            &isolate,
            &platform,
        ));
        let body = String::from_utf8_lossy(&response.body);
        assert_eq!(response.status, status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
}

#[test]
fn routes_each_path_shape() {
    let cases: [(&str, Option<Route<'_>>); 12] = [
        ("/healthz", Some(Route::Health)),
        ("/oauth2/token", Some(Route::Token { tenant: None })),
        (
            "/v1/oauth2/v2.0/acme/token",
            Some(Route::Token {
                tenant: Some("acme"),
            }),
        ),
        (
            "/acme/oauth2/v2.0/token",
            Some(Route::Token {
                tenant: Some("acme"),
            }),
        ),
        (
            "/v1/oauth2/v2.0/token",
            Some(Route::Token { tenant: Some("v1") }),
        ),
        (
            "/acme/v2.0/.well-known/openid-configuration",
            Some(Route::TenantMetadata("acme")),
        ),
        (
            "/acme/.well-known/openid-configuration",
            Some(Route::TenantMetadata("acme")),
        ),
        (
            "/acme/oauth2/v2.0/authorize",
            Some(Route::Authorize("acme")),
        ),
        ("/v1/serviceaccounts/scopes", Some(Route::Scopes)),
        ("/v1/serviceaccounts/abc/verify", Some(Route::Verify("abc"))),
        ("/v1/serviceaccounts/abc/other", None),
        ("/nope", None),
    ];
    for (path, expected) in cases {
        assert_eq!(route(path).map(|(route, _)| route), expected, "{path}");
    }
}

/// A corrupt account record is the service's fault, not the token's and not an outage: the
/// token endpoint answers 500 `server_error` (no Retry-After: retrying cannot help). With the
/// record intact the same request goes on to the key set (here unreachable: 503).
#[test]
fn a_corrupt_account_record_answers_500_on_the_token_endpoint() {
    use crate::accounts::store::account_key;
    use crate::jose::alg::Alg;
    use crate::ports::KeyValueStore;
    use crate::testing::registry::put_accounts;
    use crate::testing::test_issuer::TestIssuer;

    const NOW: i64 = 1_795_435_200;
    let vars = Vars {
        issuer: Some("https://sts.test".into()),
        ..Vars::default()
    };
    let isolate = isolate(&vars, SigningKeys::parse(MINT_KEY));
    let platform = MemoryPlatform {
        clock: FixedClock::at_seconds(NOW as u64),
        ..MemoryPlatform::default()
    };
    let account: crate::accounts::Account = serde_json::from_value(serde_json::json!({
        "id": "acct-1", "name": "ci", "authenticationType": "rsaKeyFederated",
        "scopes": ["certificate-issuance"], "issuerURL": "https://idp.example.com",
        "jwksURI": "https://idp.example.com/jwks", "subject": "repo:acme/app",
        "audience": "https://sts.test", "enabled": true,
        "createdAt": "2026-11-23T11:00:00.000Z", "updatedAt": "2026-11-23T11:00:00.000Z",
    }))
    .unwrap();
    put_accounts(&platform.accounts, &[account]);
    let claims = serde_json::json!({
        "iss": "https://idp.example.com", "sub": "repo:acme/app", "aud": "https://sts.test",
        "iat": NOW - 10, "exp": NOW + 600,
    });
    let token = TestIssuer::new().sign(Alg::Es256, &claims, serde_json::json!({}));
    let request = token_request(format!(
        "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={token}"
    ));

    let intact = block_on(handle(&request, &isolate, &platform));
    assert_eq!(
        intact.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&intact.body)
    );

    let intact_record = block_on(platform.accounts.get(&account_key("acct-1")))
        .unwrap()
        .unwrap();
    // Not JSON; a member twice; a member of the wrong type.
    for corrupt_record in [
        "{\"id\":".to_owned(),
        intact_record.replacen("\"enabled\":true", "\"enabled\":true,\"enabled\":false", 1),
        intact_record.replacen("\"enabled\":true", "\"enabled\":\"yes\"", 1),
    ] {
        assert_ne!(corrupt_record, intact_record);
        block_on(
            platform
                .accounts
                .put(&account_key("acct-1"), &corrupt_record, None),
        )
        .unwrap();
        let corrupt = block_on(handle(&request, &isolate, &platform));
        assert_eq!(corrupt.status, 500, "{corrupt_record}");
        let body: Value = serde_json::from_slice(&corrupt.body).unwrap();
        assert_eq!(body["error"], "server_error");
        assert!(!corrupt
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("retry-after")));
    }
}

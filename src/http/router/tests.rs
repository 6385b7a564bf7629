//! The router: one log line per token request, and the route table.

use serde_json::Value;

use super::*;
use crate::config::settings::{Settings, Vars};
use crate::config::signing_keys::SigningKeysError;
use crate::exchange::key_sets::KeySets;
use crate::testing::memory::{block_on, FixedClock, WhatwgUrls};
use crate::testing::platform::MemoryPlatform;

/// A token request through the router: one log line, with the SPEC's fields and without the
/// token or any part of it.
#[test]
fn each_token_request_logs_one_line_without_the_token() {
    let isolate = Isolate {
        settings: Settings::from_vars(&Vars::default(), &WhatwgUrls),
        signing_keys: Err(SigningKeysError::Missing),
        admins: Default::default(),
        key_sets: KeySets::default(),
    };
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
        let mut request = Request::new(Method::Post, "https://sts.test", "/oauth2/token");
        request.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        request.body = body.into_bytes();
        block_on(handle(&request, &isolate, &platform));
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

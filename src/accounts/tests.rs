//! One test per field rule of the contract's account table, table-driven where a rule has cases.

use serde_json::{json, Map, Value};

use super::*;
use crate::config::settings::{Settings, Vars};
use crate::testing::memory::WhatwgUrls;

fn settings() -> Settings {
    Settings::from_vars(&Vars::default(), &WhatwgUrls).unwrap()
}

fn loopback_settings() -> Settings {
    Settings::from_vars(
        &Vars {
            allow_http_loopback: Some("true".into()),
            ..Vars::default()
        },
        &WhatwgUrls,
    )
    .unwrap()
}

/// A valid body: GitHub Actions deploying from main.
fn valid() -> Map<String, Value> {
    json!({
        "name": "deploy from main",
        "scopes": ["certificate-issuance"],
        "issuerURL": "https://token.actions.githubusercontent.com",
        "subject": "repo:acme/app:ref:refs/heads/main",
        "audience": "https://sts.example.com",
    })
    .as_object()
    .unwrap()
    .clone()
}

fn with(changes: Value) -> Map<String, Value> {
    let mut body = valid();
    merge_patch(&mut body, changes.as_object().unwrap());
    body
}

/// Asserts that `body` is refused for `field` with a message containing `needle`.
fn assert_refused(body: &Map<String, Value>, settings: &Settings, field: &str, needle: &str) {
    let error = check_field_names(body)
        .and_then(|()| validate(body, settings, &WhatwgUrls))
        .expect_err(&format!("accepted {body:?}"));
    assert_eq!(
        error.field.as_deref(),
        Some(field),
        "{body:?}: {}",
        error.message
    );
    assert!(
        error.message.contains(needle),
        "{:?} lacks {needle:?}",
        error.message
    );
}

#[test]
fn a_valid_body_gets_its_defaults() {
    let fields = validate(&valid(), &settings(), &WhatwgUrls).unwrap();
    assert_eq!(fields.name, "deploy from main");
    assert_eq!(fields.authentication_type, "rsaKeyFederated");
    assert_eq!(fields.scopes, ["certificate-issuance"]);
    assert_eq!(
        fields.issuer_url,
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(fields.jwks_uri, None);
    assert_eq!(
        fields.subject,
        SubjectRule::Exact("repo:acme/app:ref:refs/heads/main".into())
    );
    assert_eq!(fields.audience, "https://sts.example.com");
    assert!(fields.claims.is_empty());
    assert_eq!(fields.owner, None);
    assert!(fields.applications.is_empty());
    assert!(fields.enabled);
}

#[test]
fn every_optional_field_is_kept() {
    let body = with(json!({
        "authenticationType": "rsaKeyFederated",
        "jwksURI": "https://token.actions.githubusercontent.com/.well-known/jwks",
        "claims": {"repository_owner": "acme", "ref_protected": "true"},
        "owner": "platform team",
        "applications": ["app-1", "app-2"],
        "enabled": false,
    }));
    let fields = validate(&body, &settings(), &WhatwgUrls).unwrap();
    assert_eq!(
        fields.jwks_uri.as_deref(),
        Some("https://token.actions.githubusercontent.com/.well-known/jwks")
    );
    assert_eq!(fields.claims.len(), 2);
    assert_eq!(fields.owner.as_deref(), Some("platform team"));
    assert_eq!(fields.applications, ["app-1", "app-2"]);
    assert!(!fields.enabled);
}

#[test]
fn unknown_and_read_only_fields_are_refused() {
    for (name, needle) in [
        ("id", "read-only"),
        ("createdAt", "read-only"),
        ("updatedAt", "read-only"),
        ("issuerUrl", "unknown field"),
        ("subjects", "unknown field"),
    ] {
        assert_refused(&with(json!({ name: "x" })), &settings(), name, needle);
    }
}

#[test]
fn name_rules() {
    let long = "n".repeat(129);
    for (name, needle) in [
        (Value::Null, "name is required"),
        (json!(5), "must be a string"),
        (json!(""), "must not be blank"),
        (json!("   "), "must not be blank"),
        (json!(long), "129 characters"),
        (json!("tab\there"), "control characters"),
        (json!("line\nbreak"), "control characters"),
    ] {
        assert_refused(&with(json!({ "name": name })), &settings(), "name", needle);
    }
    assert!(validate(
        &with(json!({ "name": "n".repeat(128) })),
        &settings(),
        &WhatwgUrls
    )
    .is_ok());
    assert!(validate(
        &with(json!({ "name": "Déploiement — prod ✓" })),
        &settings(),
        &WhatwgUrls
    )
    .is_ok());
}

#[test]
fn authentication_type_is_only_rsa_key_federated() {
    for kind in [json!("password"), json!("RSAKEYFEDERATED"), json!(1)] {
        assert_refused(
            &with(json!({ "authenticationType": kind })),
            &settings(),
            "authenticationType",
            "rsaKeyFederated",
        );
    }
}

#[test]
fn scopes_rules() {
    for (scopes, needle) in [
        (Value::Null, "scopes is required"),
        (json!("certificate-issuance"), "must be an array"),
        (json!([]), "at least one"),
        (json!([1]), "array of strings"),
        (
            json!(["admin"]),
            "not in the catalogue; the scopes are: certificate-issuance, api-integration",
        ),
        (
            json!(["api-integration", "api-integration"]),
            "listed twice",
        ),
    ] {
        assert_refused(
            &with(json!({ "scopes": scopes })),
            &settings(),
            "scopes",
            needle,
        );
    }
    let both = validate(
        &with(json!({"scopes": ["api-integration", "certificate-issuance"]})),
        &settings(),
        &WhatwgUrls,
    );
    assert_eq!(
        both.unwrap().scopes,
        ["api-integration", "certificate-issuance"]
    );
}

#[test]
fn scopes_follow_the_configured_catalogue() {
    let custom = Settings::from_vars(
        &Vars {
            scopes: Some("read,write".into()),
            ..Vars::default()
        },
        &WhatwgUrls,
    )
    .unwrap();
    assert!(validate(&with(json!({"scopes": ["read"]})), &custom, &WhatwgUrls).is_ok());
    assert_refused(
        &with(json!({"scopes": ["certificate-issuance"]})),
        &custom,
        "scopes",
        "read, write",
    );
}

#[test]
fn url_rules_apply_to_issuer_url_and_jwks_uri() {
    let long = format!("https://example.com/{}", "p".repeat(600));
    let cases = [
        (Value::Null, "is required"),
        (json!(7), "must be a string"),
        (
            json!("token.actions.githubusercontent.com"),
            "not a URL that fetch can parse",
        ),
        (
            json!("http://issuer.example.com"),
            "http:// is allowed only",
        ),
        (json!(" https://issuer.example.com"), "whitespace"),
        (json!("https://issuer.example.com "), "whitespace"),
        (json!("https://issuer.example.com/?x=1"), "query"),
        (json!("https://issuer.example.com/#x"), "fragment"),
        (json!(long), "more than 600"),
    ];
    for (url, needle) in cases {
        assert_refused(
            &with(json!({ "issuerURL": url })),
            &settings(),
            "issuerURL",
            needle,
        );
        if !url.is_null() {
            assert_refused(
                &with(json!({ "jwksURI": url })),
                &settings(),
                "jwksURI",
                needle,
            );
        }
    }
}

#[test]
fn urls_are_normalised() {
    let fields = validate(
        &with(json!({"issuerURL": "HTTPS://Token.Actions.GitHubUserContent.com", "jwksURI": "https://Keys.Example.com/Path"})),
        &settings(), &WhatwgUrls)
    .unwrap();
    assert_eq!(
        fields.issuer_url,
        "https://token.actions.githubusercontent.com"
    );
    assert_eq!(
        fields.jwks_uri.as_deref(),
        Some("https://keys.example.com/Path")
    );
}

#[test]
fn http_loopback_urls_need_allow_http_loopback() {
    let body = with(
        json!({"issuerURL": "http://127.0.0.1:9000", "jwksURI": "http://localhost:9000/jwks"}),
    );
    assert_refused(&body, &settings(), "issuerURL", "ALLOW_HTTP_LOOPBACK");
    assert!(validate(&body, &loopback_settings(), &WhatwgUrls).is_ok());
}

#[test]
fn exactly_one_of_subject_and_subject_pattern() {
    let mut neither = valid();
    neither.remove("subject");
    assert_refused(&neither, &settings(), "subject", "is required");
    assert_refused(
        &with(json!({"subjectPattern": "repo:acme/*"})),
        &settings(),
        "subjectPattern",
        "not both",
    );
}

#[test]
fn subject_rules() {
    for (subject, needle) in [
        (json!(""), "must not be empty"),
        (json!(1), "must be a string"),
        (json!("s".repeat(601)), "601 characters"),
        (json!("a\u{0}b"), "control characters"),
    ] {
        assert_refused(
            &with(json!({ "subject": subject })),
            &settings(),
            "subject",
            needle,
        );
    }
    // Exact subjects are case-sensitive and kept as given, wildcards included.
    let fields = validate(
        &with(json!({"subject": "Repo:ACME/*"})),
        &settings(),
        &WhatwgUrls,
    )
    .unwrap();
    assert_eq!(fields.subject, SubjectRule::Exact("Repo:ACME/*".into()));
    assert!(fields.subject.matches("Repo:ACME/*"));
    assert!(!fields.subject.matches("Repo:ACME/app"));
}

#[test]
fn subject_pattern_rules() {
    let pattern_only = |pattern: Value| {
        let mut body = valid();
        body.remove("subject");
        body.insert("subjectPattern".into(), pattern);
        body
    };
    for (pattern, needle) in [
        (json!(""), "must not be empty"),
        (json!("*"), "too broad"),
        (json!("?*"), "too broad"),
        // The review's patterns: each would trust far more than one owner's workloads.
        (json!("*:*"), "too broad"),
        (json!("r*"), "too broad"),
        (json!("*/*"), "too broad"),
        (json!("*o*"), "too broad"),
        // Long enough, but no ':' or '/' to anchor an owner; or the anchor comes too late.
        (json!("repository*"), "too broad"),
        (json!("repo:ab*"), "too broad"),
        (json!("p".repeat(601)), "601 characters"),
    ] {
        assert_refused(
            &pattern_only(pattern),
            &settings(),
            "subjectPattern",
            needle,
        );
    }
    let fields = validate(
        &pattern_only(json!("repo:acme/*:ref:refs/heads/?ain")),
        &settings(),
        &WhatwgUrls,
    )
    .unwrap();
    assert!(fields.subject.matches("repo:acme/api:ref:refs/heads/main"));
    assert!(!fields.subject.matches("repo:other/api:ref:refs/heads/main"));
}

#[test]
fn audience_rules() {
    for (audience, needle) in [
        (Value::Null, "audience is required"),
        (json!(["a"]), "must be a string"),
        (json!(""), "must not be empty"),
        (json!("a".repeat(601)), "601 characters"),
    ] {
        assert_refused(
            &with(json!({ "audience": audience })),
            &settings(),
            "audience",
            needle,
        );
    }
}

#[test]
fn claims_rules() {
    let many: Map<String, Value> = (0..21).map(|i| (format!("c{i}"), json!("x"))).collect();
    for (claims, needle) in [
        (json!(["a"]), "must be an object"),
        (json!("ref=main"), "must be an object"),
        (Value::Object(many), "21 entries"),
        (json!({"": "x"}), "claim names must be 1 to 128"),
        (
            json!({ "n".repeat(129): "x" }),
            "claim names must be 1 to 128",
        ),
        (json!({"sub": "x"}), "has its own rule"),
        (json!({"aud": "x"}), "has its own rule"),
        (json!({"ref_protected": true}), "must be a string glob"),
        (json!({"run_attempt": 1}), "must be a string glob"),
        (json!({"ref": "r".repeat(601)}), "at most 600"),
    ] {
        let mut body = valid();
        body.insert("claims".into(), claims);
        assert_refused(&body, &settings(), "claims", needle);
    }
}

#[test]
fn owner_and_applications_rules() {
    for (owner, needle) in [
        (json!(1), "must be a string"),
        (json!("o".repeat(1025)), "1025 characters"),
    ] {
        assert_refused(
            &with(json!({ "owner": owner })),
            &settings(),
            "owner",
            needle,
        );
    }
    let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    for (applications, needle) in [
        (json!("app"), "array of strings"),
        (json!([1]), "array of strings"),
        (json!(many), "101 entries"),
        (json!(["a".repeat(257)]), "257 characters"),
    ] {
        assert_refused(
            &with(json!({ "applications": applications })),
            &settings(),
            "applications",
            needle,
        );
    }
}

#[test]
fn enabled_must_be_a_boolean() {
    assert_refused(
        &with(json!({"enabled": "false"})),
        &settings(),
        "enabled",
        "true or false",
    );
    assert!(
        !validate(&with(json!({"enabled": false})), &settings(), &WhatwgUrls)
            .unwrap()
            .enabled
    );
}

#[test]
fn merge_patch_follows_rfc_7396() {
    // RFC 7396 §3's example.
    let mut target = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"], "content": "This will be unchanged"});
    let patch = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": null}, "tags": ["example"]});
    merge_patch(target.as_object_mut().unwrap(), patch.as_object().unwrap());
    assert_eq!(
        target,
        json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
    );
}

#[test]
fn an_account_round_trips_through_its_stored_json() {
    let fields = validate(
        &with(json!({"claims": {"ref": "refs/heads/*"}, "owner": "me"})),
        &settings(),
        &WhatwgUrls,
    )
    .unwrap();
    let account = Account {
        id: "0b9e6a4e-8f2c-4f0e-9a59-3c1f4ad1e7a1".into(),
        fields,
        created_at: "2026-11-23T12:00:00.000Z".into(),
        updated_at: "2026-11-23T12:00:00.000Z".into(),
    };
    let stored = serde_json::to_value(&account).unwrap();
    assert_eq!(stored["subject"], "repo:acme/app:ref:refs/heads/main");
    assert_eq!(
        stored["issuerURL"],
        "https://token.actions.githubusercontent.com"
    );
    assert!(stored.get("subjectPattern").is_none());
    assert!(stored.get("jwksURI").is_none());
    let back: Account = serde_json::from_value(stored).unwrap();
    assert_eq!(back, account);
}

/// An inline `jwks`, for an issuer the internet cannot reach: public keys edge-sts can use,
/// at most 100, exclusive with `jwksURI`.
#[test]
fn an_inline_jwks_holds_usable_public_keys_only() {
    let ec = json!({"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let fields = validate(
        &with(json!({"jwks": {"keys": [ec]}})),
        &settings(),
        &WhatwgUrls,
    )
    .unwrap();
    assert_eq!(fields.jwks, Some(json!({"keys": [ec]})));
    assert_eq!(fields.jwks_uri, None);
    let mut private = ec.clone();
    private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let too_many: Vec<Value> = (0..101).map(|_| ec.clone()).collect();
    for (jwks, needle) in [
        (json!([ec]), "must be a JWK Set"),
        (json!({"keys": []}), "1 to 100 keys"),
        (json!({"keys": too_many}), "1 to 100 keys"),
        (json!({"keys": [private]}), "private member \"d\""),
        (
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "private member \"k\"",
        ),
        (
            json!({"keys": [ec, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}),
            "key 1 is not a public key",
        ),
    ] {
        assert_refused(&with(json!({ "jwks": jwks })), &settings(), "jwks", needle);
    }
    assert_refused(
        &with(json!({"jwks": {"keys": [ec]}, "jwksURI": "https://idp.example.com/jwks"})),
        &settings(),
        "jwks",
        "not both",
    );
}

#[test]
fn a_new_id_is_a_version_4_uuid() {
    let id = super::account_id_from([0xff; 16]);
    assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert!(super::is_account_id(&id));
    assert!(super::is_account_id(&super::account_id_from([0; 16])));
}

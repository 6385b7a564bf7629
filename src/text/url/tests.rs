//! The URL rules on the table of `tests/vectors/urls.json`, which the end-to-end suite also
//! runs through the admin API in workerd (the runtime's own `URL`): both parsers must agree.

use serde_json::Value;

use super::*;
use crate::testing::memory::WhatwgUrls;

fn vectors(kind: &str) -> Vec<Value> {
    let text = include_str!("../../../tests/vectors/urls.json");
    let all: Value = serde_json::from_str(text).unwrap();
    all[kind].as_array().unwrap().clone()
}

fn variant(error: &UrlError) -> &'static str {
    match error {
        UrlError::Empty => "Empty",
        UrlError::TooLong { .. } => "TooLong",
        UrlError::Whitespace => "Whitespace",
        UrlError::NotAUrl => "NotAUrl",
        UrlError::NotHttps => "NotHttps",
        UrlError::HttpNotLoopback => "HttpNotLoopback",
        UrlError::NoHost => "NoHost",
        UrlError::UserInfo => "UserInfo",
        UrlError::QueryOrFragment => "QueryOrFragment",
        UrlError::InternalAddress { .. } => "InternalAddress",
    }
}

#[test]
fn configured_urls_follow_the_table() {
    for case in vectors("normalize") {
        let input = case["input"].as_str().unwrap();
        let loopback = case["loopback"].as_bool().unwrap_or(false);
        let got = normalize_url(input, loopback, &WhatwgUrls);
        match (&got, case["stored"].as_str(), case["error"].as_str()) {
            (Ok(stored), Some(expected), _) => assert_eq!(stored, expected, "{input}"),
            (Err(error), _, Some(expected)) => assert_eq!(variant(error), expected, "{input}"),
            _ => panic!("{input}: got {got:?}, expected {case}"),
        }
    }
}

#[test]
fn redirects_follow_the_table() {
    for case in vectors("redirect") {
        let (base, location) = (
            case["base"].as_str().unwrap(),
            case["location"].as_str().unwrap(),
        );
        let got = resolve_redirect(base, location, false, &WhatwgUrls);
        match case["next"].as_str() {
            Some(next) => assert_eq!(got.as_deref(), Ok(next), "{location}"),
            None => assert!(got.is_err(), "{location}: {got:?}"),
        }
    }
}

#[test]
fn empty_and_too_long_are_refused_before_parsing() {
    assert_eq!(normalize_url("", false, &WhatwgUrls), Err(UrlError::Empty));
    let long = format!("https://example.com/{}", "a".repeat(600));
    assert_eq!(
        normalize_url(&long, false, &WhatwgUrls),
        Err(UrlError::TooLong { chars: 620 })
    );
    // Percent-encoding can lengthen a URL past the limit: the stored form is counted too.
    let grows = format!("https://example.com/{}", "ü".repeat(150));
    assert!(matches!(
        normalize_url(&grows, false, &WhatwgUrls),
        Err(UrlError::TooLong { .. })
    ));
}

#[test]
fn splits_request_urls() {
    let cases = [
        (
            "http://127.0.0.1:8787/healthz",
            ("http://127.0.0.1:8787", "/healthz", None),
        ),
        (
            "https://sts.example.com/v1/serviceaccounts?limit=2&cursor=x",
            (
                "https://sts.example.com",
                "/v1/serviceaccounts",
                Some("limit=2&cursor=x"),
            ),
        ),
        (
            "https://sts.example.com",
            ("https://sts.example.com", "/", None),
        ),
        (
            "https://sts.example.com?x=1",
            ("https://sts.example.com", "/", Some("x=1")),
        ),
        (
            "https://sts.example.com/a#frag",
            ("https://sts.example.com", "/a", None),
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(split_request_url(url), Some(expected), "{url}");
    }
    assert_eq!(split_request_url("/relative"), None);
}

//! Checking the URLs an operator or administrator configures: issuer URLs, JWKS URIs, `ISSUER`.
//!
//! The rules are SPEC.md's: absolute `https://`, no query or fragment, no whitespace, no user
//! info, at most [`MAX_URL_CHARS`] characters; `http://` only for a loopback host and only when
//! `ALLOW_HTTP_LOOPBACK` is on. The scheme and host are lower-cased (they are case-insensitive),
//! the rest is kept exactly, so a token's `iss` is later compared with a plain string equality.
//! No I/O here.

use std::fmt;

/// Longest URL accepted, in characters. SPEC.md's limit for `issuerURL` and `jwksURI`; real
/// issuer URLs are under 100 (GitHub's is 43), so 600 leaves room for long tenant paths.
pub const MAX_URL_CHARS: usize = 600;

/// Why a URL was refused. Each message completes "… must be an absolute https:// URL: …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    Empty,
    TooLong { chars: usize },
    Whitespace,
    NotHttps,
    HttpNotLoopback,
    NoHost,
    UserInfo,
    BadPort,
    QueryOrFragment,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "it is empty"),
            Self::TooLong { chars } => {
                write!(f, "it has {chars} characters, more than {MAX_URL_CHARS}")
            }
            Self::Whitespace => write!(f, "it contains whitespace or control characters"),
            Self::NotHttps => write!(f, "it does not start with https://"),
            Self::HttpNotLoopback => write!(
                f,
                "http:// is allowed only for 127.0.0.1, localhost or [::1] with ALLOW_HTTP_LOOPBACK=true"
            ),
            Self::NoHost => write!(f, "it has no host"),
            Self::UserInfo => write!(f, "it contains user info (user@host)"),
            Self::BadPort => write!(f, "its port is not a number from 1 to 65535"),
            Self::QueryOrFragment => write!(f, "it has a query (?) or fragment (#)"),
        }
    }
}

/// Checks `raw` and returns its normalised form (lower-case scheme and host).
pub fn normalize_url(raw: &str, allow_http_loopback: bool) -> Result<String, UrlError> {
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    let chars = raw.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(UrlError::TooLong { chars });
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Whitespace);
    }
    let (scheme, rest) = raw.split_once("://").ok_or(UrlError::NotHttps)?;
    let scheme = scheme.to_ascii_lowercase();
    let is_http = match scheme.as_str() {
        "https" => false,
        "http" => true,
        _ => return Err(UrlError::NotHttps),
    };
    if rest.contains(['?', '#']) {
        return Err(UrlError::QueryOrFragment);
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let host = host.to_ascii_lowercase();
    if is_http && !(allow_http_loopback && is_loopback(&host)) {
        return Err(UrlError::HttpNotLoopback);
    }
    let port = port.map(|port| format!(":{port}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{path}"))
}

/// Splits `host[:port]` (host may be a bracketed IPv6 literal) and checks the port.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, after) = authority.split_at(end + 1);
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return Err(UrlError::BadPort),
                }
            }
            None => return Err(UrlError::NoHost),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(UrlError::BadPort),
        },
        Some(_) => return Err(UrlError::BadPort),
    };
    Ok((host, port))
}

/// Whether `host` (lower-cased) names this machine.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    let octets: Vec<&str> = host.split('.').collect();
    octets.len() == 4
        && octets[0] == "127"
        && octets.iter().all(|octet| octet.parse::<u8>().is_ok())
}

/// Splits an absolute URL as the runtime hands it over (`scheme://authority/path?query`) into
/// origin, path and query. `None` when it is not of that form.
pub fn split_request_url(url: &str) -> Option<(&str, &str, Option<&str>)> {
    let authority_start = url.find("://")? + 3;
    let path_start = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |offset| authority_start + offset);
    let origin = &url[..path_start];
    let rest = url[path_start..].split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    Some((origin, if path.is_empty() { "/" } else { path }, query))
}

/// Resolves a redirect's `Location` against the URL that answered with it: absolute,
/// scheme-relative (`//host/…`), absolute-path (`/…`) and relative-path forms (RFC 3986 §5.2,
/// without dot-segment removal; the result is checked by [`normalize_url`] anyway).
pub fn resolve_location(base: &str, location: &str) -> Option<String> {
    let (origin, path, _) = split_request_url(base)?;
    let scheme = &base[..base.find("://")?];
    let location = location.trim();
    Some(if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let directory = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
        format!("{origin}{directory}{location}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn resolves_redirect_locations() {
        let base = "https://idp.example.com/keys/v1/jwks";
        let cases = [
            (
                "https://other.example.com/jwks",
                "https://other.example.com/jwks",
            ),
            ("//cdn.example.com/jwks", "https://cdn.example.com/jwks"),
            ("/v2/jwks", "https://idp.example.com/v2/jwks"),
            ("jwks2", "https://idp.example.com/keys/v1/jwks2"),
            ("http://127.0.0.1:9/x", "http://127.0.0.1:9/x"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve_location(base, location).as_deref(),
                Some(expected),
                "{location}"
            );
        }
    }

    #[test]
    fn accepts_and_normalises_https_urls() {
        let cases = [
            (
                "https://token.actions.githubusercontent.com",
                "https://token.actions.githubusercontent.com",
            ),
            (
                "HTTPS://Login.Example.COM/Tenant/v2.0",
                "https://login.example.com/Tenant/v2.0",
            ),
            ("https://example.com:8443/", "https://example.com:8443/"),
            ("https://[2001:db8::1]/x", "https://[2001:db8::1]/x"),
        ];
        for (raw, normalised) in cases {
            assert_eq!(
                normalize_url(raw, false).as_deref(),
                Ok(normalised),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_each_rule() {
        let long = format!("https://example.com/{}", "a".repeat(600));
        let cases = [
            ("", UrlError::Empty),
            (long.as_str(), UrlError::TooLong { chars: 620 }),
            (" https://example.com", UrlError::Whitespace),
            ("https://example.com/a b", UrlError::Whitespace),
            ("example.com", UrlError::NotHttps),
            ("ftp://example.com", UrlError::NotHttps),
            ("http://example.com", UrlError::HttpNotLoopback),
            ("https://", UrlError::NoHost),
            ("https:///path", UrlError::NoHost),
            ("https://user@example.com", UrlError::UserInfo),
            ("https://example.com:0", UrlError::BadPort),
            ("https://example.com:99999", UrlError::BadPort),
            ("https://example.com:+443", UrlError::BadPort),
            ("https://example.com:", UrlError::BadPort),
            ("https://example.com/?a=b", UrlError::QueryOrFragment),
            ("https://example.com/#top", UrlError::QueryOrFragment),
        ];
        for (raw, error) in cases {
            assert_eq!(normalize_url(raw, false), Err(error), "{raw}");
        }
    }

    #[test]
    fn http_only_for_loopback_and_only_when_allowed() {
        for host in ["127.0.0.1:9000", "127.1.2.3", "localhost:8080", "[::1]:80"] {
            let url = format!("http://{host}/jwks");
            assert_eq!(
                normalize_url(&url, false),
                Err(UrlError::HttpNotLoopback),
                "{url}"
            );
            assert_eq!(normalize_url(&url, true), Ok(url.clone()));
        }
        for host in [
            "127.0.0.1.example.com",
            "localhost.example.com",
            "10.0.0.1",
            "128.0.0.1",
        ] {
            let url = format!("http://{host}/");
            assert_eq!(
                normalize_url(&url, true),
                Err(UrlError::HttpNotLoopback),
                "{url}"
            );
        }
    }
}

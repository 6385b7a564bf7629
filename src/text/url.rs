//! Checking the URLs an operator or administrator configures (issuer URLs, JWKS URIs,
//! `ISSUER`) and every URL the fetcher is sent to, redirects included.
//!
//! A URL is parsed by the WHATWG URL Standard through a [`UrlParser`] — the parser the
//! platform's `fetch` uses — and stored in that standard's serialisation, so what an
//! administrator sees is exactly what is fetched: `https://%65vil.example/` is stored as
//! `https://evil.example`, `https://evil.example\.good.example/` as
//! `https://evil.example/.good.example/`, and `https://a.example:1:443/` is refused.
//!
//! The rules are the contract's: absolute `https://`, no query or fragment, no whitespace, no user
//! info, at most [`MAX_URL_CHARS`] characters; `http://` only for a loopback host and only with
//! `ALLOW_HTTP_LOOPBACK`; no IP literal in a loopback, private or link-local range unless
//! `ALLOW_HTTP_LOOPBACK` (a cloud's metadata service at `169.254.169.254` is one fetch away
//! otherwise). A token's `iss` is later compared with the stored string exactly. No I/O here.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A URL as the WHATWG URL Standard parses it: the parser the platform's `fetch` uses itself,
/// so a URL checked and stored in this form is exactly the URL that is later fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The serialisation (`href`): lower-case scheme and host, IDNA to ASCII, IPv4 in dotted
    /// decimal, default port dropped, percent-encoding and dot segments normalised.
    pub href: String,
    /// `"https:"`, `"http:"`, …
    pub protocol: String,
    pub username: String,
    pub password: String,
    /// The host as it is connected to; an IPv6 literal keeps its brackets.
    pub hostname: String,
    /// Empty for the scheme's default port.
    pub port: String,
    pub pathname: String,
}

/// Parses URLs by the WHATWG URL Standard. Pure, but a port all the same: in the worker it is
/// the runtime's own `URL` (what `fetch` parses with, and no code in the wasm); natively a
/// Rust implementation of the same standard.
pub trait UrlParser {
    /// `input` parsed, against `base` when given (as a redirect's `Location` is); `None` when
    /// the standard calls it a failure.
    fn parse(&self, input: &str, base: Option<&str>) -> Option<ParsedUrl>;
}

/// Longest URL accepted, in characters. The contract's limit for `issuerURL` and `jwksURI`; real
/// issuer URLs are under 100 (GitHub's is 43), so 600 leaves room for long tenant paths.
pub const MAX_URL_CHARS: usize = 600;

/// Why a URL was refused. Each message completes "… must be an absolute https:// URL: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("it is empty")]
    Empty,
    #[error("it has {chars} characters, more than {MAX_URL_CHARS}")]
    TooLong { chars: usize },
    #[error("it contains whitespace or control characters")]
    Whitespace,
    /// The URL Standard cannot parse it (so `fetch` could not either).
    #[error("it is not a URL that fetch can parse (the WHATWG URL Standard), e.g. a port that is not a number from 0 to 65535")]
    NotAUrl,
    #[error("it does not start with https://")]
    NotHttps,
    #[error(
        "http:// is allowed only for 127.0.0.1, localhost or [::1] with ALLOW_HTTP_LOOPBACK=true"
    )]
    HttpNotLoopback,
    #[error("it has no host")]
    NoHost,
    #[error("it contains user info (user@host)")]
    UserInfo,
    #[error("it has a query (?) or fragment (#)")]
    QueryOrFragment,
    /// An IP literal in a loopback, private or link-local range.
    #[error("its host {host} is a loopback, private or link-local address, which is never fetched (only ALLOW_HTTP_LOOPBACK=true, for local development, allows it)")]
    InternalAddress { host: String },
}

/// Checks `raw` and returns its serialisation by the URL Standard. An `https://host` without
/// a path keeps having none (the standard's serialisation adds a `/`), so an issuer such as
/// `https://token.actions.githubusercontent.com` still equals the `iss` its tokens carry.
pub fn normalize_url(
    raw: &str,
    allow_http_loopback: bool,
    urls: &dyn UrlParser,
) -> Result<String, UrlError> {
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
    let parsed = urls.parse(raw, None).ok_or(UrlError::NotAUrl)?;
    let mut href = check_fetchable(&parsed, allow_http_loopback)?;
    if href.contains(['?', '#']) {
        return Err(UrlError::QueryOrFragment);
    }
    if parsed.pathname == "/" && !raw.ends_with('/') {
        href.pop();
    }
    let chars = href.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(UrlError::TooLong { chars });
    }
    Ok(href)
}

/// The rules every fetched URL must meet, redirects included (which, unlike a configured URL,
/// may carry a query: a CDN's signed URL); the URL's serialisation if so.
pub fn check_fetchable(url: &ParsedUrl, allow_http_loopback: bool) -> Result<String, UrlError> {
    match url.protocol.as_str() {
        "https:" => {}
        "http:" if allow_http_loopback && is_loopback(&url.hostname) => {}
        "http:" => return Err(UrlError::HttpNotLoopback),
        _ => return Err(UrlError::NotHttps),
    }
    if url.hostname.is_empty() {
        return Err(UrlError::NoHost);
    }
    if !url.username.is_empty() || !url.password.is_empty() {
        return Err(UrlError::UserInfo);
    }
    if !allow_http_loopback && is_internal_ip(&url.hostname) {
        return Err(UrlError::InternalAddress {
            host: url.hostname.clone(),
        });
    }
    Ok(url.href.clone())
}

/// Whether `host` (as the URL Standard serialises it) names this machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || ipv4(host).is_some_and(|ip| ip.is_loopback())
        || ipv6(host).is_some_and(|ip| ip.is_loopback())
}

/// Whether `host` is an IP literal that must not be fetched: loopback, private, link-local,
/// shared (carrier-grade NAT), unspecified, multicast or reserved, or an IPv6 form of one.
fn is_internal_ip(host: &str) -> bool {
    if let Some(ip) = ipv4(host) {
        return internal_v4(ip);
    }
    let Some(ip) = ipv6(host) else {
        return false;
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xff00) == 0xff00 // multicast
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && {
            let [.., a, b, c, d] = ip.octets();
            internal_v4(Ipv4Addr::new(a, b, c, d))
        })
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0 // "this network"
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_loopback() // 127/8
        || ip.is_link_local() // 169.254/16: cloud metadata services
        || (a == 100 && (b & 0xc0) == 64) // shared address space, 100.64/10
        || a >= 224 // multicast, reserved, broadcast
}

/// The URL Standard serialises an IPv4 host in dotted decimal, whatever form it was given in.
fn ipv4(host: &str) -> Option<Ipv4Addr> {
    host.parse().ok()
}

fn ipv6(host: &str) -> Option<Ipv6Addr> {
    host.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Splits an absolute URL as the runtime hands it over (used by the platform layer) (`scheme://authority/path?query`) into
/// origin, path and query. `None` when it is not of that form.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn split_request_url(url: &str) -> Option<(&str, &str, Option<&str>)> {
    // A byte search: a `&str` pattern would bring the two-way searcher (≈ 3 KB of wasm) onto
    // every cold isolate's first request for these three bytes.
    let authority_start = url
        .as_bytes()
        .windows(3)
        .position(|bytes| bytes == b"://")?
        + 3;
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

/// Resolves a redirect's `Location` against the URL that answered with it, by the URL Standard
/// (as `fetch` would), and checks the result like any fetched URL.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn resolve_redirect(
    base: &str,
    location: &str,
    allow_http_loopback: bool,
    urls: &dyn UrlParser,
) -> Result<String, String> {
    let next = urls
        .parse(location, Some(base))
        .ok_or_else(|| format!("a redirect to an invalid URL {location:?}"))?;
    check_fetchable(&next, allow_http_loopback)
        .map_err(|problem| format!("a redirect to {} is refused: {problem}", next.href))
}

#[cfg(test)]
mod tests;

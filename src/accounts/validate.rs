//! The rules an account's fields must follow (the contract's account table), checked and normalised
//! once, when an account is written: unknown and read-only fields refused, URLs in the WHATWG
//! serialisation `fetch` uses, globs compiled, inline key sets parsed. The token path only reads
//! what passed. No I/O here.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::*;
use crate::config::settings::Settings;
use crate::jose::keys::{key_set_of, MAX_KEYS};
use crate::text::charset::is_format;
use crate::text::glob::Glob;
use crate::text::url::{normalize_url, UrlParser};

/// Checks that `body` names only editable fields: unknown and read-only fields are refused.
pub fn check_field_names(body: &Map<String, Value>) -> Result<(), FieldError> {
    for name in body.keys() {
        if READ_ONLY_FIELDS.contains(&name.as_str()) {
            return Err(FieldError::new(
                name,
                format!("{name} is read-only: the server sets it"),
            ));
        }
        if !EDITABLE_FIELDS.contains(&name.as_str()) {
            return Err(FieldError::new(
                name,
                format!(
                    "unknown field {name:?}; the fields are: {}",
                    EDITABLE_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a whole account body (a POST, or a PATCH merged onto the stored account) and returns
/// it normalised. `null` counts as absent. Field names must already have passed
/// [`check_field_names`].
pub fn validate(
    body: &Map<String, Value>,
    settings: &Settings,
    urls: &dyn UrlParser,
) -> Result<AccountFields, FieldError> {
    let get = |name: &str| body.get(name).filter(|value| !value.is_null());

    let name = required_string(get("name"), "name")?;
    check_text(name, "name", MAX_NAME_CHARS)?;
    if name.trim().is_empty() {
        return Err(FieldError::new("name", "name must not be blank"));
    }

    let authentication_type = match get("authenticationType") {
        None => AUTHENTICATION_TYPE,
        Some(Value::String(kind)) if kind == AUTHENTICATION_TYPE => AUTHENTICATION_TYPE,
        Some(_) => {
            return Err(FieldError::new(
                "authenticationType",
                format!("authenticationType must be {AUTHENTICATION_TYPE:?} (Workload Identity Federation), the only type edge-sts supports"),
            ))
        }
    };

    let scopes = validate_scopes(get("scopes"), settings)?;

    let issuer_url = validate_url(get("issuerURL"), "issuerURL", settings, urls)?
        .ok_or_else(|| FieldError::new("issuerURL", "issuerURL is required"))?;
    let jwks_uri = validate_url(get("jwksURI"), "jwksURI", settings, urls)?;
    let jwks = match get("jwks") {
        None => None,
        Some(_) if jwks_uri.is_some() => {
            return Err(FieldError::new(
                "jwks",
                "give at most one of jwksURI (fetched) and jwks (inline), not both",
            ))
        }
        Some(jwks) => Some(validate_inline_jwks(jwks)?),
    };

    let subject = match (get("subject"), get("subjectPattern")) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "subjectPattern",
                "give exactly one of subject and subjectPattern, not both",
            ))
        }
        (None, None) => {
            return Err(FieldError::new(
                "subject",
                "subject (an exact subject) or subjectPattern (a glob) is required",
            ))
        }
        (Some(subject), None) => {
            let subject = required_string(Some(subject), "subject")?;
            check_match_text(subject, "subject")?;
            SubjectRule::Exact(subject.to_owned())
        }
        (None, Some(pattern)) => {
            let pattern = required_string(Some(pattern), "subjectPattern")?;
            check_match_text(pattern, "subjectPattern")?;
            check_pattern_prefix(pattern)?;
            SubjectRule::Pattern(Glob::new(pattern))
        }
    };

    let audience = required_string(get("audience"), "audience")?;
    check_match_text(audience, "audience")?;

    let claims = validate_claims(get("claims"))?;

    let owner = match get("owner") {
        None => None,
        Some(owner) => {
            let owner = required_string(Some(owner), "owner")?;
            check_text(owner, "owner", MAX_OWNER_CHARS)?;
            Some(owner.to_owned())
        }
    };

    let applications = validate_applications(get("applications"))?;

    let enabled = match get("enabled") {
        None => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => return Err(FieldError::new("enabled", "enabled must be true or false")),
    };

    Ok(AccountFields {
        name: name.to_owned(),
        authentication_type: authentication_type.to_owned(),
        scopes,
        issuer_url,
        jwks_uri,
        jwks,
        subject,
        audience: audience.to_owned(),
        claims,
        owner,
        applications,
        enabled,
    })
}

/// Members of a JWK that hold private key material: an inline key set publishes none.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// An inline JWK Set: an object with `keys`, at most [`MAX_KEYS`] public keys, each one a key
/// edge-sts can verify with, at most [`MAX_INLINE_JWKS_BYTES`] in all.
fn validate_inline_jwks(jwks: &Value) -> Result<Value, FieldError> {
    let invalid = |message: String| FieldError::new("jwks", message);
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|_| jwks.is_object())
        .ok_or_else(|| invalid("jwks must be a JWK Set: {\"keys\": [public JWKs]}".into()))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(invalid(format!(
            "jwks must hold 1 to {MAX_KEYS} keys; it has {}",
            keys.len()
        )));
    }
    let size = jwks.to_string().len();
    if size > MAX_INLINE_JWKS_BYTES {
        return Err(invalid(format!(
            "jwks is {size} bytes; at most {MAX_INLINE_JWKS_BYTES} are allowed"
        )));
    }
    for (index, key) in keys.iter().enumerate() {
        if let Some(member) = PRIVATE_JWK_MEMBERS
            .iter()
            .find(|member| key.get(**member).is_some())
        {
            return Err(invalid(format!(
                "jwks key {index} has the private member {member:?}: publish only public keys (and make a new key pair, since this one is no longer private)"
            )));
        }
        if key_set_of(&serde_json::json!({ "keys": [key] })).is_err() {
            return Err(invalid(format!(
                "jwks key {index} is not a public key edge-sts can verify with (RSA, EC P-256/P-384/P-521 or Ed25519, with its members in base64url)"
            )));
        }
    }
    Ok(jwks.clone())
}

/// A `subjectPattern` must pin down whose subjects it matches: a literal prefix of at least
/// [`MIN_PATTERN_PREFIX_CHARS`] characters with a `:` or `/` in it, before the first wildcard.
/// `repo:acme/*` passes; `*:*` (every GitHub repository in the world), `r*`, `*/*` and `*o*`
/// do not.
fn check_pattern_prefix(pattern: &str) -> Result<(), FieldError> {
    let prefix = Glob::new(pattern).literal_prefix();
    if prefix.chars().count() >= MIN_PATTERN_PREFIX_CHARS && prefix.contains([':', '/']) {
        return Ok(());
    }
    Err(FieldError::new(
        "subjectPattern",
        format!(
            "subjectPattern {pattern:?} is too broad: it must begin with at least {MIN_PATTERN_PREFIX_CHARS} literal characters including a ':' or '/' before the first * or ?, such as repo:my-org/* or system:serviceaccount:my-namespace:*"
        ),
    ))
}

fn required_string<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a str, FieldError> {
    match value {
        None => Err(FieldError::new(field, format!("{field} is required"))),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(FieldError::new(field, format!("{field} must be a string"))),
    }
}

/// Length in characters, and no control or format characters (a right-to-left override or a
/// zero-width space would make the text show as something else in the console).
fn check_text(text: &str, field: &str, max_chars: usize) -> Result<(), FieldError> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(FieldError::new(
            field,
            format!("{field} has {chars} characters; at most {max_chars} are allowed"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if let Some(c) = text.chars().find(|&c| is_format(c)) {
        return Err(FieldError::new(
            field,
            format!(
                "{field} must not contain invisible format characters such as U+{:04X} (bidirectional overrides, zero-width spaces), which make it show as another text",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// A value compared with a token's claim: non-empty, bounded, no control characters.
fn check_match_text(text: &str, field: &str) -> Result<(), FieldError> {
    if text.is_empty() {
        return Err(FieldError::new(field, format!("{field} must not be empty")));
    }
    check_text(text, field, MAX_MATCH_CHARS)
}

fn validate_scopes(value: Option<&Value>, settings: &Settings) -> Result<Vec<String>, FieldError> {
    let items = match value {
        None => return Err(FieldError::new("scopes", "scopes is required")),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FieldError::new(
                "scopes",
                "scopes must be an array of scope names",
            ))
        }
    };
    if items.is_empty() {
        return Err(FieldError::new(
            "scopes",
            "scopes must name at least one scope",
        ));
    }
    let mut scopes: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let scope = item
            .as_str()
            .ok_or_else(|| FieldError::new("scopes", "scopes must be an array of strings"))?;
        if !settings.scopes.iter().any(|known| known == scope) {
            return Err(FieldError::new(
                "scopes",
                format!(
                    "scope {scope:?} is not in the catalogue; the scopes are: {}",
                    settings.scopes.join(", ")
                ),
            ));
        }
        if scopes.iter().any(|seen| seen == scope) {
            return Err(FieldError::new(
                "scopes",
                format!("scope {scope:?} is listed twice"),
            ));
        }
        scopes.push(scope.to_owned());
    }
    Ok(scopes)
}

fn validate_url(
    value: Option<&Value>,
    field: &str,
    settings: &Settings,
    urls: &dyn UrlParser,
) -> Result<Option<String>, FieldError> {
    let Some(value) = value else { return Ok(None) };
    let raw = required_string(Some(value), field)?;
    normalize_url(raw, settings.allow_http_loopback, urls)
        .map(Some)
        .map_err(|problem| {
            FieldError::new(
                field,
                format!("{field} must be an absolute https:// URL: {problem}"),
            )
        })
}

fn validate_claims(value: Option<&Value>) -> Result<BTreeMap<String, Glob>, FieldError> {
    let entries = match value {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(FieldError::new(
                "claims",
                "claims must be an object of {\"claim name\": \"glob\"}",
            ))
        }
    };
    if entries.len() > MAX_CLAIMS {
        return Err(FieldError::new(
            "claims",
            format!(
                "claims has {} entries; at most {MAX_CLAIMS} are allowed",
                entries.len()
            ),
        ));
    }
    let mut claims = BTreeMap::new();
    for (name, pattern) in entries {
        if name.is_empty()
            || name.chars().count() > MAX_CLAIM_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(FieldError::new(
                "claims",
                format!("claim names must be 1 to {MAX_CLAIM_NAME_CHARS} characters without control characters"),
            ));
        }
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(FieldError::new(
                "claims",
                format!("claim {name:?} has its own rule (issuerURL, subject, audience or the time checks) and cannot be matched in claims"),
            ));
        }
        let Value::String(pattern) = pattern else {
            return Err(FieldError::new(
                "claims",
                format!("claims.{name} must be a string glob (use \"true\" or \"42\" to match a boolean or a number)"),
            ));
        };
        if pattern.chars().count() > MAX_MATCH_CHARS || pattern.chars().any(char::is_control) {
            return Err(FieldError::new(
                "claims",
                format!("claims.{name} must be at most {MAX_MATCH_CHARS} characters without control characters"),
            ));
        }
        claims.insert(name.clone(), Glob::new(pattern));
    }
    Ok(claims)
}

fn validate_applications(value: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FieldError::new(
                "applications",
                "applications must be an array of strings",
            ))
        }
    };
    if items.len() > MAX_APPLICATIONS {
        return Err(FieldError::new(
            "applications",
            format!(
                "applications has {} entries; at most {MAX_APPLICATIONS} are allowed",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .map(|item| {
            let text = item.as_str().ok_or_else(|| {
                FieldError::new("applications", "applications must be an array of strings")
            })?;
            check_text(text, "applications", MAX_APPLICATION_CHARS)?;
            Ok(text.to_owned())
        })
        .collect()
}

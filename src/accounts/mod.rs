//! Service accounts: what one is, and the rules its fields must follow.
//!
//! Admin input is checked and normalised here once, when it is written ([`validate`]); the
//! stored [`Account`] is already in its canonical form, so the token path only reads it.
//! Field names follow Venafi's `/v1/serviceaccounts` API. No I/O here; storage is in [`store`].

pub mod cache;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::glob::Glob;
use crate::ports::UrlParser;
use crate::settings::Settings;
use crate::text::is_format;
use crate::token::keys::{parse_key_set, MAX_KEYS};
use crate::url::normalize_url;

/// The only `authenticationType`: Workload Identity Federation.
pub const AUTHENTICATION_TYPE: &str = "rsaKeyFederated";

/// Longest `name`, in characters (SPEC.md).
pub const MAX_NAME_CHARS: usize = 128;

/// Longest `subject`, `subjectPattern`, `audience` and claim pattern, in characters (SPEC.md;
/// a GitHub Actions subject with an environment is about 80).
pub const MAX_MATCH_CHARS: usize = 600;

/// Shortest literal prefix of a `subjectPattern`, in characters (SPEC.md): `repo:ab/` is the
/// shortest GitHub prefix that names an owner, `system:` alone names no one.
pub const MIN_PATTERN_PREFIX_CHARS: usize = 8;

/// Largest inline `jwks`, in bytes (SPEC.md): 100 RSA-4096 keys without certificates.
pub const MAX_INLINE_JWKS_BYTES: usize = 64 * 1024;

/// Most entries in `claims` (SPEC.md).
pub const MAX_CLAIMS: usize = 20;

/// Longest claim name, in characters. Real claim names are short (`repository_owner`).
pub const MAX_CLAIM_NAME_CHARS: usize = 128;

/// Longest `owner`, in characters: free text, kept bounded.
pub const MAX_OWNER_CHARS: usize = 1024;

/// Most `applications`, and longest one, in characters: free data, kept bounded.
pub const MAX_APPLICATIONS: usize = 100;
pub const MAX_APPLICATION_CHARS: usize = 256;

/// Claims that have their own rule (or are checked by the pipeline itself) and so may not be
/// named in `claims`, where a second, weaker rule for them would only confuse.
pub const RESERVED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Fields an administrator may set.
pub const EDITABLE_FIELDS: &[&str] = &[
    "name",
    "authenticationType",
    "scopes",
    "issuerURL",
    "jwksURI",
    "jwks",
    "subject",
    "subjectPattern",
    "audience",
    "claims",
    "owner",
    "applications",
    "enabled",
];

/// Fields only the server sets.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "companyId", "createdAt", "updatedAt"];

/// A stored service account, exactly as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    #[serde(flatten)]
    pub fields: AccountFields,
    pub created_at: String,
    pub updated_at: String,
}

/// Everything an administrator sets, checked and normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountFields {
    pub name: String,
    pub authentication_type: String,
    pub scopes: Vec<String>,
    #[serde(rename = "issuerURL")]
    pub issuer_url: String,
    #[serde(rename = "jwksURI", default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// An inline JWK Set of public keys, for an issuer the internet cannot reach (a private
    /// cluster): used as it is, never fetched. Exclusive with `jwks_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(flatten)]
    pub subject: SubjectRule,
    pub audience: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    pub enabled: bool,
}

/// Which tokens' `sub` the account accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectRule {
    /// Exactly this subject, case-sensitively.
    #[serde(rename = "subject")]
    Exact(String),
    /// Any subject matching this glob.
    #[serde(rename = "subjectPattern")]
    Pattern(String),
}

impl SubjectRule {
    /// Whether `subject` satisfies the rule.
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == subject,
            Self::Pattern(pattern) => Glob::new(pattern).matches(subject),
        }
    }
}

/// A rejected field: which one (`None` when the body as a whole is wrong) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// An error about the body as a whole.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }
}

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
            SubjectRule::Pattern(pattern.to_owned())
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
        let single = serde_json::json!({ "keys": [key] }).to_string();
        if parse_key_set(single.as_bytes()).is_err() {
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

fn validate_claims(value: Option<&Value>) -> Result<BTreeMap<String, String>, FieldError> {
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
        claims.insert(name.clone(), pattern.clone());
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

/// Whether `id` has the form of an account id (a lower-case UUID).
pub fn is_account_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, byte)| match i {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
        })
}

/// RFC 7396 JSON merge patch of `patch` onto `target`: `null` removes, objects merge member
/// by member, anything else replaces.
pub fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (name, value) in patch {
        match value {
            Value::Null => {
                target.remove(name);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(slot) = slot {
                    merge_patch(slot, inner);
                }
            }
            other => {
                target.insert(name.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;

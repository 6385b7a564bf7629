//! Service accounts: what one is. Field names follow Venafi's `/v1/serviceaccounts` API.
//!
//! Admin input is checked and normalised once, when it is written ([`validate`]); the stored
//! [`Account`] is already in its canonical form and its globs are compiled when it is read, so
//! the token path only reads it. No I/O here; the KV read model is [`store`] and [`cache`].

pub(crate) mod cache;
pub(crate) mod store;
mod stored;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::text::glob::Glob;

pub(crate) use validate::{check_field_names, validate};

/// The only `authenticationType`: Workload Identity Federation.
pub const AUTHENTICATION_TYPE: &str = "rsaKeyFederated";

/// Longest `name`, in characters (the contract).
pub const MAX_NAME_CHARS: usize = 128;

/// Longest `subject`, `subjectPattern`, `audience` and claim pattern, in characters (the contract;
/// a GitHub Actions subject with an environment is about 80).
pub const MAX_MATCH_CHARS: usize = 600;

/// Shortest literal prefix of a `subjectPattern`, in characters (the contract): `repo:ab/` is the
/// shortest GitHub prefix that names an owner, `system:` alone names no one.
pub const MIN_PATTERN_PREFIX_CHARS: usize = 8;

/// Largest inline `jwks`, in bytes (the contract): 100 RSA-4096 keys without certificates.
pub const MAX_INLINE_JWKS_BYTES: usize = 64 * 1024;

/// Most entries in `claims` (the contract).
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

/// A stored service account, exactly as the admin API shows it. Read by [`stored`]'s reader,
/// member by member (see there why).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    #[serde(flatten)]
    pub fields: AccountFields,
    pub created_at: String,
    pub updated_at: String,
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        stored::deserialize(deserializer)
    }
}

/// Everything an administrator sets, checked and normalised.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Claim name (a dotted path) → compiled glob.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Glob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    pub enabled: bool,
}

/// Which tokens' `sub` the account accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SubjectRule {
    /// Exactly this subject, case-sensitively.
    #[serde(rename = "subject")]
    Exact(String),
    /// Any subject matching this glob, compiled once when the account is read.
    #[serde(rename = "subjectPattern")]
    Pattern(Glob),
}

impl SubjectRule {
    /// Whether `subject` satisfies the rule.
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == subject,
            Self::Pattern(pattern) => pattern.matches(subject),
        }
    }

    /// Whether this is exactly `subject` (not a pattern that happens to match it).
    pub fn is_exactly(&self, subject: &str) -> bool {
        matches!(self, Self::Exact(exact) if exact == subject)
    }

    /// The member's name and its text, as the API shows them.
    pub fn field(&self) -> (&'static str, &str) {
        match self {
            Self::Exact(subject) => ("subject", subject),
            Self::Pattern(pattern) => ("subjectPattern", pattern.as_str()),
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
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

/// Whether `id` has the form of an account id (a lower-case UUID).
pub fn is_account_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, byte)| match i {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
        })
}

/// A version 4 UUID made of 16 random bytes, lower-case: the id of a new account.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub fn account_id_from(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
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

//! An account record (and an issuer index's entry) read from storage (KV, the registry's
//! SQLite): every member side by side, then assembled into an [`Account`] ([`IndexEntry`]).
//!
//! `Account` nests its fields (`#[serde(flatten)]`, twice, the subject rule being an enum; an
//! entry flattens the subject rule too). A
//! derived reader of that shape first buffers the whole record into serde's generic content
//! tree and then reads it again, once per level, and every exchange reads its account's record
//! (the isolate caches the text, not the parsed account). Written out flat it is one pass.
//!
//! It is stricter than the derived reader on what only a hand edit of KV could make: a record
//! with both `subject` and `subjectPattern`, or with a member twice, is refused where the
//! derived reader took the first it met. Such a record reads as corrupt: an exchange that finds
//! it answers 500, and the registry's one-time import skips it and logs it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::store::IndexEntry;
use super::{Account, AccountFields, SubjectRule};
use crate::text::glob::Glob;

/// The stored form, member by member; unknown members (`companyId`) are ignored as before.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredAccount {
    id: String,
    name: String,
    authentication_type: String,
    scopes: Vec<String>,
    #[serde(rename = "issuerURL")]
    issuer_url: String,
    #[serde(rename = "jwksURI", default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_pattern: Option<Glob>,
    audience: String,
    #[serde(default)]
    claims: BTreeMap<String, Glob>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    applications: Vec<String>,
    enabled: bool,
    created_at: String,
    updated_at: String,
}

impl TryFrom<StoredAccount> for Account {
    type Error = &'static str;

    fn try_from(stored: StoredAccount) -> Result<Self, Self::Error> {
        let subject = SubjectRule::from_members(stored.subject, stored.subject_pattern)?;
        Ok(Self {
            id: stored.id,
            fields: AccountFields {
                name: stored.name,
                authentication_type: stored.authentication_type,
                scopes: stored.scopes,
                issuer_url: stored.issuer_url,
                jwks_uri: stored.jwks_uri,
                jwks: stored.jwks,
                subject,
                audience: stored.audience,
                claims: stored.claims,
                owner: stored.owner,
                applications: stored.applications,
                enabled: stored.enabled,
            },
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }
}

/// An index entry as stored: `{id, subject | subjectPattern, jwksURI?, jwks?: true}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredEntry {
    id: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_pattern: Option<Glob>,
    #[serde(rename = "jwksURI", default)]
    jwks_uri: Option<String>,
    #[serde(rename = "jwks", default)]
    inline_jwks: bool,
}

impl TryFrom<StoredEntry> for IndexEntry {
    type Error = &'static str;

    fn try_from(stored: StoredEntry) -> Result<Self, Self::Error> {
        Ok(Self {
            id: stored.id,
            subject: SubjectRule::from_members(stored.subject, stored.subject_pattern)?,
            jwks_uri: stored.jwks_uri,
            inline_jwks: stored.inline_jwks,
        })
    }
}

impl SubjectRule {
    /// The rule of a stored `subject` or `subjectPattern` member: exactly one of them.
    fn from_members(subject: Option<String>, pattern: Option<Glob>) -> Result<Self, &'static str> {
        match (subject, pattern) {
            (Some(exact), None) => Ok(Self::Exact(exact)),
            (None, Some(pattern)) => Ok(Self::Pattern(pattern)),
            (Some(_), Some(_)) => Err("the record has both subject and subjectPattern"),
            (None, None) => Err("the record has neither subject nor subjectPattern"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> Value {
        json!({
            "id": "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60",
            "companyId": "ignored",
            "name": "ci",
            "authenticationType": "rsaKeyFederated",
            "scopes": ["certificate-issuance"],
            "issuerURL": "https://token.actions.githubusercontent.com",
            "subjectPattern": "repo:acme/*",
            "audience": "https://sts.example.com",
            "claims": { "repository_owner": "acme" },
            "enabled": true,
            "createdAt": "2026-11-23T12:00:00.000Z",
            "updatedAt": "2026-11-23T12:00:00.000Z",
        })
    }

    /// Read flat, written back nested: the same JSON, member for member.
    #[test]
    fn a_record_reads_and_writes_back_the_same() {
        let account: Account = serde_json::from_value(record()).unwrap();
        assert!(
            matches!(&account.fields.subject, SubjectRule::Pattern(glob) if glob.as_str() == "repo:acme/*")
        );
        let mut expected = record();
        expected.as_object_mut().unwrap().remove("companyId");
        assert_eq!(serde_json::to_value(&account).unwrap(), expected);
    }

    /// An index entry reads as it is written, with or without its `jwksURI`.
    #[test]
    fn an_index_entry_reads_and_writes_back_the_same() {
        for entry in [
            json!({ "id": "a", "subject": "repo:acme/app:ref:refs/heads/main" }),
            json!({ "id": "b", "subjectPattern": "repo:acme/*", "jwksURI": "https://idp.test/jwks" }),
            json!({ "id": "c", "subject": "system:serviceaccount:ci:deployer", "jwks": true }),
        ] {
            let read: IndexEntry = serde_json::from_value(entry.clone()).unwrap();
            assert_eq!(serde_json::to_value(&read).unwrap(), entry);
        }
        let both = json!({ "id": "c", "subject": "s", "subjectPattern": "repo:acme/*" });
        assert!(serde_json::from_value::<IndexEntry>(both).is_err());
    }

    /// A record must say whose tokens it takes, one way.
    #[test]
    fn a_record_has_exactly_one_subject_rule() {
        let mut both = record();
        both["subject"] = json!("repo:acme/app:ref:refs/heads/main");
        let error = serde_json::from_value::<Account>(both)
            .unwrap_err()
            .to_string();
        assert!(error.contains("both subject and subjectPattern"), "{error}");
        let mut neither = record();
        neither.as_object_mut().unwrap().remove("subjectPattern");
        let error = serde_json::from_value::<Account>(neither)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("neither subject nor subjectPattern"),
            "{error}"
        );
    }
}

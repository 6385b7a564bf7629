//! An account record (and an issuer's index) read from storage (KV, the registry's SQLite):
//! parsed by the strict JSON reader (a member twice, or nesting past 32, is refused), then
//! taken member by member ([`Members`]) into an [`Account`]; the issuer index's types
//! (`store.rs`) are read with the same pieces.
//!
//! One reader for every way a record arrives: [`read`] for stored text (the token path), and the
//! types' `Deserialize` (a registry answer, read with `serde_json::from_str`) through
//! [`deserialize`]. A reader
//! derived by serde would be one more large function per type that a cold isolate's first
//! exchange compiles; this one reuses the JSON reader the token's own header and claims went
//! through, and the members are taken by a few small functions.
//!
//! It is stricter than serde's derived reader on what only a hand edit of KV could make: a
//! record with both `subject` and `subjectPattern`, or with a member twice, is refused. Such a
//! record reads as corrupt: an exchange that finds it answers 500, and the registry's one-time
//! import skips it and logs it. Unknown members (`companyId`) are ignored; an optional string
//! or `jwks` may also be `null`, as before (`claims`, `applications` and an index entry's `jwks`
//! may be absent, not `null`).

use std::collections::BTreeMap;

use serde::de::{Deserializer, Error as _};
use serde_json::{Map, Value};

use super::{Account, AccountFields, SubjectRule};
use crate::text::glob::Glob;
use crate::text::json::{parse_strict, strict_value, MAX_DEPTH};

/// Deepest nesting of a stored record: as of the request body it was written from.
const MAX_RECORD_DEPTH: usize = MAX_DEPTH;

/// A stored record's text, read.
pub(super) fn read<T: TryFrom<Value, Error = String>>(text: &str) -> Result<T, String> {
    let value =
        parse_strict(text.as_bytes(), MAX_RECORD_DEPTH).map_err(|error| error.to_string())?;
    T::try_from(value)
}

/// A record from any serde deserializer, by the same reader.
pub(super) fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Value, Error = String>>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::try_from(strict_value(deserializer, MAX_RECORD_DEPTH)?).map_err(D::Error::custom)
}

impl TryFrom<Value> for Account {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        let mut record = Members::of(value, "the account record")?;
        let subject = record.subject_rule()?;
        Ok(Self {
            id: record.string("id")?,
            fields: AccountFields {
                name: record.string("name")?,
                authentication_type: record.string("authenticationType")?,
                scopes: record.strings("scopes")?.ok_or_else(|| missing("scopes"))?,
                issuer_url: record.string("issuerURL")?,
                jwks_uri: record.optional_string("jwksURI")?,
                jwks: record.optional("jwks"),
                subject,
                audience: record.string("audience")?,
                claims: record.claims()?,
                owner: record.optional_string("owner")?,
                applications: record.strings("applications")?.unwrap_or_default(),
                enabled: record
                    .boolean("enabled")?
                    .ok_or_else(|| missing("enabled"))?,
            },
            created_at: record.string("createdAt")?,
            updated_at: record.string("updatedAt")?,
        })
    }
}

impl SubjectRule {
    /// The rule of a stored `subject` or `subjectPattern` member: exactly one of them.
    fn from_members(subject: Option<String>, pattern: Option<String>) -> Result<Self, String> {
        match (subject, pattern) {
            (Some(exact), None) => Ok(Self::Exact(exact)),
            (None, Some(pattern)) => Ok(Self::Pattern(Glob::new(&pattern))),
            (Some(_), Some(_)) => Err("the record has both subject and subjectPattern".into()),
            (None, None) => Err("the record has neither subject nor subjectPattern".into()),
        }
    }
}

/// A record's members, taken one at a time; what is never taken is ignored.
pub(super) struct Members(Map<String, Value>);

impl Members {
    pub(super) fn of(value: Value, what: &str) -> Result<Self, String> {
        match value {
            Value::Object(members) => Ok(Self(members)),
            _ => Err(format!("{what} is not a JSON object")),
        }
    }

    /// The member `name`, moved out (a `null` left in its place). Each member is taken once.
    /// Not `remove`: the map's removal is a large function of its own, which every new
    /// isolate's first exchange would compile for this alone. Not inlined: the map's search
    /// is then compiled once, not in each reader of a member.
    #[inline(never)]
    pub(super) fn take(&mut self, name: &str) -> Option<Value> {
        self.0.get_mut(name).map(Value::take)
    }

    /// A member that may be absent or `null`.
    pub(super) fn optional(&mut self, name: &str) -> Option<Value> {
        self.take(name).filter(|value| !value.is_null())
    }

    /// The subject rule: a `subject` or a `subjectPattern`, exactly one of them.
    pub(super) fn subject_rule(&mut self) -> Result<SubjectRule, String> {
        let subject = self.optional_string("subject")?;
        SubjectRule::from_members(subject, self.optional_string("subjectPattern")?)
    }

    pub(super) fn optional_string(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(wrong(name, "a string")),
        }
    }

    pub(super) fn string(&mut self, name: &str) -> Result<String, String> {
        self.optional_string(name)?.ok_or_else(|| missing(name))
    }

    /// A boolean member; absent is `None` (`null` is no boolean).
    pub(super) fn boolean(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(value)),
            Some(_) => Err(wrong(name, "true or false")),
        }
    }

    /// An array of strings; absent is `None` (`null` is no array).
    pub(super) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(wrong(name, "an array of strings")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(wrong(name, "an array of strings")),
        }
    }

    /// `claims`: claim name → glob; absent is none.
    pub(super) fn claims(&mut self) -> Result<BTreeMap<String, Glob>, String> {
        match self.take("claims") {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(rules)) => claim_rules(rules),
            Some(_) => Err(wrong("claims", "an object of strings")),
        }
    }
}

/// Apart, so that V8 compiles it only for an account that has claim rules.
#[inline(never)]
fn claim_rules(rules: Map<String, Value>) -> Result<BTreeMap<String, Glob>, String> {
    let mut globs = BTreeMap::new();
    for (name, pattern) in rules {
        let Value::String(pattern) = pattern else {
            return Err(wrong("claims", "an object of strings"));
        };
        globs.insert(name, Glob::new(&pattern));
    }
    Ok(globs)
}

pub(super) fn missing(name: &str) -> String {
    format!("the record has no {name}")
}

pub(super) fn wrong(name: &str, wanted: &str) -> String {
    format!("the record's {name} is not {wanted}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::accounts::store::{IndexEntry, IssuerIndex};

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
    }

    #[test]
    fn an_index_entry_with_both_a_subject_and_a_pattern_is_refused() {
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

    /// Written twice, a member could be read two ways: the record is refused, by both ways in.
    #[test]
    fn a_member_twice_is_refused() {
        let text = record().to_string();
        let twice = text.replacen(r#""enabled":true"#, r#""enabled":false,"enabled":true"#, 1);
        assert_ne!(twice, text);
        let error = read::<Account>(&twice).unwrap_err();
        assert!(
            error.contains("enabled") && error.contains("more than once"),
            "{error}"
        );
        let error = serde_json::from_str::<Account>(&twice)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("enabled") && error.contains("more than once"),
            "{error}"
        );
        assert!(read::<Account>(&text).is_ok());
    }

    /// An optional string or `jwks` may be `null`, read as absent.
    #[test]
    fn optional_members_may_be_null() {
        let mut nulls = record();
        for name in ["jwksURI", "jwks", "subject", "owner"] {
            nulls[name] = Value::Null;
        }
        let account: Account = serde_json::from_value(nulls).unwrap();
        assert_eq!(
            (
                account.fields.jwks_uri,
                account.fields.jwks,
                account.fields.owner
            ),
            (None, None, None)
        );
    }

    /// A member that must be there, or one of the wrong type, is named in the refusal.
    #[test]
    fn a_missing_or_mistyped_member_is_named() {
        for (name, value, wanted) in [
            ("name", Value::Null, "has no name"),
            ("enabled", json!("true"), "enabled is not true or false"),
            (
                "scopes",
                json!(["a", 1]),
                "scopes is not an array of strings",
            ),
            (
                "applications",
                Value::Null,
                "applications is not an array of strings",
            ),
            (
                "claims",
                json!({"aud": 1}),
                "claims is not an object of strings",
            ),
            ("subjectPattern", json!(7), "subjectPattern is not a string"),
        ] {
            let mut changed = record();
            changed[name] = value;
            let error = read::<Account>(&changed.to_string()).unwrap_err();
            assert!(error.contains(wanted), "{name}: {error}");
        }
        let mut without = record();
        without.as_object_mut().unwrap().remove("createdAt");
        let error = read::<Account>(&without.to_string()).unwrap_err();
        assert!(error.contains("has no createdAt"), "{error}");
    }

    #[test]
    fn a_record_that_is_not_an_object_is_refused() {
        assert!(read::<Account>("[]")
            .unwrap_err()
            .contains("not a JSON object"));
    }

    /// An issuer index as the registry writes it.
    fn issuer_index() -> Value {
        json!({
            "issuerURL": "https://token.actions.githubusercontent.com",
            "accounts": [
                { "id": "a", "subject": "repo:acme/app:ref:refs/heads/main", "jwksURI": "https://idp.test/jwks" },
                { "id": "b", "subjectPattern": "repo:acme/*", "jwks": true },
            ],
        })
    }

    /// An index reads whole or not at all: one unreadable entry makes it corrupt.
    #[test]
    fn an_issuer_index_with_one_unreadable_entry_is_corrupt() {
        let index = issuer_index();
        let read_back: IssuerIndex = read(&index.to_string()).unwrap();
        assert_eq!(read_back.accounts.len(), 2);
        assert!(read_back.accounts[1].inline_jwks);
        let mut broken = index;
        broken["accounts"][1]["jwks"] = json!("yes");
        assert!(read::<IssuerIndex>(&broken.to_string()).is_err());
    }

    #[test]
    fn an_issuer_index_whose_accounts_are_not_an_array_is_corrupt() {
        let mut broken = issuer_index();
        broken["accounts"] = json!({});
        assert!(read::<IssuerIndex>(&broken.to_string()).is_err());
    }

    /// A record nests no deeper than the request body it was written from ([`MAX_DEPTH`]);
    /// one deeper reads as corrupt.
    #[test]
    fn a_record_reads_to_the_request_bodys_depth_and_no_deeper() {
        let nested =
            |levels: usize| -> Value { (0..levels).fold(json!("deep"), |inner, _| json!([inner])) };
        let mut deepest = record();
        deepest["jwks"] = nested(MAX_DEPTH - 1);
        assert!(read::<Account>(&deepest.to_string()).is_ok());
        let mut deeper = record();
        deeper["jwks"] = nested(MAX_DEPTH);
        let error = read::<Account>(&deeper.to_string()).unwrap_err();
        assert!(error.contains("deeper"), "{error}");
    }
}

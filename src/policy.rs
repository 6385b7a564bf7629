//! An account's checks of a workload's token, as one named list: the exchange runs them in
//! order and stops at the first refusal; the admin's dry run runs every one and shows each
//! verdict. A new rule is written here once, and both see it.
//!
//! The list is in two parts, and the types keep them apart: [`BEFORE_SIGNATURE`] reads only the
//! token's unverified identity (which account's keys may verify it at all);
//! [`AFTER_SIGNATURE`] takes a [`VerifiedToken`], which exists only once the signature
//! verified, so no rule can believe a claim too early. Before the signature a refusal names
//! only the token's own values and the account's id; after it, both sides.
//! No I/O and no clock: the time and anything looked up arrive in the [`Context`].

use serde_json::{Map, Value};

use crate::accounts::Account;
use crate::jose::claims::{audiences, check_times, Identity, MAX_LIFETIME_SECONDS};
use crate::jose::reason::{reject_with, Reason, Rejection};
use crate::jose::verify::VerifiedToken;

/// What a check may know besides the account and the token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Seconds since the epoch.
    pub now: i64,
    /// `CLOCK_SKEW_SECONDS`.
    pub leeway: u64,
    /// The account for exactly the token's (`iss`, `sub`), when it is another than the one
    /// checked (a `client_id` named a pattern account): its being disabled blocks the subject.
    pub exact_account: Option<&'a Account>,
    /// Whether a check that passes says why.
    pub explain: Explain,
}

/// Whether a check that passes says why: the dry run shows it; the exchange does not, and
/// skips the formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Explain {
    Yes,
    No,
}

impl Explain {
    /// `why` when explaining, else nothing (and no formatting).
    fn say(self, why: impl FnOnce() -> String) -> String {
        match self {
            Self::Yes => why(),
            Self::No => String::new(),
        }
    }

    /// A pass, with [`Self::say`]'s explanation.
    fn pass(self, why: impl FnOnce() -> String) -> Result<String, Rejection> {
        Ok(self.say(why))
    }
}

/// A check before the signature: of the account against the token's unverified identity.
pub(crate) struct IdentityCheck {
    pub name: &'static str,
    pub run: fn(&Account, &Identity, Explain) -> Result<String, Rejection>,
}

/// A check after the signature: the token's claims are the issuer's word now.
pub(crate) struct TokenCheck {
    pub name: &'static str,
    pub run: fn(&Account, &VerifiedToken<'_>, &Identity, &Context<'_>) -> Result<String, Rejection>,
}

/// The checks that decide whose keys may verify the token.
pub(crate) const BEFORE_SIGNATURE: &[IdentityCheck] = &[IdentityCheck {
    name: "issuer",
    run: issuer,
}];

/// The account's rules of a verified token, in the contract's order.
pub(crate) const AFTER_SIGNATURE: &[TokenCheck] = &[
    TokenCheck {
        name: "time",
        run: time,
    },
    TokenCheck {
        name: "audience",
        run: audience,
    },
    TokenCheck {
        name: "subject",
        run: subject,
    },
    TokenCheck {
        name: "claims",
        run: claim_rules,
    },
    TokenCheck {
        name: "enabled",
        run: enabled,
    },
];

/// The token's `iss` must be the account's `issuerURL`. Said before the signature, so the
/// account is named by its id, not by its configured issuer.
fn issuer(account: &Account, identity: &Identity, explain: Explain) -> Result<String, Rejection> {
    let iss = &identity.iss;
    if account.fields.issuer_url == *iss {
        return explain.pass(|| format!("iss is the account's issuerURL {iss:?}"));
    }
    reject_with(Reason::IssuerMismatch, || {
        format!(
            "the token's iss {iss:?} is not the issuer of service account {}",
            account.id
        )
    })
}

/// Required claims, their types, leeway and the 2-hour lifetime limit.
fn time(
    _: &Account,
    token: &VerifiedToken<'_>,
    _: &Identity,
    context: &Context<'_>,
) -> Result<String, Rejection> {
    let times = check_times(token.claims(), context.now, context.leeway)?;
    context.explain.pass(|| {
        format!(
            "valid now; lifetime {} s (at most {MAX_LIFETIME_SECONDS})",
            times.exp - times.iat
        )
    })
}

/// The token's `aud` must contain the account's `audience` exactly.
fn audience(
    account: &Account,
    token: &VerifiedToken<'_>,
    _: &Identity,
    context: &Context<'_>,
) -> Result<String, Rejection> {
    let wanted = account.fields.audience.as_str();
    let audiences = audiences(token.claims())?;
    if audiences.contains(&wanted) {
        return context.explain.pass(|| format!("aud contains {wanted:?}"));
    }
    reject_with(Reason::AudienceMismatch, || {
        format!("aud {audiences:?} does not contain the account's audience {wanted:?}")
    })
}

/// The token's `sub` must satisfy the account's subject rule.
fn subject(
    account: &Account,
    _: &VerifiedToken<'_>,
    identity: &Identity,
    context: &Context<'_>,
) -> Result<String, Rejection> {
    let sub = &identity.sub;
    if account.fields.subject.matches(sub) {
        return context.explain.pass(|| format!("sub {sub:?} matches"));
    }
    let (field, rule) = account.fields.subject.field();
    reject_with(Reason::SubjectMismatch, || {
        format!("sub {sub:?} does not match the account's {field} {rule:?}")
    })
}

/// Each claim named in the account's `claims` must match its glob, with Vault's `bound_claims`
/// semantics: the name may be a dotted path into nested objects (`kubernetes.io.namespace`),
/// the value a string (or a boolean or number, compared by its JSON text), or an array of
/// those of which at least one matches. Says, for the dry run, what matched for each rule.
fn claim_rules(
    account: &Account,
    token: &VerifiedToken<'_>,
    _: &Identity,
    context: &Context<'_>,
) -> Result<String, Rejection> {
    if account.fields.claims.is_empty() {
        return context
            .explain
            .pass(|| "the account has no claim rules".to_owned());
    }
    match_claim_rules(account, token, context.explain)
}

/// [`claim_rules`] of an account that has some: apart, so that V8 compiles it only for such an
/// account.
#[inline(never)]
fn match_claim_rules(
    account: &Account,
    token: &VerifiedToken<'_>,
    explain: Explain,
) -> Result<String, Rejection> {
    // What matched, for the dry run only: the exchange allocates nothing for it.
    let mut matched = Vec::new();
    for (name, glob) in &account.fields.claims {
        let pattern = glob.as_str();
        let Some(value) = claim_at(token.claims(), name) else {
            return reject_with(Reason::ClaimMismatch, || {
                format!("the token has no {name} claim, which the account requires to match {pattern:?}")
            });
        };
        let found = match value {
            Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
                let text = comparable_text(item)?;
                glob.matches(&text).then(|| {
                    explain.say(|| format!("{name}[{index}] {text:?} matches {pattern:?}"))
                })
            }),
            value => match comparable_text(value) {
                Some(text) if glob.matches(&text) => {
                    Some(explain.say(|| format!("{name} {text:?} matches {pattern:?}")))
                }
                Some(text) => {
                    return reject_with(Reason::ClaimMismatch, || {
                        format!(
                        "claim {name} is {text:?}, which does not match the account's {pattern:?}"
                    )
                    })
                }
                None => {
                    return reject_with(Reason::ClaimMismatch, || {
                        format!("claim {name} is an object or null, so it cannot match {pattern:?}")
                    })
                }
            },
        };
        match found {
            Some(description) if explain == Explain::Yes => matched.push(description),
            Some(_) => {}
            None => {
                return reject_with(Reason::ClaimMismatch, || {
                    format!("no element of claim {name} matches the account's {pattern:?}")
                })
            }
        }
    }
    Ok(explain.say(|| matched.join("; ")))
}

/// A disabled account mints nothing; nor does any account for a subject whose exact account
/// (for this `iss` and `sub`) is disabled: an administrator who disabled `repo:acme/legacy`
/// meant that workload, whatever `client_id` names.
fn enabled(
    account: &Account,
    _: &VerifiedToken<'_>,
    identity: &Identity,
    context: &Context<'_>,
) -> Result<String, Rejection> {
    if !account.fields.enabled {
        return reject_with(Reason::AccountDisabled, || {
            format!("service account {} is disabled", account.id)
        });
    }
    if let Some(exact) = context.exact_account.filter(|exact| !exact.fields.enabled) {
        return reject_with(Reason::AccountDisabled, || {
            format!(
                "service account {} for exactly sub {:?} is disabled, which blocks this subject whatever client_id names",
                exact.id, identity.sub
            )
        });
    }
    context.explain.pass(|| "the account is enabled".to_owned())
}

/// A claim's text for matching: a string as it is, a boolean or number as its JSON text.
fn comparable_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        // Written as every other JSON on the path is (not `Display`'s copy of the writer).
        Value::Bool(_) | Value::Number(_) => serde_json::to_string(value).ok(),
        _ => None,
    }
}

/// The claim at a dotted `path`: at each level a member whose own name is the longest run of
/// the remaining segments is tried first (`kubernetes.io` before `kubernetes`), then shorter.
pub(crate) fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let dots: Vec<usize> = path.match_indices('.').map(|(at, _)| at).collect();
    dots.iter()
        .rev()
        .find_map(|&dot| match claims.get(&path[..dot]) {
            Some(Value::Object(inner)) => claim_at(inner, &path[dot + 1..]),
            _ => None,
        })
}

/// The scopes of the token to mint: those requested, each the account's; none requested, or
/// an Entra-style `<resource>/.default` among them: all of the account's.
pub(crate) fn grant_scope(account: &Account, requested: Option<&str>) -> Result<String, Rejection> {
    let requested: Vec<&str> = requested
        .unwrap_or("")
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .collect();
    // Entra clients always ask for `<resource>/.default`: "whatever this client was granted".
    if requested.is_empty() || requested.iter().any(|scope| scope.ends_with("/.default")) {
        return Ok(account.fields.scopes.join(" "));
    }
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested {
        if !account.fields.scopes.iter().any(|allowed| allowed == scope) {
            return reject_with(Reason::ScopeNotAllowed, || {
                format!(
                    "scope {scope:?} is not allowed for service account {}; it has: {}",
                    account.id,
                    account.fields.scopes.join(" ")
                )
            });
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

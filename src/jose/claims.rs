//! Claims every workload token must carry (the contract validation step 5): `iss`, `sub` (and `jti`)
//! to find the account by, their types, the time rules with leeway and the 2-hour lifetime
//! limit. The account's own rules are [`crate::policy`]'s. No I/O and no clock: `now` is
//! passed in.

use serde_json::{Map, Value};

use super::reason::{reject, reject_with, Reason, Rejection};

/// Longest accepted lifetime, `exp − iat`, in seconds: 2 hours (the contract, and the seed:
/// "JWTs with a validity period longer than 2 hours will be rejected").
pub const MAX_LIFETIME_SECONDS: f64 = 7200.0;

/// Longest `sub` accepted, in bytes (the contract). Real subjects are under 200 (GitHub's longest
/// forms are ~120); matching a 600-character pattern against a 12,000-character `sub` took
/// 14–19 ms, which an anonymous caller could otherwise repeat at will.
pub const MAX_SUB_BYTES: usize = 1024;

/// Largest magnitude of a numeric date: 2^53, beyond which JSON numbers lose integer precision.
pub const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// The identity claims of a token, read before its signature is checked to find the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub iss: String,
    pub sub: String,
    pub jti: Option<String>,
}

/// Reads `iss`, `sub` and (if present) `jti`: required non-empty strings, and a string.
pub fn identity(claims: &Map<String, Value>) -> Result<Identity, Rejection> {
    let iss = required_string(claims, "iss")?;
    let sub = required_string(claims, "sub")?;
    if sub.len() > MAX_SUB_BYTES {
        return reject_with(Reason::InvalidClaim, || {
            format!(
                "sub is {} bytes long; at most {MAX_SUB_BYTES} are accepted",
                sub.len()
            )
        });
    }
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(jti)) => Some(jti.clone()),
        Some(_) => return reject(Reason::InvalidClaim, "jti is not a string"),
    };
    Ok(Identity { iss, sub, jti })
}

fn required_string(claims: &Map<String, Value>, name: &str) -> Result<String, Rejection> {
    match claims.get(name) {
        None => reject_with(Reason::MissingClaim, || {
            format!("the token has no {name} claim")
        }),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => reject_with(Reason::InvalidClaim, || {
            format!("{name} is an empty string")
        }),
        Some(_) => reject_with(Reason::InvalidClaim, || format!("{name} is not a string")),
    }
}

/// The checked times of a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Times {
    pub exp: f64,
    pub iat: f64,
    pub nbf: Option<f64>,
}

/// Checks presence and types of `aud`, `exp`, `iat`, `nbf`, then the time rules at `now`
/// with `leeway` seconds, reporting the first failure of: token_expired, token_not_yet_valid,
/// issued_in_future, lifetime_too_long.
pub fn check_times(claims: &Map<String, Value>, now: i64, leeway: u64) -> Result<Times, Rejection> {
    for name in ["aud", "exp", "iat"] {
        if !claims.contains_key(name) {
            return reject_with(Reason::MissingClaim, || {
                format!("the token has no {name} claim")
            });
        }
    }
    audiences(claims)?;
    let exp = numeric_date(claims, "exp")?.unwrap_or_default();
    let iat = numeric_date(claims, "iat")?.unwrap_or_default();
    let nbf = numeric_date(claims, "nbf")?;
    if exp <= iat {
        return reject_with(Reason::InvalidClaim, || {
            format!("exp ({exp}) is not after iat ({iat})")
        });
    }
    let (now, leeway) = (now as f64, leeway as f64);
    if exp <= now - leeway {
        return reject_with(Reason::TokenExpired, || {
            format!(
                "the token expired at {exp}, {} s ago (leeway {leeway} s)",
                now - exp
            )
        });
    }
    if let Some(nbf) = nbf {
        if nbf > now + leeway {
            return reject_with(Reason::TokenNotYetValid, || {
                format!(
                    "the token is not valid before {nbf}, {} s from now (leeway {leeway} s)",
                    nbf - now
                )
            });
        }
    }
    if iat > now + leeway {
        return reject_with(Reason::IssuedInFuture, || {
            format!(
                "the token's iat {iat} is {} s in the future (leeway {leeway} s)",
                iat - now
            )
        });
    }
    if exp - iat > MAX_LIFETIME_SECONDS {
        return reject_with(Reason::LifetimeTooLong, || {
            format!("the token is valid for {} s (exp - iat); at most {MAX_LIFETIME_SECONDS} s (2 hours) are accepted", exp - iat)
        });
    }
    Ok(Times { exp, iat, nbf })
}

/// A numeric date claim: absent, or a finite JSON number within ±2^53.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            // Integers are compared exactly: as floats, 2^53 + 1 would round to 2^53.
            let in_range = match (number.as_i64(), number.as_u64(), number.as_f64()) {
                (Some(value), _, _) => value.unsigned_abs() <= MAX_NUMERIC_DATE as u64,
                (None, Some(value), _) => value <= MAX_NUMERIC_DATE as u64,
                (None, None, Some(value)) => value.is_finite() && value.abs() <= MAX_NUMERIC_DATE,
                _ => false,
            };
            match number.as_f64() {
                Some(value) if in_range => Ok(Some(value)),
                _ => reject_with(Reason::InvalidClaim, || {
                    format!("{name} is out of range (beyond +-2^53)")
                }),
            }
        }
        Some(_) => reject_with(Reason::InvalidClaim, || {
            format!("{name} is not a number (NumericDate)")
        }),
    }
}

/// `aud` as a list: a string, or an array of strings.
pub fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, Rejection> {
    match claims.get("aud") {
        None => reject(Reason::MissingClaim, "the token has no aud claim"),
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    Rejection::new(
                        Reason::InvalidClaim,
                        "aud is an array with a non-string member",
                    )
                })
            })
            .collect(),
        Some(_) => reject(
            Reason::InvalidClaim,
            "aud is neither a string nor an array of strings",
        ),
    }
}

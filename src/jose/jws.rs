//! Parsing a workload's compact JWS (the contract validation steps 1 and 2): size, shape, canonical
//! base64url, strict JSON, the `alg` allow-list and the header members that are refused.
//!
//! Nothing here trusts the header to choose a key or a verifier: `alg` only selects among the
//! algorithms accepted, and `jwk`, `jku`, `x5u`, `x5c` are ignored. No I/O here.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use super::alg::Alg;
use super::reason::{reject, reject_with, Reason, Rejection};
use crate::text::json::{parse_strict, JsonError};

/// Largest token accepted, in bytes (the contract). Real workload tokens are 1–2 KiB; a Kubernetes
/// token with many claims stays under 4 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Deepest nesting of the header or payload JSON (the contract).
pub const MAX_JSON_DEPTH: usize = crate::text::json::MAX_DEPTH;

/// A parsed token whose signature has not been checked: what it says may be a lie. Only
/// [`crate::jose::verify::verify`] turns it into a [`crate::jose::verify::VerifiedToken`], which
/// is what an account's checks take.
#[derive(Debug, Clone, PartialEq)]
pub struct UntrustedToken {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The header's `typ`, if a string.
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Parses `token` and checks its header.
pub fn parse(token: &str) -> Result<UntrustedToken, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return reject_with(Reason::TokenTooLarge, || {
            format!(
                "the token is {} bytes; at most {MAX_TOKEN_BYTES} are accepted",
                token.len()
            )
        });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_three_parts(token));
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return reject(
            Reason::MalformedToken,
            "the header and payload parts must not be empty",
        );
    }
    let header = decode_json(header_b64, "header")?;
    let signature = decode(signature_b64, "signature")?;
    let alg = check_header(&header)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return reject(Reason::MalformedToken, "the header's kid is not a string"),
    };
    let claims = decode_json(payload_b64, "payload")?;
    let typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
    Ok(UntrustedToken {
        alg,
        kid,
        typ,
        claims,
        // The token up to its second dot.
        signing_input: token[..header_b64.len() + 1 + payload_b64.len()].to_owned(),
        signature,
    })
}

/// Why a token that is not three dot-separated parts is refused. Out of line: a cold isolate
/// compiles a function whole on its first call, and a good token never needs this.
#[cold]
#[inline(never)]
fn not_three_parts(token: &str) -> Rejection {
    match token.split('.').count() {
        5 => Rejection::new(
            Reason::MalformedToken,
            "the token is a JWE (five parts); a signed JWT (JWS, three parts) is needed",
        ),
        n => {
            let shape = if token.trim_start().starts_with('{') {
                " (JSON serialization is not accepted)"
            } else {
                ""
            };
            Rejection::new(
                Reason::MalformedToken,
                format!("a compact JWS has three base64url parts separated by dots; this has {n}{shape}"),
            )
        }
    }
}

/// Why an `alg` outside the allow-list is refused (out of line, as [`not_three_parts`]).
#[cold]
#[inline(never)]
fn unaccepted_alg(alg: &str) -> Rejection {
    let why = if alg.eq_ignore_ascii_case("none") {
        "unsigned tokens are never accepted".to_owned()
    } else if alg.to_ascii_uppercase().starts_with("HS") {
        "HMAC algorithms need a shared secret, and workload tokens are verified with the issuer's public keys".to_owned()
    } else {
        format!(
            "the accepted algorithms are {}",
            Alg::ALL.map(Alg::name).join(", ")
        )
    };
    Rejection::new(
        Reason::UnsupportedAlgorithm,
        format!("alg {alg:?} is not accepted: {why}"),
    )
}

/// The `alg` and the refused members.
fn check_header(header: &Map<String, Value>) -> Result<Alg, Rejection> {
    let alg = match header.get("alg") {
        None => return reject(Reason::UnsupportedAlgorithm, "the header has no alg"),
        Some(Value::String(alg)) => alg,
        Some(_) => {
            return reject(
                Reason::UnsupportedAlgorithm,
                "the header's alg is not a string",
            )
        }
    };
    let alg = Alg::parse(alg).ok_or_else(|| unaccepted_alg(alg))?;
    if header.contains_key("crit") {
        return reject(
            Reason::MalformedToken,
            "the header has crit; no critical extensions are supported",
        );
    }
    if header.get("b64") == Some(&Value::Bool(false)) {
        return reject(
            Reason::MalformedToken,
            "the header has b64: false (unencoded payload); not supported",
        );
    }
    if header
        .get("cty")
        .and_then(Value::as_str)
        .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT"))
    {
        return reject(
            Reason::MalformedToken,
            "the header has cty: JWT (a nested token); not supported",
        );
    }
    Ok(alg)
}

/// Canonical unpadded base64url only: no padding, no `+` or `/`, no whitespace, unused trailing
/// bits zero. `base64ct` rejects all of those.
fn decode(part: &str, which: &str) -> Result<Vec<u8>, Rejection> {
    Base64UrlUnpadded::decode_vec(part).map_err(|_| {
        Rejection::new(
            Reason::MalformedToken,
            format!("the {which} is not canonical unpadded base64url"),
        )
    })
}

fn decode_json(part: &str, which: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = decode(part, which)?;
    match parse_strict(&bytes, MAX_JSON_DEPTH) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => reject_with(Reason::MalformedToken, || {
            format!("the {which} is JSON but not an object")
        }),
        Err(JsonError::Syntax(message)) => reject_with(Reason::MalformedToken, || {
            format!("the {which} is not UTF-8 JSON: {message}")
        }),
        Err(error) => reject_with(Reason::MalformedToken, || {
            format!("the {which} JSON is refused: {error}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        Base64UrlUnpadded::encode_string(json.as_bytes())
    }

    fn refusal(token: &str) -> Rejection {
        parse(token).expect_err("refused")
    }

    #[test]
    fn a_token_not_in_three_parts_is_told_how_many_it_has() {
        let header = b64(r#"{"alg":"ES256"}"#);
        for (token, parts) in [
            (format!("{header}.e30"), 2),
            (format!("{header}.e30.c2ln.more"), 4),
        ] {
            let refused = refusal(&token);
            assert_eq!(refused.reason, Reason::MalformedToken);
            assert!(
                refused.description.ends_with(&format!("this has {parts}")),
                "{}",
                refused.description
            );
        }
    }

    #[test]
    fn a_jwe_is_named_as_one() {
        let refused = refusal(&format!("{}.a.b.c.d", b64(r#"{"alg":"RSA-OAEP"}"#)));
        assert_eq!(refused.reason, Reason::MalformedToken);
        assert!(
            refused.description.contains("JWE (five parts)"),
            "{}",
            refused.description
        );
    }

    #[test]
    fn the_json_serialization_is_named_as_refused() {
        let refused = refusal(r#" {"payload":"e30","signatures":[]}"#);
        assert!(
            refused
                .description
                .ends_with("this has 1 (JSON serialization is not accepted)"),
            "{}",
            refused.description
        );
    }

    #[test]
    fn a_refused_alg_is_told_why() {
        let why = |alg: &str| {
            let rejection = refusal(&format!(
                "{}.e30.c2ln",
                b64(&format!(r#"{{"alg":"{alg}"}}"#))
            ));
            assert_eq!(rejection.reason, Reason::UnsupportedAlgorithm);
            rejection.description
        };
        assert!(why("none").ends_with("unsigned tokens are never accepted"));
        assert!(why("HS256").contains("HMAC algorithms need a shared secret"));
        assert!(why("ES256K").contains("the accepted algorithms are RS256"));
    }
}

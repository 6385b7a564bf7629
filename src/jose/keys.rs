//! Issuer key sets (JWKS): which keys are usable, which key a token may use, and the cheap
//! signature-shape checks done before any cryptography (the contract validation steps 3 and 4).
//! No I/O here: fetching and caching live in [`super::key_sets`].

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Map, Value};

use super::alg::{Alg, Curve, KeyNeed};
use super::reason::{reject_with, Reason, Rejection};

/// Keys kept from a set: the first 100, as Entra does. More is a misconfigured issuer.
pub const MAX_KEYS: usize = 100;

/// Most keys a token without `kid` is tried against (the contract). Each try is a signature
/// verification an anonymous caller makes us pay for: 100 P-521 keys cost 130 ms, and issuers
/// that omit `kid` publish one or two keys (one more while they rotate).
pub const MAX_KEYS_WITHOUT_KID: usize = 3;

/// The JWK `use` values that allow verifying a signature: RFC 7517's `sig`, and SPIFFE's
/// `jwt-svid` (a trust bundle marks its JWT-SVID keys so).
pub const SIGNING_USES: &[&str] = &["sig", "jwt-svid"];

/// RSA modulus sizes accepted, in bits (the contract): below 2048 is breakable, above 4096 is a
/// verification-cost attack.
pub const MIN_RSA_BITS: usize = 2048;
pub const MAX_RSA_BITS: usize = 4096;

/// What a usable key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { modulus_bits: usize },
    Ec(Curve),
    Ed25519,
}

/// One usable public key of an issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's own `alg`, `use` and `key_ops`, which may forbid some uses.
    pub alg: Option<String>,
    pub key_use: Option<String>,
    pub key_ops: Option<Vec<String>>,
    /// The public members only (`crv`, `e`, `kty`, `n`, `x`, `y`) as JSON, in alphabetical
    /// order, written once per key set: what a verifier imports and keys its cache by.
    pub public_jwk_text: String,
}

impl IssuerKey {
    /// The key as a public JWK again, with the members that restrict its use.
    pub fn to_jwk(&self) -> Value {
        let mut jwk: Value = serde_json::from_str(&self.public_jwk_text).unwrap_or_default();
        if let Value::Object(members) = &mut jwk {
            if let Some(kid) = &self.kid {
                members.insert("kid".into(), json!(kid));
            }
            if let Some(alg) = &self.alg {
                members.insert("alg".into(), json!(alg));
            }
            if let Some(key_use) = &self.key_use {
                members.insert("use".into(), json!(key_use));
            }
            if let Some(ops) = &self.key_ops {
                members.insert("key_ops".into(), json!(ops));
            }
        }
        jwk
    }
}

/// A parsed key set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeySet {
    pub keys: Vec<IssuerKey>,
    /// How many of the first [`MAX_KEYS`] entries were unusable and skipped.
    pub skipped: usize,
    /// How many entries past [`MAX_KEYS`] were ignored.
    pub ignored: usize,
}

/// Parses a JWKS document. Fails only when it is not a JWK Set at all, or has no usable key.
/// (The worker parses a fetched document as `exchange::key_sets` does, strict JSON then
/// [`key_set_of`]; this is the same two steps for the tests, the fuzzer and the selftest's vectors.)
#[cfg(any(test, feature = "testing", feature = "selftest"))]
pub fn parse_key_set(body: &[u8]) -> Result<KeySet, String> {
    use crate::text::json::{parse_strict, MAX_DEPTH};
    let value = parse_strict(body, MAX_DEPTH)
        .map_err(|error| format!("the key set is not JSON: {error}"))?;
    key_set_of(&value)
}

/// [`parse_key_set`] of a JWK Set already parsed.
pub fn key_set_of(value: &Value) -> Result<KeySet, String> {
    let entries = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the key set has no \"keys\" array")?;
    let mut set = KeySet {
        ignored: entries.len().saturating_sub(MAX_KEYS),
        ..KeySet::default()
    };
    for entry in entries.iter().take(MAX_KEYS) {
        match entry.as_object().and_then(usable_key) {
            Some(key) => set.keys.push(key),
            None => set.skipped += 1,
        }
    }
    if set.keys.is_empty() {
        return Err(format!(
            "the key set has no usable signing key ({} entries, all skipped)",
            entries.len().min(MAX_KEYS)
        ));
    }
    Ok(set)
}

/// The key, if it is a well-formed public key of a kind edge-sts verifies.
fn usable_key(jwk: &Map<String, Value>) -> Option<IssuerKey> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|value| Base64UrlUnpadded::decode_vec(value).ok());
    let (kind, public_jwk_text) = match text("kty")? {
        "RSA" => {
            let modulus = bytes("n")?;
            let exponent = bytes("e")?;
            let modulus = strip_leading_zeros(&modulus);
            let exponent = strip_leading_zeros(&exponent);
            if modulus.is_empty() || exponent.is_empty() || exponent.len() > 8 {
                return None;
            }
            let modulus_bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
            let public = jwk_text(&[("e", text("e")?), ("kty", "RSA"), ("n", text("n")?)]);
            (KeyKind::Rsa { modulus_bits }, public)
        }
        "EC" => {
            let curve = Curve::from_name(text("crv")?)?;
            if bytes("x")?.len() != curve.field_bytes() || bytes("y")?.len() != curve.field_bytes()
            {
                return None;
            }
            let public = jwk_text(&[
                ("crv", curve.name()),
                ("kty", "EC"),
                ("x", text("x")?),
                ("y", text("y")?),
            ]);
            (KeyKind::Ec(curve), public)
        }
        "OKP" if text("crv")? == "Ed25519" => {
            if bytes("x")?.len() != 32 {
                return None;
            }
            (
                KeyKind::Ed25519,
                jwk_text(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", text("x")?)]),
            )
        }
        _ => return None,
    };
    let key_ops = match jwk.get("key_ops") {
        None => None,
        Some(Value::Array(ops)) => Some(
            ops.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => return None,
    };
    Some(IssuerKey {
        kid: match jwk.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return None,
        },
        kind,
        alg: text("alg").map(str::to_owned),
        key_use: text("use").map(str::to_owned),
        key_ops,
        public_jwk_text,
    })
}

/// A public JWK of `members`, given in alphabetical order, as JSON without whitespace: with a
/// key's required members, RFC 7638's canonical form, which its thumbprint hashes. Written
/// directly, not built as a JSON object and serialized (code a new isolate's first exchange
/// would compile): every value is a constant or base64url text, so none needs escaping.
pub(crate) fn jwk_text(members: &[(&str, &str)]) -> String {
    let mut text = String::with_capacity(
        24 + members
            .iter()
            .map(|(_, value)| value.len() + 8)
            .sum::<usize>(),
    );
    for (name, value) in members {
        text.push_str(if text.is_empty() { "{\"" } else { ",\"" });
        text.push_str(name);
        text.push_str("\":\"");
        text.push_str(value);
        text.push('"');
    }
    text.push('}');
    text
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Why `key` may not verify `alg`, if it may not.
pub fn misfit(key: &IssuerKey, alg: Alg) -> Option<String> {
    let kind_fits = match (alg.key_need(), &key.kind) {
        (KeyNeed::Rsa, KeyKind::Rsa { modulus_bits }) => {
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(modulus_bits) {
                return Some(format!(
                    "it is a {modulus_bits}-bit RSA key; {} needs {MIN_RSA_BITS} to {MAX_RSA_BITS} bits",
                    alg.name()
                ));
            }
            true
        }
        (KeyNeed::Ec(need), KeyKind::Ec(have)) => need == *have,
        (KeyNeed::Ed25519, KeyKind::Ed25519) => true,
        _ => false,
    };
    if !kind_fits {
        return Some(format!(
            "it is {}, and {} needs {}",
            describe(&key.kind),
            alg.name(),
            describe_need(alg.key_need())
        ));
    }
    if let Some(key_alg) = &key.alg {
        if key_alg != alg.name() {
            return Some(format!(
                "the key is marked alg {key_alg:?}, not {}",
                alg.name()
            ));
        }
    }
    if let Some(key_use) = &key.key_use {
        if !SIGNING_USES.contains(&key_use.as_str()) {
            return Some(format!(
                "the key is marked use {key_use:?}, not \"sig\" or \"jwt-svid\""
            ));
        }
    }
    if let Some(ops) = &key.key_ops {
        if !ops.iter().any(|op| op == "verify") {
            return Some("the key's key_ops do not include \"verify\"".into());
        }
    }
    None
}

fn describe(kind: &KeyKind) -> String {
    match kind {
        KeyKind::Rsa { modulus_bits } => format!("a {modulus_bits}-bit RSA key"),
        KeyKind::Ec(curve) => format!("an EC {} key", curve.name()),
        KeyKind::Ed25519 => "an Ed25519 key".into(),
    }
}

fn describe_need(need: KeyNeed) -> String {
    match need {
        KeyNeed::Rsa => "an RSA key".into(),
        KeyNeed::Ec(curve) => format!("an EC {} key", curve.name()),
        KeyNeed::Ed25519 => "an Ed25519 key".into(),
    }
}

/// The keys a token with `alg` and `kid` may be verified with (the contract step 3): with a `kid`,
/// the first key of that `kid` that fits `alg`; without, at most [`MAX_KEYS_WITHOUT_KID`] keys
/// that fit it, a key published twice counted once. Each is one signature verification, so
/// an anonymous caller gets at most that many.
///
/// `unknown_key` when the set has no such `kid` (or, without a `kid`, no key of the kind),
/// `key_mismatch` when the `kid` names keys that do not fit `alg`. The descriptions name only
/// the token's `kid` and `alg`; why the key does not fit is the `detail`.
pub fn select<'a>(
    set: &'a KeySet,
    alg: Alg,
    kid: Option<&str>,
) -> Result<Vec<&'a IssuerKey>, Rejection> {
    match kid {
        Some(kid) => {
            let mut named = set
                .keys
                .iter()
                .filter(|key| key.kid.as_deref() == Some(kid))
                .peekable();
            let Some(&first) = named.peek() else {
                return reject_with(Reason::UnknownKey, || {
                    format!("the issuer's key set has no key with kid {kid:?}")
                });
            };
            match named.find(|key| misfit(key, alg).is_none()) {
                Some(key) => Ok(vec![key]),
                None => Err(Rejection::new(
                    Reason::KeyMismatch,
                    format!("the issuer's key {kid:?} cannot verify {}", alg.name()),
                )
                .with_detail(misfit(first, alg).unwrap_or_default())),
            }
        }
        None => {
            let mut fitting: Vec<&IssuerKey> = Vec::with_capacity(MAX_KEYS_WITHOUT_KID);
            for key in set.keys.iter().filter(|key| misfit(key, alg).is_none()) {
                if fitting.len() == MAX_KEYS_WITHOUT_KID {
                    break;
                }
                if !fitting
                    .iter()
                    .any(|seen| seen.public_jwk_text == key.public_jwk_text)
                {
                    fitting.push(key);
                }
            }
            if fitting.is_empty() {
                return reject_with(Reason::UnknownKey, || {
                    format!(
                        "the token has no kid, and no key in the issuer's set can verify {}",
                        alg.name()
                    )
                });
            }
            Ok(fitting)
        }
    }
}

/// The signature's shape for `alg` and `key`, checked before any cryptography: ECDSA in JWS
/// form (r‖s, each in [1, n − 1]; DER is refused), Ed25519 64 bytes, RSA as long as the modulus.
pub fn check_signature_shape(alg: Alg, key: &IssuerKey, signature: &[u8]) -> Result<(), Rejection> {
    let expected = match (&key.kind, alg.key_need()) {
        (KeyKind::Ec(curve), _) => curve.field_bytes() * 2,
        (KeyKind::Ed25519, _) => 64,
        (KeyKind::Rsa { modulus_bits }, _) => modulus_bits.div_ceil(8),
    };
    if signature.len() != expected {
        return reject_with(Reason::BadSignature, || {
            format!(
                "a {} signature with this key is {expected} bytes; this one is {}",
                alg.name(),
                signature.len()
            )
        });
    }
    if let KeyKind::Ec(curve) = key.kind {
        let (r, s) = signature.split_at(curve.field_bytes());
        for (name, scalar) in [("r", r), ("s", s)] {
            if scalar.iter().all(|&b| b == 0) || scalar >= curve.order() {
                return reject_with(Reason::BadSignature, || {
                    format!("the ECDSA signature's {name} is zero or not below the curve order")
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's public members, whatever other members come with them, are written as a
    /// JSON object of them would be (alphabetical, no other member); `to_jwk` adds back what
    /// restricts the key's use.
    #[test]
    fn a_key_is_imported_by_its_public_members_alone() {
        let b64 = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
        let (n, e, x, y) = (
            b64(&[0xc5; 256]),
            b64(&[1, 0, 1]),
            b64(&[7; 32]),
            b64(&[9; 32]),
        );
        let cases = [
            (
                json!({"n": n, "kid": "r", "kty": "RSA", "use": "sig", "e": e, "d": "private"}),
                json!({"kty": "RSA", "n": n, "e": e}),
            ),
            (
                json!({"y": y, "x": x, "alg": "ES256", "crv": "P-256", "kty": "EC", "kid": "e"}),
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            ),
            (
                json!({"x": x, "kty": "OKP", "crv": "Ed25519", "key_ops": ["verify"]}),
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            ),
        ];
        for (jwk, public) in cases {
            let set = key_set_of(&json!({ "keys": [jwk.clone()] })).unwrap();
            let key = &set.keys[0];
            assert_eq!(key.public_jwk_text, public.to_string(), "{jwk}");
            let mut back = jwk.clone();
            back.as_object_mut().unwrap().remove("d");
            assert_eq!(key.to_jwk(), back);
        }
    }
}

//! `SIGNING_KEYS`: the private keys that sign minted access tokens, parsed and checked once.
//!
//! The secret is a JWK Set of EC P-256 private keys in Web Crypto's `importKey("jwk")` form.
//! The first key signs; all are published at `/.well-known/jwks.json`, so a key can be added
//! (published before it signs) and retired (kept published until its tokens expire).
//! Error messages name the key by position and the field at fault, never a key's value.
//! No I/O here; importing into Web Crypto is the platform's job.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::keys::jwk_text;

/// The only signature algorithm of minted tokens (the contract, "Minted access tokens").
pub const SIGNING_ALG: &str = "ES256";

/// Most keys in `SIGNING_KEYS`. Rotation needs two or three at a time; more is a mistake, and
/// every key is imported into Web Crypto when an isolate starts.
pub const MAX_SIGNING_KEYS: usize = 10;

/// Longest `kid` accepted, in bytes. A thumbprint is 43; 256 leaves room for naming schemes.
pub const MAX_KID_BYTES: usize = 256;

/// Byte length of a P-256 coordinate and of its private scalar.
const P256_FIELD_BYTES: usize = 32;

/// One signing key.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id: the JWK's `kid`, or its RFC 7638 thumbprint when it has none.
    pub kid: String,
    /// `{kty, crv, x, y, d}`: what Web Crypto's `importKey("jwk", …)` takes.
    pub private_jwk: Value,
    /// The public half as published: `{kty, crv, x, y, kid, alg, use}`.
    pub public_jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print `d`.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

/// The parsed `SIGNING_KEYS`: at least one key, the first of which signs.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

/// Why `SIGNING_KEYS` was refused. Displayed after "SIGNING_KEYS ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeysError {
    /// The secret is not set (or empty).
    #[error("is not set; run `npm run keygen` to make one")]
    Missing,
    /// Not JSON at all. Carries serde_json's position only: its messages never quote input.
    #[error("is not valid JSON (syntax error at line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    /// JSON, but not `{"keys": [ … ]}`.
    #[error("must be a JWK Set: {{\"keys\": [ ...private JWKs... ]}}")]
    NotKeySet,
    /// `keys` is empty.
    #[error("has no keys; the first key signs, so one is needed")]
    NoKeys,
    /// More than [`MAX_SIGNING_KEYS`].
    #[error("has {count} keys; at most {MAX_SIGNING_KEYS} are allowed")]
    TooManyKeys { count: usize },
    /// Key `index` (0-based) is unusable, for `problem`.
    #[error("key {index}: {problem}")]
    BadKey { index: usize, problem: String },
    /// Two keys share a `kid`.
    #[error("has two keys with kid {kid:?}")]
    DuplicateKid { kid: String },
}

impl SigningKeys {
    /// Parses and checks the secret's value.
    pub fn parse(raw: &str) -> Result<Self, SigningKeysError> {
        if raw.trim().is_empty() {
            return Err(SigningKeysError::Missing);
        }
        let value: Value =
            serde_json::from_str(raw).map_err(|error| SigningKeysError::NotJson {
                line: error.line(),
                column: error.column(),
            })?;
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(SigningKeysError::NotKeySet)?;
        if entries.is_empty() {
            return Err(SigningKeysError::NoKeys);
        }
        if entries.len() > MAX_SIGNING_KEYS {
            return Err(SigningKeysError::TooManyKeys {
                count: entries.len(),
            });
        }
        let mut keys: Vec<SigningKey> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let key =
                parse_key(entry).map_err(|problem| SigningKeysError::BadKey { index, problem })?;
            if keys.iter().any(|other| other.kid == key.kid) {
                return Err(SigningKeysError::DuplicateKid { kid: key.kid });
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// The key that signs: the first.
    pub fn active(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// All keys, the active one first.
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The public JWK Set served at `/.well-known/jwks.json`.
    pub fn public_jwks(&self) -> Value {
        let keys: Vec<&Value> = self.keys.iter().map(|key| &key.public_jwk).collect();
        json!({ "keys": keys })
    }
}

/// Checks one private JWK. The problem text names fields, never their values.
fn parse_key(entry: &Value) -> Result<SigningKey, String> {
    let object = entry.as_object().ok_or("is not a JSON object")?;
    let kty = string_member(object, "kty")?.ok_or("has no \"kty\"")?;
    let crv = string_member(object, "crv")?.unwrap_or("");
    if kty != "EC" || crv != "P-256" {
        return Err(format!(
            "is kty {kty:?} crv {crv:?}; only EC P-256 keys (ES256) can sign access tokens"
        ));
    }
    if let Some(alg) = string_member(object, "alg")? {
        if alg != SIGNING_ALG {
            return Err(format!("has alg {alg:?}; a P-256 key signs ES256"));
        }
    }
    if let Some(key_use) = string_member(object, "use")? {
        if key_use != "sig" {
            return Err(format!("has use {key_use:?}; a signing key needs \"sig\""));
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let allows_sign = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "sign"));
        if !allows_sign {
            return Err("has key_ops without \"sign\"".to_owned());
        }
    }
    let mut coordinates = Vec::with_capacity(2);
    for member in ["x", "y", "d"] {
        let text = string_member(object, member)?.ok_or_else(|| match member {
            "d" => {
                "has no \"d\": it is a public key, and SIGNING_KEYS needs private keys".to_owned()
            }
            _ => format!("has no {member:?}"),
        })?;
        let bytes = Base64UrlUnpadded::decode_vec(text)
            .map_err(|_| format!("{member:?} is not unpadded base64url"))?;
        if bytes.len() != P256_FIELD_BYTES {
            return Err(format!(
                "{member:?} decodes to {} bytes; P-256 needs {P256_FIELD_BYTES}",
                bytes.len()
            ));
        }
        if member != "d" {
            coordinates.push(bytes);
        }
    }
    let private_jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": object["x"], "y": object["y"], "d": object["d"],
    });
    let kid = match string_member(object, "kid")? {
        Some(kid) if kid.is_empty() || kid.len() > MAX_KID_BYTES => {
            return Err(format!("\"kid\" must be 1 to {MAX_KID_BYTES} bytes long"))
        }
        Some(kid) => kid.to_owned(),
        None => thumbprint(&coordinates[0], &coordinates[1]),
    };
    let public_jwk = json!({
        "kty": "EC", "crv": "P-256", "x": object["x"], "y": object["y"],
        "kid": kid, "alg": SIGNING_ALG, "use": "sig",
    });
    Ok(SigningKey {
        kid,
        private_jwk,
        public_jwk,
    })
}

/// A member that, when present, must be a string.
fn string_member<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{name:?} is not a string")),
    }
}

/// The RFC 7638 SHA-256 thumbprint of a P-256 public key, base64url: the default `kid`. The
/// hash of the key's required members in the RFC's canonical form (sorted, no whitespace),
/// written as an issuer key's import text is ([`jwk_text`]): building jwt-compact's key and its
/// generic serialiser for this one string was a tenth of the code a cold isolate compiled
/// before its first answer (docs/performance.md). A test holds it to jwt-compact's thumbprint.
fn thumbprint(x: &[u8], y: &[u8]) -> String {
    let (x, y) = (
        Base64UrlUnpadded::encode_string(x),
        Base64UrlUnpadded::encode_string(y),
    );
    let canonical = jwk_text(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)]);
    Base64UrlUnpadded::encode_string(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test-only P-256 key generated with Node's Web Crypto; its RFC 7638 thumbprint was
    /// computed independently with Node's `crypto` (SHA-256 of `{"crv","kty","x","y"}` in
    /// lexicographic order, base64url).
    const KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"JboNEBgP8fBlEICH8NbaE0v-ruw0A4a4ONhJWZlRljs","y":"7s9DRl0Vr1pLJx6ZYzm2_9LfS9N8rp1N1K2e9UI6fi8","d":"nBQDC5rt3yJIcUbUpxpJJo1lX0nfzeAmIDe5rTB4Nts"}"#;
    const KEY_THUMBPRINT: &str = "zxj66DA76PyLxVyammSBeqbEK__AoBo4abmUAJR8xTI";

    fn set_of(keys: &[&str]) -> String {
        format!("{{\"keys\":[{}]}}", keys.join(","))
    }

    #[test]
    fn parses_a_key_and_publishes_only_its_public_half() {
        let keys = SigningKeys::parse(&set_of(&[KEY])).unwrap();
        assert_eq!(keys.all().len(), 1);
        let published = keys.public_jwks();
        let jwk = &published["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none());
        assert!(!published.to_string().contains("nBQDC5rt"));
        assert_eq!(
            keys.active().private_jwk["d"],
            "nBQDC5rt3yJIcUbUpxpJJo1lX0nfzeAmIDe5rTB4Nts"
        );
    }

    #[test]
    fn kid_defaults_to_the_rfc7638_thumbprint() {
        let keys = SigningKeys::parse(&set_of(&[KEY])).unwrap();
        assert_eq!(keys.active().kid, KEY_THUMBPRINT);
        assert_eq!(keys.public_jwks()["keys"][0]["kid"], KEY_THUMBPRINT);
    }

    /// The thumbprint written out agrees with jwt-compact's, for keys of every shape of
    /// coordinate (leading zeros, high bits set).
    #[test]
    fn the_thumbprint_is_jwt_compacts() {
        use jwt_compact::jwk::JsonWebKey;
        let mut x = [0u8; P256_FIELD_BYTES];
        let mut y = [0u8; P256_FIELD_BYTES];
        for seed in 0..64u8 {
            for (index, byte) in x.iter_mut().enumerate() {
                *byte = seed
                    .wrapping_mul(31)
                    .wrapping_add(index as u8)
                    .rotate_left(u32::from(seed % 8));
            }
            for (index, byte) in y.iter_mut().enumerate() {
                *byte = (index as u8).wrapping_mul(seed) ^ 0xa5;
            }
            x[0] = if seed % 2 == 0 { 0 } else { 0xff };
            let key = JsonWebKey::EllipticCurve {
                curve: "P-256".into(),
                x: x.as_slice().into(),
                y: y.as_slice().into(),
                secret: None,
            };
            let expected = Base64UrlUnpadded::encode_string(&key.thumbprint::<Sha256>());
            assert_eq!(thumbprint(&x, &y), expected, "seed {seed}");
        }
    }

    #[test]
    fn the_first_key_signs_and_all_are_published() {
        let second = KEY.replacen('{', r#"{"kid":"old","#, 1);
        let first = KEY.replacen(
            '{',
            r#"{"kid":"new","alg":"ES256","use":"sig","key_ops":["sign"],"ext":true,"#,
            1,
        );
        let keys = SigningKeys::parse(&set_of(&[&first, &second])).unwrap();
        assert_eq!(keys.active().kid, "new");
        let published = keys.public_jwks();
        let kids: Vec<&Value> = published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["kid"])
            .collect();
        assert_eq!(kids, ["new", "old"]);
    }

    #[test]
    fn each_bad_value_is_explained() {
        let without = |member: &str| {
            let mut key: Value = serde_json::from_str(KEY).unwrap();
            key.as_object_mut().unwrap().remove(member);
            set_of(&[&key.to_string()])
        };
        let with = |member: &str, value: Value| {
            let mut key: Value = serde_json::from_str(KEY).unwrap();
            key[member] = value;
            set_of(&[&key.to_string()])
        };
        let eleven = vec![KEY; 11];
        let bad_key = |problem: &str| SigningKeysError::BadKey {
            index: 0,
            problem: problem.to_owned(),
        };
        let cases: Vec<(String, SigningKeysError)> = vec![
            ("".into(), SigningKeysError::Missing),
            ("  ".into(), SigningKeysError::Missing),
            ("{\"keys\":".into(), SigningKeysError::NotJson { line: 1, column: 8 }),
            (KEY.into(), SigningKeysError::NotKeySet),
            ("[]".into(), SigningKeysError::NotKeySet),
            (set_of(&[]), SigningKeysError::NoKeys),
            (set_of(&eleven), SigningKeysError::TooManyKeys { count: 11 }),
            (set_of(&["1"]), bad_key("is not a JSON object")),
            (without("kty"), bad_key("has no \"kty\"")),
            (with("crv", json!("P-384")), bad_key("is kty \"EC\" crv \"P-384\"; only EC P-256 keys (ES256) can sign access tokens")),
            (with("kty", json!("RSA")), bad_key("is kty \"RSA\" crv \"P-256\"; only EC P-256 keys (ES256) can sign access tokens")),
            (with("alg", json!("ES384")), bad_key("has alg \"ES384\"; a P-256 key signs ES256")),
            (with("use", json!("enc")), bad_key("has use \"enc\"; a signing key needs \"sig\"")),
            (with("key_ops", json!(["verify"])), bad_key("has key_ops without \"sign\"")),
            (without("d"), bad_key("has no \"d\": it is a public key, and SIGNING_KEYS needs private keys")),
            (without("x"), bad_key("has no \"x\"")),
            (with("d", json!(7)), bad_key("\"d\" is not a string")),
            (with("d", json!("nBQDC5rt3yJIcUbUpxpJJo1lX0nfzeAmIDe5rTB4Nts==")), bad_key("\"d\" is not unpadded base64url")),
            (with("y", json!("AAAA")), bad_key("\"y\" decodes to 3 bytes; P-256 needs 32")),
            (with("kid", json!("")), bad_key("\"kid\" must be 1 to 256 bytes long")),
            (set_of(&[KEY, KEY]), SigningKeysError::DuplicateKid { kid: KEY_THUMBPRINT.into() }),
        ];
        for (raw, expected) in cases {
            let error = SigningKeys::parse(&raw).unwrap_err();
            assert_eq!(error, expected, "{raw}");
            assert!(
                !error.to_string().contains("nBQDC5rt"),
                "{error} shows the private key"
            );
        }
    }
}

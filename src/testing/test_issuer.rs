//! A test identity provider in pure Rust: keys for every accepted algorithm and a signer for
//! workload tokens. Test-only. RSA, P-521 and Ed25519 keys are RFC 7520's / RFC 8037's example
//! keys (tests/vectors/rfc7520); P-256 and P-384 keys come from fixed scalars.

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use serde_json::{json, Map, Value};

use crate::jose::alg::Alg;

fn vector_key(file: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/rfc7520/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str::<Value>(&text).expect("vector JSON")["input"]["key"].clone()
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn bytes(jwk: &Value, name: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(jwk[name].as_str().expect(name)).expect(name)
}

/// A deterministic "random" source for RSA-PSS salts: tests must not depend on luck.
struct CountingRng(u8);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            self.0 = self.0.wrapping_add(1);
            *byte = self.0;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for CountingRng {}

/// The private keys of the test issuer, and their public JWKs.
pub struct TestIssuer {
    rsa: rsa::RsaPrivateKey,
    rsa_jwk: Value,
    p256: p256::ecdsa::SigningKey,
    p384: p384::ecdsa::SigningKey,
    p521: p521::ecdsa::SigningKey,
    p521_jwk: Value,
    ed25519: ed25519_compact::KeyPair,
    ed25519_jwk: Value,
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    pub fn new() -> Self {
        let rsa_jwk = vector_key("4_1.rsa_v15_signature.json");
        let big = |name: &str| rsa::BigUint::from_bytes_be(&bytes(&rsa_jwk, name));
        let rsa = rsa::RsaPrivateKey::from_components(
            big("n"),
            big("e"),
            big("d"),
            vec![big("p"), big("q")],
        )
        .expect("RFC 7520 RSA key");
        let p521_jwk = vector_key("4_3.ecdsa_signature.json");
        let p521 = p521::ecdsa::SigningKey::from_slice(&bytes(&p521_jwk, "d"))
            .expect("RFC 7520 P-521 key");
        let ed25519_jwk = vector_key("ed25519_signature.json");
        let seed =
            ed25519_compact::Seed::from_slice(&bytes(&ed25519_jwk, "d")).expect("RFC 8037 key");
        Self {
            rsa,
            rsa_jwk,
            p256: p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("P-256 scalar"),
            p384: p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).expect("P-384 scalar"),
            p521,
            p521_jwk,
            ed25519: ed25519_compact::KeyPair::from_seed(seed),
            ed25519_jwk,
        }
    }

    /// The public JWK that verifies `alg` (kid = the alg's name, so tests read easily).
    pub fn public_jwk(&self, alg: Alg) -> Value {
        let mut jwk = match alg {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                json!({"kty": "RSA", "n": self.rsa_jwk["n"], "e": self.rsa_jwk["e"]})
            }
            Alg::Es256 => ec_jwk(
                "P-256",
                self.p256.verifying_key().to_encoded_point(false).as_bytes(),
            ),
            Alg::Es384 => ec_jwk(
                "P-384",
                self.p384.verifying_key().to_encoded_point(false).as_bytes(),
            ),
            Alg::Es512 => {
                json!({"kty": "EC", "crv": "P-521", "x": self.p521_jwk["x"], "y": self.p521_jwk["y"]})
            }
            Alg::EdDsa => json!({"kty": "OKP", "crv": "Ed25519", "x": self.ed25519_jwk["x"]}),
        };
        jwk["kid"] = json!(alg.name());
        jwk
    }

    /// A JWKS with one key per algorithm.
    pub fn jwks(&self) -> Value {
        json!({"keys": Alg::ALL.map(|alg| self.public_jwk(alg))})
    }

    /// The signature of `signing_input` with `alg`.
    pub fn sign_bytes(&self, alg: Alg, signing_input: &[u8]) -> Vec<u8> {
        use rsa::{pkcs1v15, pss};
        use sha2::{Sha256, Sha384, Sha512};
        let key = self.rsa.clone();
        let mut rng = CountingRng(0);
        match alg {
            Alg::Rs256 => pkcs1v15::SigningKey::<Sha256>::new(key)
                .sign(signing_input)
                .to_vec(),
            Alg::Rs384 => pkcs1v15::SigningKey::<Sha384>::new(key)
                .sign(signing_input)
                .to_vec(),
            Alg::Rs512 => pkcs1v15::SigningKey::<Sha512>::new(key)
                .sign(signing_input)
                .to_vec(),
            Alg::Ps256 => pss::SigningKey::<Sha256>::new_with_salt_len(key, 32)
                .sign_with_rng(&mut rng, signing_input)
                .to_vec(),
            Alg::Ps384 => pss::SigningKey::<Sha384>::new_with_salt_len(key, 48)
                .sign_with_rng(&mut rng, signing_input)
                .to_vec(),
            Alg::Ps512 => pss::SigningKey::<Sha512>::new_with_salt_len(key, 64)
                .sign_with_rng(&mut rng, signing_input)
                .to_vec(),
            Alg::Es256 => {
                let signature: p256::ecdsa::Signature = self.p256.sign(signing_input);
                signature.to_bytes().to_vec()
            }
            Alg::Es384 => {
                let signature: p384::ecdsa::Signature = self.p384.sign(signing_input);
                signature.to_bytes().to_vec()
            }
            Alg::Es512 => {
                let signature: p521::ecdsa::Signature =
                    self.p521.sign_with_rng(&mut rng, signing_input);
                signature.to_bytes().to_vec()
            }
            Alg::EdDsa => self.ed25519.sk.sign(signing_input, None).to_vec(),
        }
    }

    /// A compact JWS of `claims`, with header `{"alg", "kid": alg}` plus `extra_header`.
    pub fn sign(&self, alg: Alg, claims: &Value, extra_header: Value) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), json!(alg.name()));
        header.insert("kid".into(), json!(alg.name()));
        if let Value::Object(extra) = extra_header {
            for (name, value) in extra {
                if value.is_null() {
                    header.remove(&name);
                } else {
                    header.insert(name, value);
                }
            }
        }
        self.sign_raw(alg, &Value::Object(header).to_string(), &claims.to_string())
    }

    /// A compact JWS of exactly these header and payload texts.
    pub fn sign_raw(&self, alg: Alg, header: &str, payload: &str) -> String {
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = self.sign_bytes(alg, signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature))
    }
}

fn ec_jwk(curve: &str, point: &[u8]) -> Value {
    let half = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": curve, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])})
}

/// A test-only ES256 key for minting.
pub const MINT_KEY: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"JboNEBgP8fBlEICH8NbaE0v-ruw0A4a4ONhJWZlRljs","y":"7s9DRl0Vr1pLJx6ZYzm2_9LfS9N8rp1N1K2e9UI6fi8","d":"nBQDC5rt3yJIcUbUpxpJJo1lX0nfzeAmIDe5rTB4Nts"}]}"#;

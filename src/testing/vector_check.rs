//! Running signature test vectors through a [`SignatureVerifier`]: the same code judges
//! Project Wycheproof's vectors natively (RustCrypto) and in workerd (Web Crypto, through the
//! `selftest` build's `/__selftest/verify`). Compiled for tests and the `selftest` feature only.

use serde_json::{json, Value};

use crate::jose::alg::Alg;
use crate::jose::keys::{check_signature_shape, parse_key_set};
use crate::ports::SignatureVerifier;

/// Whether each `(message, signature)` pair (hex) verifies under `alg` with `jwk`, through
/// the pipeline's own steps: key parsing, signature shape, then the verifier. A key edge-sts
/// would skip verifies nothing.
pub async fn verify_cases<V: SignatureVerifier>(
    verifier: &V,
    alg: Alg,
    jwk: &Value,
    cases: &[(String, String)],
) -> Vec<bool> {
    let set = parse_key_set(json!({ "keys": [jwk] }).to_string().as_bytes());
    let Some(key) = set.as_ref().ok().and_then(|set| set.keys.first()) else {
        return vec![false; cases.len()];
    };
    let mut results = Vec::with_capacity(cases.len());
    for (message, signature) in cases {
        let (Some(message), Some(signature)) = (hex(message), hex(signature)) else {
            results.push(false);
            continue;
        };
        let valid = check_signature_shape(alg, key, &signature).is_ok()
            && verifier
                .verify(alg, key, &message, &signature)
                .await
                .unwrap_or(false);
        results.push(valid);
    }
    results
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::block_on;
    use crate::testing::native_crypto::RustCryptoVerifier;

    /// Each Wycheproof file and the JWS algorithm it tests (see tests/vectors/wycheproof).
    pub const FILES: &[(&str, Alg)] = &[
        ("ecdsa_secp256r1_sha256_p1363_test.json", Alg::Es256),
        ("ecdsa_secp384r1_sha384_p1363_test.json", Alg::Es384),
        ("ecdsa_secp521r1_sha512_p1363_test.json", Alg::Es512),
        ("rsa_signature_2048_sha256_test.json", Alg::Rs256),
        ("rsa_signature_2048_sha384_test.json", Alg::Rs384),
        ("rsa_signature_2048_sha512_test.json", Alg::Rs512),
        ("rsa_pss_2048_sha256_mgf1_32_test.json", Alg::Ps256),
        ("rsa_pss_2048_sha384_mgf1_48_test.json", Alg::Ps384),
        ("rsa_pss_4096_sha512_mgf1_64_test.json", Alg::Ps512),
        ("ed25519_test.json", Alg::EdDsa),
    ];

    /// A group's public key as a JWK: its own, or (ECDSA edge-case keys come without one)
    /// built from the uncompressed point `04 ‖ x ‖ y`.
    fn group_jwk(group: &Value, alg: Alg) -> Value {
        if let Some(jwk) = group.get("publicKeyJwk").or_else(|| group.get("keyJwk")) {
            return jwk.clone();
        }
        let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap()).unwrap();
        let half = (point.len() - 1) / 2;
        let encode = |bytes: &[u8]| {
            <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(bytes)
        };
        let curve = match alg {
            Alg::Es256 => "P-256",
            Alg::Es384 => "P-384",
            _ => "P-521",
        };
        json!({"kty": "EC", "crv": curve, "x": encode(&point[1..1 + half]), "y": encode(&point[1 + half..])})
    }

    #[test]
    fn wycheproof_valid_vectors_verify_and_invalid_ones_do_not() {
        let mut counted = (0, 0, 0);
        for (file, alg) in FILES {
            let path = format!(
                "{}/tests/vectors/wycheproof/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let vectors: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for group in vectors["testGroups"].as_array().unwrap() {
                let jwk = group_jwk(group, *alg);
                let tests = group["tests"].as_array().unwrap();
                let cases: Vec<(String, String)> = tests
                    .iter()
                    .map(|test| {
                        (
                            test["msg"].as_str().unwrap().to_owned(),
                            test["sig"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                let results = block_on(verify_cases(&RustCryptoVerifier, *alg, &jwk, &cases));
                for (test, verified) in tests.iter().zip(results) {
                    let id = format!("{file} tcId {} ({})", test["tcId"], test["comment"]);
                    match test["result"].as_str().unwrap() {
                        "valid" => {
                            assert!(verified, "{id} is valid but was refused");
                            counted.0 += 1;
                        }
                        "invalid" => {
                            assert!(!verified, "{id} is invalid but verified");
                            counted.1 += 1;
                        }
                        _ => counted.2 += 1,
                    }
                }
            }
        }
        // Guard against a silently empty run.
        assert!(counted.0 > 300 && counted.1 > 1000, "{counted:?}");
    }
}

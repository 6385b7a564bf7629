//! Reference vectors through the native verifier: RFC 7520 §4.1 (RS256), §4.2 (PS384),
//! §4.3 (ES512) and RFC 8037 §A.4 (EdDSA), from tests/vectors/rfc7520 (see its README). Each
//! verifies; each fails with any single bit of its signature flipped. Also every algorithm
//! signed by the test issuer, bit-flipped the same way.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use super::test_issuer::TestIssuer;
use crate::jose::alg::Alg;
use crate::jose::keys::{check_signature_shape, parse_key_set};
use crate::ports::SignatureVerifier;
use crate::testing::memory::block_on;
use crate::testing::native_crypto::RustCryptoVerifier;

/// Whether `compact` verifies with `jwk` under `alg`, through the same shape check and
/// verifier the pipeline uses.
fn verifies(alg: Alg, jwk: &Value, signing_input: &str, signature: &[u8]) -> bool {
    let set = parse_key_set(json!({ "keys": [jwk] }).to_string().as_bytes()).expect("usable key");
    let key = &set.keys[0];
    check_signature_shape(alg, key, signature).is_ok()
        && block_on(RustCryptoVerifier.verify(alg, key, signing_input.as_bytes(), signature))
            .expect("key loads")
}

/// Verifies once as given, and fails for every single-bit flip of the signature.
fn assert_verifies_and_every_flip_fails(alg: Alg, jwk: &Value, compact: &str) {
    let (signing_input, signature) = compact.rsplit_once('.').expect("compact JWS");
    let signature = Base64UrlUnpadded::decode_vec(signature).expect("base64url signature");
    assert!(
        verifies(alg, jwk, signing_input, &signature),
        "{} vector must verify",
        alg.name()
    );
    for bit in 0..signature.len() * 8 {
        let mut flipped = signature.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            !verifies(alg, jwk, signing_input, &flipped),
            "{}: flipping bit {bit} must fail",
            alg.name()
        );
    }
}

#[test]
fn rfc7520_and_rfc8037_vectors() {
    for (file, alg) in [
        ("4_1.rsa_v15_signature.json", Alg::Rs256),
        ("4_2.rsa-pss_signature.json", Alg::Ps384),
        ("4_3.ecdsa_signature.json", Alg::Es512),
        ("ed25519_signature.json", Alg::EdDsa),
    ] {
        let path = format!(
            "{}/tests/vectors/rfc7520/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(vector["input"]["alg"], alg.name());
        let mut jwk = vector["input"]["key"].clone();
        jwk.as_object_mut().unwrap().remove("d"); // verify with the public half only
        let compact = vector["output"]["compact"].as_str().unwrap();
        assert_verifies_and_every_flip_fails(alg, &jwk, compact);
    }
}

#[test]
fn every_algorithm_round_trips_and_every_flip_fails() {
    let issuer = TestIssuer::new();
    for alg in Alg::ALL {
        let compact = issuer.sign(alg, &json!({"sub": "flip"}), json!({}));
        assert_verifies_and_every_flip_fails(alg, &issuer.public_jwk(alg), &compact);
    }
}

#[test]
fn a_signature_for_one_algorithm_does_not_verify_as_another_of_the_same_key() {
    let issuer = TestIssuer::new();
    let jwk = issuer.public_jwk(Alg::Rs256);
    let compact = issuer.sign(Alg::Rs256, &json!({"sub": "x"}), json!({}));
    let (input, signature) = compact.rsplit_once('.').unwrap();
    let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
    for other in [Alg::Rs384, Alg::Rs512, Alg::Ps256] {
        assert!(
            !verifies(other, &jwk, input, &signature),
            "{}",
            other.name()
        );
    }
}

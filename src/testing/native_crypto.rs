//! Pure-Rust signature verification (RustCrypto), the native twin of the Web Crypto verifier.
//! Only in native builds: the worker verifies through `crypto.subtle`, ≈ 10× faster in wasm.
//! Both must accept and refuse the same test vectors.

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::signature::Verifier as _;
use serde_json::Value;

use crate::jose::alg::{Alg, Hash};
use crate::jose::keys::{IssuerKey, KeyKind};
use crate::ports::{SignatureVerifier, VerifyError};

/// Verifies with RustCrypto's rsa, p256, p384, p521 and ed25519-compact.
#[derive(Debug, Default)]
pub struct RustCryptoVerifier;

fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, VerifyError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| Base64UrlUnpadded::decode_vec(text).ok())
        .ok_or_else(|| VerifyError(format!("the key has no usable {name:?}")))
}

fn sec1_point(jwk: &Value) -> Result<Vec<u8>, VerifyError> {
    let mut point = vec![0x04];
    point.extend(member(jwk, "x")?);
    point.extend(member(jwk, "y")?);
    Ok(point)
}

fn bad_key(error: impl std::fmt::Display) -> VerifyError {
    VerifyError(format!("the key cannot be loaded: {error}"))
}

impl SignatureVerifier for RustCryptoVerifier {
    async fn verify(
        &self,
        alg: Alg,
        key: &IssuerKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifyError> {
        // Read from the text a verifier imports, as Web Crypto reads it.
        let jwk: &serde_json::Value =
            &serde_json::from_str(&key.public_jwk_text).map_err(bad_key)?;
        Ok(match (&key.kind, alg.hash()) {
            (KeyKind::Rsa { .. }, Some(hash)) => {
                let public = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(&member(jwk, "n")?),
                    rsa::BigUint::from_bytes_be(&member(jwk, "e")?),
                )
                .map_err(bad_key)?;
                verify_rsa(alg.is_pss(), hash, public, signing_input, signature)
            }
            (KeyKind::Ec(_), _) => {
                let point = sec1_point(jwk)?;
                match alg {
                    Alg::Es256 => {
                        let key =
                            p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad_key)?;
                        p256::ecdsa::Signature::from_slice(signature)
                            .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
                    }
                    Alg::Es384 => {
                        let key =
                            p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad_key)?;
                        p384::ecdsa::Signature::from_slice(signature)
                            .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
                    }
                    Alg::Es512 => {
                        let key =
                            p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad_key)?;
                        p521::ecdsa::Signature::from_slice(signature)
                            .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
                    }
                    _ => {
                        return Err(VerifyError(format!(
                            "{} does not use an EC key",
                            alg.name()
                        )))
                    }
                }
            }
            (KeyKind::Ed25519, None) => {
                let key =
                    ed25519_compact::PublicKey::from_slice(&member(jwk, "x")?).map_err(bad_key)?;
                ed25519_compact::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
            }
            _ => return Err(VerifyError(format!("{} does not fit this key", alg.name()))),
        })
    }
}

fn verify_rsa(
    pss: bool,
    hash: Hash,
    key: rsa::RsaPublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use rsa::{pkcs1v15, pss as rsa_pss};
    use sha2::{Sha256, Sha384, Sha512};
    macro_rules! check {
        ($verifying_key:expr, $signature:ty) => {
            <$signature>::try_from(signature)
                .is_ok_and(|sig| $verifying_key.verify(message, &sig).is_ok())
        };
    }
    // JWS's PSS uses MGF1 with the same hash and a salt as long as the hash (RFC 7518 §3.5).
    match (pss, hash) {
        (false, Hash::Sha256) => check!(
            pkcs1v15::VerifyingKey::<Sha256>::new(key),
            pkcs1v15::Signature
        ),
        (false, Hash::Sha384) => check!(
            pkcs1v15::VerifyingKey::<Sha384>::new(key),
            pkcs1v15::Signature
        ),
        (false, Hash::Sha512) => check!(
            pkcs1v15::VerifyingKey::<Sha512>::new(key),
            pkcs1v15::Signature
        ),
        (true, Hash::Sha256) => check!(
            rsa_pss::VerifyingKey::<Sha256>::new_with_salt_len(key, 32),
            rsa_pss::Signature
        ),
        (true, Hash::Sha384) => check!(
            rsa_pss::VerifyingKey::<Sha384>::new_with_salt_len(key, 48),
            rsa_pss::Signature
        ),
        (true, Hash::Sha512) => check!(
            rsa_pss::VerifyingKey::<Sha512>::new_with_salt_len(key, 64),
            rsa_pss::Signature
        ),
    }
}

//! Web Crypto (`crypto.subtle`) behind the core's [`Signer`] and [`SignatureVerifier`] traits.
//! Imported keys are kept per isolate, so a warm exchange imports nothing.

use worker::js_sys::{self, Array, Object, Uint8Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Crypto, CryptoKey, SubtleCrypto};

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::apart::roomy_map;
use crate::config::signing_keys::SigningKey;
use crate::jose::alg::{Alg, KeyNeed};
use crate::jose::keys::IssuerKey;
use crate::ports::{SignError, SignatureVerifier, Signer, VerifyError};

/// Most imported issuer keys kept per isolate; past it the cache starts over. Real isolates
/// see a few issuers with a few keys each.
const MAX_IMPORTED_KEYS: usize = 256;

/// An ES256 private key imported into Web Crypto once per isolate.
pub struct WebCryptoSigner {
    kid: String,
    key: CryptoKey,
    /// `{name: "ECDSA", hash: "SHA-256"}`, built once.
    algorithm: Object,
}

thread_local! {
    /// `crypto.subtle`, looked up once per isolate.
    static SUBTLE: RefCell<Option<SubtleCrypto>> = const { RefCell::new(None) };
}

fn subtle() -> Result<SubtleCrypto, SignError> {
    if let Some(subtle) = SUBTLE.with(|subtle| subtle.borrow().clone()) {
        return Ok(subtle);
    }
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .ok()
        .filter(|crypto| !crypto.is_undefined())
        .ok_or_else(|| SignError("this runtime has no crypto global".into()))?;
    let subtle = crypto.unchecked_into::<Crypto>().subtle();
    SUBTLE.with(|slot| *slot.borrow_mut() = Some(subtle.clone()));
    Ok(subtle)
}

fn json_object(json: &str) -> Result<Object, SignError> {
    JSON::parse(json)
        .map(JsCast::unchecked_into)
        .map_err(|_| SignError("could not build a Web Crypto argument".into()))
}

/// Web Crypto's own message, or a fixed one: a rejection never contains key material.
fn describe(error: JsValue) -> SignError {
    let message = js_sys::Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|message| message.as_string())
        .unwrap_or_else(|| "unknown error".into());
    SignError(message)
}

impl WebCryptoSigner {
    /// Imports a `SIGNING_KEYS` key as a non-extractable ECDSA P-256 signing key.
    pub async fn import(key: &SigningKey) -> Result<Self, SignError> {
        let jwk = json_object(&key.private_jwk.to_string())?;
        let algorithm = json_object(r#"{"name":"ECDSA","namedCurve":"P-256"}"#)?;
        let usages = Array::of1(&JsValue::from_str("sign"));
        let promise = subtle()?
            .import_key_with_object("jwk", &jwk, &algorithm, false, &usages)
            .map_err(describe)?;
        let key_object = JsFuture::from(promise).await.map_err(describe)?;
        Ok(Self {
            kid: key.kid.clone(),
            key: key_object.unchecked_into(),
            algorithm: json_object(r#"{"name":"ECDSA","hash":"SHA-256"}"#)?,
        })
    }
}

impl Signer for WebCryptoSigner {
    fn kid(&self) -> &str {
        &self.kid
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let promise = subtle()?
            .sign_with_object_and_u8_array(&self.algorithm, &self.key, signing_input)
            .map_err(describe)?;
        let signature = JsFuture::from(promise).await.map_err(describe)?;
        // Web Crypto's ECDSA signature is already r‖s, the form JWS wants.
        Ok(Uint8Array::new(&signature).to_vec())
    }
}

/// Verifies workload tokens with Web Crypto, keeping each imported key.
#[derive(Default)]
pub struct WebCryptoVerifier {
    /// alg → serialized public JWK → the imported key. The few algorithms in use are found by
    /// a scan rather than a second map, whose code a new isolate's first exchange would compile.
    keys: RefCell<Vec<(Alg, HashMap<String, CryptoKey>)>>,
    /// How many keys `keys` holds.
    imported: Cell<usize>,
    /// The verify parameters of each algorithm in use, built once.
    verify_parameters: RefCell<Vec<(Alg, Object)>>,
}

/// Web Crypto's import and verify parameters for `alg`.
fn parameters(alg: Alg) -> (String, String) {
    let hash = alg.hash().map(|hash| hash.name()).unwrap_or("");
    match alg.key_need() {
        KeyNeed::Rsa if alg.is_pss() => (
            format!(r#"{{"name":"RSA-PSS","hash":"{hash}"}}"#),
            format!(
                r#"{{"name":"RSA-PSS","saltLength":{}}}"#,
                alg.hash().map(|hash| hash.output_bytes()).unwrap_or(0)
            ),
        ),
        KeyNeed::Rsa => (
            format!(r#"{{"name":"RSASSA-PKCS1-v1_5","hash":"{hash}"}}"#),
            r#"{"name":"RSASSA-PKCS1-v1_5"}"#.to_owned(),
        ),
        KeyNeed::Ec(curve) => (
            format!(r#"{{"name":"ECDSA","namedCurve":"{}"}}"#, curve.name()),
            format!(r#"{{"name":"ECDSA","hash":"{hash}"}}"#),
        ),
        KeyNeed::Ed25519 => (
            r#"{"name":"Ed25519"}"#.to_owned(),
            r#"{"name":"Ed25519"}"#.to_owned(),
        ),
    }
}

impl WebCryptoVerifier {
    async fn imported(&self, alg: Alg, key: &IssuerKey) -> Result<CryptoKey, VerifyError> {
        let cached = self
            .keys
            .borrow()
            .iter()
            .find(|(of, _)| *of == alg)
            .and_then(|(_, keys)| keys.get(&key.public_jwk_text))
            .cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let to_verify = |error: SignError| VerifyError(error.0);
        let jwk = json_object(&key.public_jwk_text).map_err(to_verify)?;
        let algorithm = json_object(&parameters(alg).0).map_err(to_verify)?;
        let usages = Array::of1(&JsValue::from_str("verify"));
        let promise = subtle()
            .map_err(to_verify)?
            .import_key_with_object("jwk", &jwk, &algorithm, false, &usages)
            .map_err(|error| to_verify(describe(error)))?;
        let imported: CryptoKey = JsFuture::from(promise)
            .await
            .map_err(|error| to_verify(describe(error)))?
            .unchecked_into();
        let mut keys = self.keys.borrow_mut();
        if self.imported.get() >= MAX_IMPORTED_KEYS {
            keys.clear();
            self.imported.set(0);
        }
        let of_alg = match keys.iter().position(|(of, _)| *of == alg) {
            Some(at) => &mut keys[at].1,
            None => {
                keys.push((alg, roomy_map()));
                &mut keys.last_mut().expect("just pushed").1
            }
        };
        let previous = of_alg.insert(key.public_jwk_text.clone(), imported.clone());
        if previous.is_none() {
            self.imported.set(self.imported.get() + 1);
        }
        Ok(imported)
    }
}

impl SignatureVerifier for WebCryptoVerifier {
    async fn verify(
        &self,
        alg: Alg,
        key: &IssuerKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<bool, VerifyError> {
        let crypto_key = self.imported(alg, key).await?;
        let to_verify = |error: SignError| VerifyError(error.0);
        let cached = self
            .verify_parameters
            .borrow()
            .iter()
            .find(|(of, _)| *of == alg)
            .map(|(_, algorithm)| algorithm.clone());
        let algorithm = match cached {
            Some(algorithm) => algorithm,
            None => {
                let algorithm = json_object(&parameters(alg).1).map_err(to_verify)?;
                self.verify_parameters
                    .borrow_mut()
                    .push((alg, algorithm.clone()));
                algorithm
            }
        };
        let promise = subtle()
            .map_err(to_verify)?
            .verify_with_object_and_u8_array_and_u8_array(
                &algorithm,
                &crypto_key,
                signature,
                signing_input,
            )
            .map_err(|error| to_verify(describe(error)))?;
        // A rejected promise (say, a malformed signature) is a signature that does not verify.
        Ok(JsFuture::from(promise)
            .await
            .ok()
            .and_then(|valid| valid.as_bool())
            .unwrap_or(false))
    }
}

//! Web Crypto (`crypto.subtle`) behind the core's [`Signer`] trait.

use worker::js_sys::{self, Array, Object, Uint8Array, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Crypto, CryptoKey, SubtleCrypto};

use crate::ports::{SignError, Signer};
use crate::signing_keys::SigningKey;

/// An ES256 private key imported into Web Crypto once per isolate.
pub struct WebCryptoSigner {
    kid: String,
    key: CryptoKey,
}

fn subtle() -> Result<SubtleCrypto, SignError> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|_| SignError("this runtime has no crypto global".into()))?;
    Ok(crypto.unchecked_into::<Crypto>().subtle())
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
        })
    }
}

impl Signer for WebCryptoSigner {
    fn kid(&self) -> &str {
        &self.kid
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SignError> {
        let algorithm = json_object(r#"{"name":"ECDSA","hash":"SHA-256"}"#)?;
        let promise = subtle()?
            .sign_with_object_and_u8_array(&algorithm, &self.key, signing_input)
            .map_err(describe)?;
        let signature = JsFuture::from(promise).await.map_err(describe)?;
        // Web Crypto's ECDSA signature is already r‖s, the form JWS wants.
        Ok(Uint8Array::new(&signature).to_vec())
    }
}

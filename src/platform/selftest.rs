//! Routes only in the `selftest` build (never deployed):
//!
//! - `POST /__selftest/verify` runs signature test vectors through the Web Crypto verifier, so
//!   the end-to-end suite can hold it to the same Wycheproof vectors as the native one.
//!   Body: `{"alg": "ES256", "jwk": {…}, "cases": [["<msg hex>", "<sig hex>"], …]}`.
//! - `GET /__selftest/panic` panics at once, `GET /__selftest/panic-after-wait` after waiting on
//!   a promise: the suite checks that the next request is served by a fresh instance.
//! - `POST /__selftest/kv-conformance` runs the KV twin's conformance cases on the real
//!   `ACCOUNTS` namespace, under a prefix of its own.

use serde_json::{json, Value};
use worker::js_sys::Promise;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;

use super::kv::WorkersKv;
use super::WebCryptoVerifier;
use crate::http::{Request, Response};
use crate::jose::alg::Alg;
use crate::testing::conformance::kv_conformance;
use crate::testing::vector_check::verify_cases;

pub async fn verify(request: &Request, verifier: &WebCryptoVerifier) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return Response::json(400, &json!({"error": "body must be JSON"}));
    };
    let Some(alg) = body["alg"].as_str().and_then(Alg::parse) else {
        return Response::json(400, &json!({"error": "unknown alg"}));
    };
    let cases: Vec<(String, String)> = body["cases"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .filter_map(|case| {
                    Some((case[0].as_str()?.to_owned(), case[1].as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let results = verify_cases(verifier, alg, &body["jwk"], &cases).await;
    Response::json(200, &json!({ "results": results }))
}

/// Panics, at once or after a wait; never returns.
pub async fn panic(after_wait: bool) -> Response {
    if after_wait {
        let _ = JsFuture::from(Promise::resolve(&JsValue::NULL)).await;
    }
    panic!("selftest: a deliberate panic");
}

/// The KV conformance cases on Workers KV (`ACCOUNTS`), under `conformance:{run}/`.
pub async fn kv(kv: &WorkersKv, run: &str) -> Response {
    let results = kv_conformance(kv, &format!("conformance:{run}/")).await;
    Response::json(200, &json!({ "results": results }))
}

/// `/__selftest/registry/kv-down` and `…/kv-up`: makes the registry's writes into `ACCOUNTS`
/// fail, or work again, so the suite can watch the projection fall behind and catch up.
pub async fn registry(registry: &super::services::WorkersRegistry<'_>, switch: &str) -> Response {
    match registry
        .send_to(&format!("/selftest/{switch}"), String::new())
        .await
    {
        Ok(answer) => Response::json(200, &serde_json::json!({ "done": answer })),
        Err(error) => Response::json(503, &serde_json::json!({ "error": error.0 })),
    }
}

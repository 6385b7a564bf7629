//! The platform layer: the only code that imports `worker`. wasm32 only.
//!
//! It turns the runtime's request into the core's [`Request`], reads vars and secrets into a
//! [`Config`] once per isolate, and implements the core's traits on the Workers runtime:
//! KV ([`kv`]), Web Crypto ([`crypto`]) and the clock.

mod crypto;
mod fetch;
mod kv;
mod registry;
#[cfg(feature = "selftest")]
mod selftest;
mod services;
mod task;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::StreamExt;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::{Date, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;
use worker::worker_sys::Context;
use worker::{event, Env};

use crate::accounts::cache::{AccountCache, CachedStore};
use crate::apart::compiled_apart;
use crate::config::admins::{AdminSecrets, LazyAdmins};
use crate::config::settings::{Settings, Vars};
use crate::config::signing_keys::{SigningKeys, SigningKeysError};
use crate::exchange::key_sets::KeySets;
use crate::http::error::ApiError;
use crate::http::extract::MAX_BODY_BYTES;
use crate::http::router::{self, Isolate};
use crate::http::{Method, Request, Response};
use crate::text::url::split_request_url;

use crypto::{WebCryptoSigner, WebCryptoVerifier};
use fetch::WorkersFetcher;
use kv::{Namespace, Waits, WorkersKv};
use services::{ConsoleLog, JsUrls, WorkersPlatform, WorkersRateLimiter, WorkersRegistry};

/// What an isolate keeps between requests: the core's [`Isolate`] (its checked configuration
/// and caches), the active signing key imported into Web Crypto, and the platform's caches.
struct IsolateState {
    isolate: Isolate,
    /// The active signing key, imported into Web Crypto.
    signer: Option<WebCryptoSigner>,
    /// Imported issuer keys.
    verifier: WebCryptoVerifier,
    /// `ACCOUNTS` reads of the last 10 s.
    accounts: AccountCache,
    /// `SERVER_TIMING=true`: answer with this request's KV and subrequest counts.
    server_timing: bool,
    /// `TOKEN_RATE_LIMIT`, when bound.
    rate_limiter: Option<WorkersRateLimiter>,
    /// The `ACCOUNTS` and `JWKS_CACHE` bindings, looked up once (each lookup fetches the binding
    /// and five of its functions from JS).
    namespaces: Result<(Namespace, Namespace), ApiError>,
}

thread_local! {
    static STATE: RefCell<Option<Rc<IsolateState>>> = const { RefCell::new(None) };
    /// Set by [`forget_prepared`]: a [`prepare`] still under way stores nothing.
    static PREPARED_FORGOTTEN: Cell<bool> = const { Cell::new(false) };
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The worker's fetch handler, called by the JavaScript entry (`src/platform/entry.mjs`) with the
/// runtime's own Request; answers its own Response, or a promise of one when it waits on I/O.
///
/// Not workers-rs's `#[event(fetch)]`: that converts into its Request wrapper, which reads
/// `request.cf` (parsed on access) and copies the URL, and runs the handler as a promise whose
/// every wake-up goes through `queueMicrotask`; together more than the rest of a `/healthz`.
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> JsValue {
    task::run(async move {
        let response = respond(req, env, ctx).await;
        match to_web_response(response) {
            Ok(response) => response.into(),
            Err(error) => unbuildable(error),
        }
    })
}

// The rare branches of every request, out of line: V8 compiles a wasm function whole when it
// is first called, so code inlined into the request's own function is compiled by every cold
// isolate's first request, taken or not.

/// The answer when the response could not be built.
#[cold]
#[inline(never)]
fn unbuildable(error: worker::Error) -> JsValue {
    worker::console_error!("could not build the response: {error:?}");
    let init = web_sys::ResponseInit::new();
    init.set_status(500);
    web_sys::Response::new_with_opt_str_and_init(Some(INTERNAL_ERROR_BODY), &init)
        .map_or(JsValue::UNDEFINED, JsValue::from)
}

/// The answer to a request that could not be read.
#[cold]
#[inline(never)]
fn unreadable(error: worker::Error) -> Response {
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!("the request could not be read: {error}"),
    });
    Response::json(400, &body)
}

/// The request's I/O counts, for benchmarks (`SERVER_TIMING`): a warm exchange shows all zeros.
#[inline(never)]
fn with_server_timing(
    response: Response,
    kv: [&WorkersKv; 2],
    waits: &Waits,
    fetcher: &WorkersFetcher,
) -> Response {
    let timing = format!(
        "kv-read;desc={}, kv-write;desc={}, kv-waits;desc={}, subrequest;desc={}",
        kv[0].reads.get() + kv[1].reads.get(),
        kv[0].writes.get() + kv[1].writes.get(),
        waits.sequential(),
        fetcher.subrequests.get()
    );
    response.with_header("server-timing", &timing)
}

/// Called by the JavaScript entry once, when the isolate starts, with the `env` that
/// `cloudflare:workers` exports: reads and checks the vars and secrets and imports the signing
/// key then, as a server reads its configuration when it boots, rather than on the isolate's
/// first request. Cloudflare starts an isolate while the client's TLS handshake is still under
/// way, so this work is off the first request's path (docs/performance.md; V8's compiling of
/// its code is not: workerd drops the code compiled while the isolate starts). Nothing here is lost if it fails or is not called: the first request
/// builds the same state. The entry keeps what is prepared only if the first request's `env`
/// is the same ([`forget_prepared`]).
#[wasm_bindgen]
pub fn prepare(env: Env) -> JsValue {
    task::run(async move {
        let state = build_state(&env).await;
        if !PREPARED_FORGOTTEN.with(Cell::get) {
            keep(state);
        }
        JsValue::UNDEFINED
    })
}

/// Called by the JavaScript entry on the isolate's first request, before it is handled, when
/// that request's `env` is not the one [`prepare`] was given (a runtime whose importable `env`
/// is empty, under the `disallow_importable_env` flag): the prepared state, stored or still
/// being built, is dropped, and the request builds one from its own `env`.
#[wasm_bindgen]
pub fn forget_prepared() {
    PREPARED_FORGOTTEN.with(|forgotten| forgotten.set(true));
    STATE.with(|state| state.borrow_mut().take());
}

/// The answer when even building the response failed.
const INTERNAL_ERROR_BODY: &str =
    r#"{"error":"server_error","error_description":"the response could not be built"}"#;

async fn respond(req: web_sys::Request, env: Env, ctx: Context) -> Response {
    let started = Date::now() as u64;
    // Apart, as the router's endpoints: its code (settings, keys, Web Crypto imports), which
    // `prepare` has usually run (and V8 compiled) when the isolate started, is not part of this
    // function's.
    let state = compiled_apart(isolate_state(&env)).await;
    let request = match read_request(req).await {
        Ok(request) => request,
        Err(error) => return unreadable(error),
    };
    #[cfg(feature = "selftest")]
    match request.path.as_str() {
        "/__selftest/verify" => return selftest::verify(&request, &state.verifier).await,
        "/__selftest/panic" => return selftest::panic(false).await,
        "/__selftest/panic-after-wait" => return selftest::panic(true).await,
        _ => {}
    }
    let waits = Rc::new(Waits::default());
    let (accounts_kv, jwks_cache) = match &state.namespaces {
        Ok((accounts, jwks_cache)) => (
            // (`Context` has no `Clone` of its own; this clones the JS reference.)
            WorkersKv::new(
                accounts.clone(),
                ctx.clone().unchecked_into(),
                waits.clone(),
            ),
            WorkersKv::new(jwks_cache.clone(), ctx, waits.clone()),
        ),
        Err(error) => return error.clone().into_response(),
    };
    #[cfg(feature = "selftest")]
    if request.path == "/__selftest/kv-conformance" {
        return selftest::kv(&accounts_kv, request.query.as_deref().unwrap_or("run")).await;
    }
    let allow_http_loopback = state
        .isolate
        .settings
        .as_ref()
        .is_ok_and(|settings| settings.allow_http_loopback);
    let platform = WorkersPlatform {
        accounts: CachedStore {
            inner: &accounts_kv,
            cache: &state.accounts,
            now_ms: started,
        },
        jwks_cache,
        fetcher: WorkersFetcher {
            allow_http_loopback,
            subrequests: Cell::new(0),
        },
        verifier: &state.verifier,
        signer: state.signer.as_ref(),
        log: ConsoleLog { started },
        rate_limiter: state.rate_limiter.as_ref(),
        registry: WorkersRegistry { env: &env },
    };
    #[cfg(feature = "selftest")]
    if let Some(switch) = request.path.strip_prefix("/__selftest/registry/") {
        return selftest::registry(&platform.registry, switch).await;
    }
    let response = router::handle(&request, &state.isolate, &platform).await;
    if state.server_timing {
        let kv = [&accounts_kv, &platform.jwks_cache];
        return with_server_timing(response, kv, &waits, &platform.fetcher);
    }
    response
}

/// The isolate's config: the one [`prepare`] built when the isolate started, or else built now.
/// Vars and secrets cannot change under a running isolate: a new deployment or secret version
/// starts new isolates.
async fn isolate_state(env: &Env) -> Rc<IsolateState> {
    if let Some(state) = STATE.with(|state| state.borrow().clone()) {
        return state;
    }
    keep(build_state(env).await)
}

/// Keeps `state` as the isolate's, unless one is kept already. Requests that arrived together
/// while the keys were imported each built a state; the first one stored is kept, with whatever
/// its requests have cached since.
fn keep(state: IsolateState) -> Rc<IsolateState> {
    STATE.with(|slot| slot.borrow_mut().get_or_insert(Rc::new(state)).clone())
}

/// The config read from `env` and checked, the signing key imported.
async fn build_state(env: &Env) -> IsolateState {
    let vars = vars(env);
    let signing_keys = string_binding(env, "SIGNING_KEYS");
    let admins = AdminSecrets {
        admin_token: string_binding(env, "ADMIN_TOKEN"),
        admin_tokens: string_binding(env, "ADMIN_TOKENS"),
        access_team_domain: string_binding(env, "ACCESS_TEAM_DOMAIN"),
        access_aud: string_binding(env, "ACCESS_AUD"),
    };
    let mut signing_keys = SigningKeys::parse(signing_keys.as_deref().unwrap_or(""));
    // Web Crypto checks what the core cannot cheaply: that each point is on the curve and
    // belongs to its private scalar. The active key is kept imported for signing.
    let mut signer = None;
    if let Ok(keys) = &signing_keys {
        for (index, key) in keys.all().iter().enumerate() {
            match WebCryptoSigner::import(key).await {
                Ok(imported) if index == 0 => signer = Some(imported),
                Ok(_) => {}
                Err(problem) => {
                    signing_keys = Err(SigningKeysError::BadKey {
                        index,
                        problem: format!("Web Crypto refused it: {problem}"),
                    });
                    signer = None;
                    break;
                }
            }
        }
    }
    let isolate = Isolate {
        settings: Settings::from_vars(&vars, &JsUrls),
        signing_keys,
        admins: LazyAdmins::new(admins),
        key_sets: KeySets::default(),
    };
    IsolateState {
        isolate,
        signer,
        verifier: WebCryptoVerifier::default(),
        accounts: AccountCache::default(),
        server_timing: string_binding(env, "SERVER_TIMING").as_deref() == Some("true"),
        rate_limiter: env
            .rate_limiter("TOKEN_RATE_LIMIT")
            .ok()
            .map(WorkersRateLimiter),
        namespaces: kv(env, "ACCOUNTS").and_then(|accounts| Ok((accounts, kv(env, "JWKS_CACHE")?))),
    }
}

/// The contract's vars, as the worker and the registry's object both read them.
fn vars(env: &Env) -> Vars {
    Vars {
        issuer: string_binding(env, "ISSUER"),
        tenant_id: string_binding(env, "TENANT_ID"),
        scopes: string_binding(env, "SCOPES"),
        clock_skew_seconds: string_binding(env, "CLOCK_SKEW_SECONDS"),
        allow_http_loopback: string_binding(env, "ALLOW_HTTP_LOOPBACK"),
    }
}

fn kv(env: &Env, binding: &'static str) -> Result<Namespace, ApiError> {
    Namespace::from_env(env, binding).map_err(|_| ApiError::Misconfigured {
        setting: binding,
        problem: "is not bound to a KV namespace (see wrangler.toml)".into(),
    })
}

/// A var or a secret: to the worker both are string properties of `env` (a var that is not a
/// string, a TOML number say, reads as absent, as it does through workers-rs). Read directly:
/// workers-rs's `Env::var` and `Env::secret` check the binding's type by its constructor's
/// name and format it, code that a cold isolate compiles and runs for each of its ten vars
/// before its first answer (~3 ms of a first `/healthz` in `npm run bench:profile`).
fn string_binding(env: &Env, name: &str) -> Option<String> {
    let env: &JsValue = env.as_ref();
    worker::js_sys::Reflect::get(env, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

/// Largest oversized body still read (and dropped) so the connection stays usable, in bytes.
/// Past it, the connection is sacrificed rather than the isolate's time.
const MAX_DISCARDED_BODY_BYTES: u64 = 1024 * 1024;

/// The request headers the core looks at.
const CORE_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "cf-connecting-ip",
    "tppl-api-key",
    "prefer",
    "if-match",
    "cf-ray",
    "cf-access-jwt-assertion",
];

async fn read_request(req: web_sys::Request) -> worker::Result<Request> {
    // The runtime's URL is absolute and already parsed once; split it rather than parse again.
    let url = req.url();
    let (origin, path, query) = split_request_url(&url).ok_or_else(|| {
        worker::Error::RustError(format!("the request URL {url:?} is not absolute"))
    })?;
    let (origin, path, query) = (origin.to_owned(), path.to_owned(), query.map(str::to_owned));
    // Only the headers the core reads: copying every header across the wasm boundary costs
    // more than the rest of a /healthz request.
    let mut headers = Vec::with_capacity(CORE_HEADERS.len());
    let request_headers = req.headers();
    for name in CORE_HEADERS {
        if let Some(value) = request_headers.get(name)? {
            headers.push(((*name).to_owned(), value));
        }
    }
    // Only a body declared to fit is read whole. Any other is read through `read_capped`, which
    // keeps no more than the core needs to answer 413; the core also sees the Content-Length.
    let declared_length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, length)| length.trim().parse::<u64>().ok());
    let method = Method::parse(&req.method());
    let body = match method {
        Method::Get | Method::Head => Vec::new(),
        _ if declared_length.is_some_and(|length| length <= MAX_BODY_BYTES as u64) => {
            let buffer = JsFuture::from(req.array_buffer()?).await?;
            Uint8Array::new(&buffer).to_vec()
        }
        // Past this, the connection is sacrificed: nothing is read.
        _ if declared_length.is_some_and(|length| length > MAX_DISCARDED_BODY_BYTES) => Vec::new(),
        // Declared too large to take, or not declared at all (a chunked upload).
        _ => compiled_apart(read_capped(req)).await?,
    };
    Ok(Request {
        method,
        origin,
        path,
        query,
        headers,
        body,
    })
}

/// Reads a body not known to fit, chunk by chunk: keeps at most one byte more than any endpoint
/// takes (so the core answers 413, as it would for the whole body) and drops the rest. A body
/// left unread costs the client its keep-alive connection, so one of moderate size is read to
/// its end; past [`MAX_DISCARDED_BODY_BYTES`] reading stops. A chunked upload of any size thus
/// never grows the isolate's memory by more than the limit.
async fn read_capped(req: web_sys::Request) -> worker::Result<Vec<u8>> {
    if req.body().is_none() {
        return Ok(Vec::new());
    }
    let keep = MAX_BODY_BYTES + 1;
    let mut kept = Vec::new();
    let mut read: u64 = 0;
    let mut stream = worker::Request::from(req).stream()?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        read += chunk.len() as u64;
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if read > MAX_DISCARDED_BODY_BYTES {
            break;
        }
    }
    Ok(kept)
}

/// The core's response as the runtime's.
fn to_web_response(response: Response) -> worker::Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &response.headers {
        headers.append(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status);
    init.set_headers(&headers);
    let body = response.body;
    // No body at all for an empty one: a 204 or 304 must not have even an empty body.
    let created = if body.is_empty() {
        web_sys::Response::new_with_opt_str_and_init(None, &init)
    } else {
        // Copied into a JavaScript array rather than handed over as a view of wasm memory: in
        // workerd the view measured slower at concurrency 1 (docs/performance.md).
        web_sys::Response::new_with_opt_js_u8_array_and_init(
            Some(&Uint8Array::from(body.as_slice())),
            &init,
        )
    };
    created.map_err(|error: JsValue| worker::Error::from(error))
}

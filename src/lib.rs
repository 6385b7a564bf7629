//! edge-sts: a Security Token Service for Workload Identity Federation, as a Cloudflare Worker.
//!
//! A workload presents a short-lived JWT from its own identity provider; edge-sts checks it
//! against a service account an administrator registered and answers a 15-minute access token.
//!
//! Layout: everything outside `platform` is the **core** — plain Rust with no `worker` import,
//! no clock and no network, tested natively with `cargo test`. `platform` (wasm32 only) is the
//! thin layer that reads the Workers runtime (`Env`, KV, `fetch`, Web Crypto, `Date.now()`) and
//! reaches the core through the traits in [`ports`].

pub mod accounts;
pub mod admin;
pub mod app;
pub mod console;
pub mod discovery;
pub mod error;
pub mod form;
pub mod glob;
pub mod http;
pub mod json;
pub mod memory;
#[cfg(not(target_arch = "wasm32"))]
pub mod native_crypto;
pub mod ports;
pub mod settings;
pub mod signing_keys;
pub mod text;
pub mod token;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod platform;

//! edge-sts: a Security Token Service for Workload Identity Federation, as a Cloudflare Worker.
//!
//! A workload presents a short-lived JWT from its own identity provider; edge-sts checks it
//! against a service account an administrator registered and answers a 15-minute access token.
//!
//! The house, from the ground up (each module imports only those below it):
//!
//! | module | what |
//! |---|---|
//! | [`text`] | strict JSON, forms, WHATWG URLs, globs, character sets |
//! | `apart` | a future compiled as its own function, for V8's compile-on-first-call |
//! | [`jose`] | the workload's token: parsing, algorithms, JWK sets, time rules, the `reason` list |
//! | [`config`] | the deployment's vars and `SIGNING_KEYS`, checked once |
//! | [`ports`] | the [`ports::Platform`] the core reaches the outside world through |
//! | [`accounts`] | service accounts: fields, validation, the KV read model |
//! | [`registry`] | the one writer of accounts: commands, the audit trail, the read model it projects |
//! | [`policy`] | an account's checks of a verified token, one named list |
//! | [`exchange`] | the pipeline: token in, access token out; the key-set cache; the dry run |
//! | [`http`] | the HTTP shell: router, extractors, endpoints, the one error type |
//! | `platform` | wasm32 only: the Workers runtime behind the ports, the only code importing `worker` |
//! | [`testing`] | in-memory twins of the ports, test issuers and vectors (tests only) |
//!
//! Everything but `platform` is the **core**: no `worker` import, no clock, no network;
//! `cargo test` runs it natively. docs/architecture.md says why it is shaped so.

pub(crate) mod accounts;
mod apart;
pub(crate) mod config;
pub(crate) mod exchange;
pub mod http;
pub(crate) mod jose;
pub(crate) mod policy;
pub mod ports;
pub(crate) mod registry;
pub(crate) mod text;

#[cfg(any(test, feature = "testing", feature = "selftest"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod platform;

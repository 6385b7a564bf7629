//! The token exchange: a workload's JWT in, a 15-minute access token out.
//!
//! | module | what |
//! |---|---|
//! | [`reason`] | SPEC.md's stable `reason` list |
//! | [`alg`] | accepted algorithms and the keys they need |
//! | [`jws`] | parsing the compact JWS and its header |
//! | [`keys`] | issuer key sets: usable keys, selection, signature shape |
//! | [`key_sets`] | fetching and caching key sets and discovery documents |
//! | [`claims`] | required claims, time rules, the account's policy |
//!
//! No I/O here except through the traits of [`crate::ports`].

pub mod alg;
pub mod claims;
pub mod dry_run;
pub mod endpoint;
pub mod exchange;
pub mod introspect;
pub mod jws;
pub mod key_sets;
pub mod keys;
pub mod reason;
#[cfg(any(test, feature = "selftest"))]
pub mod vector_check;

#[cfg(test)]
pub mod test_issuer;
#[cfg(test)]
mod vectors;

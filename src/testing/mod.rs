//! Test support, outside the production build: in-memory twins of the ports, a RustCrypto
//! verifier standing in for Web Crypto, a test issuer and the RFC 7520 / Wycheproof vectors.
//! Compiled for `cargo test`, for `tests/fuzz.rs` (feature `testing`) and, for the Wycheproof
//! run in workerd, the `selftest` build.

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod conformance;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod fuzzing;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(all(any(test, feature = "testing"), not(target_arch = "wasm32")))]
pub mod native_crypto;
#[cfg(all(any(test, feature = "testing"), not(target_arch = "wasm32")))]
pub mod platform;
#[cfg(all(any(test, feature = "testing"), not(target_arch = "wasm32")))]
pub mod registry;
#[cfg(test)]
pub(crate) mod test_issuer;
#[cfg(any(test, feature = "selftest"))]
pub(crate) mod vector_check;
#[cfg(test)]
mod vectors;

//! Code kept off a new isolate's first request.
//!
//! V8 compiles each wasm function on its first call, and a cold isolate's first request pays
//! for compiling every function it enters, whole: the branches it does not take as well. An
//! `async fn` awaited directly has its state machine inlined into its caller's, so a caller
//! that awaits one of several futures (a route, one of two lookups) carries all of them. Behind
//! [`compiled_apart`] each stays a function of its own, compiled only when it first runs; and a
//! cache made by [`roomy_map`] does not grow (a function per entry type) on its first entries
//! (docs/performance.md measures what each saves).

use std::future::Future;
use std::pin::Pin;

/// `future` behind a pointer (one allocation), its state machine not inlined into the caller's.
pub(crate) fn compiled_apart<'a, T>(
    future: impl Future<Output = T> + 'a,
) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(future)
}

/// Entries an isolate's caches have room for before they first grow (at least: the map rounds
/// its table up).
pub(crate) const FIRST_ENTRIES: usize = 16;

/// An empty map with room for at least [`FIRST_ENTRIES`]: growing a map runs a function of its own for
/// each entry type (the table's rehash), which the first requests of a new isolate, each adding
/// an entry or two, then neither run nor compile.
pub(crate) fn roomy_map<K, V>() -> std::collections::HashMap<K, V> {
    std::collections::HashMap::with_capacity(FIRST_ENTRIES)
}

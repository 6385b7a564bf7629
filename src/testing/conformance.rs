//! The KV twin held to Workers KV: the same cases run natively on `MemoryStore` (`cargo test`)
//! and in workerd on the real local KV (the selftest build's `/__selftest/kv-conformance`,
//! from `tests/e2e/runtime.test.mjs`), so "behaves like KV" is a claim that is checked
//! (workers-oauth-provider's storage conformance suite does the same for its backends).
//! Each case works under its own key prefix, so the cases do not see each other.

use serde::Serialize;

use crate::ports::KeyValueStore;

/// One case's outcome.
#[derive(Debug, Serialize)]
pub struct CaseResult {
    pub case: &'static str,
    pub passed: bool,
    /// What differed, when it failed.
    pub detail: String,
}

/// Runs every case on `kv` under `prefix` (a namespace of the store no one else writes).
pub async fn kv_conformance<K: KeyValueStore>(kv: &K, prefix: &str) -> Vec<CaseResult> {
    let mut results = Vec::new();
    let cases: [(&'static str, Outcome); 12] = [
        (
            "an absent key reads as none, and deleting it is no error",
            absent(kv, &format!("{prefix}absent/")).await,
        ),
        (
            "a put reads back, and an overwrite wins",
            round_trip(kv, &format!("{prefix}put/")).await,
        ),
        (
            "a list is in byte order and keeps to its prefix",
            order(kv, &format!("{prefix}order/")).await,
        ),
        (
            "limit and cursor page through every key once; the last page has no cursor",
            paging(kv, &format!("{prefix}paging/")).await,
        ),
        (
            "a bulk read answers in the order asked, absent keys as none",
            bulk(kv, &format!("{prefix}bulk/")).await,
        ),
        ("a bulk read of no keys is empty", bulk_of_none(kv).await),
        (
            "a bulk read of one key answers it, or its absence",
            bulk_of_one(kv, &format!("{prefix}one/")).await,
        ),
        (
            "a bulk read of more than 100 keys answers each, in order",
            bulk_of_101(kv, &format!("{prefix}bulk-101/")).await,
        ),
        (
            "a read of a key over 512 bytes fails, one or in bulk",
            long_key(kv, &format!("{prefix}long-key/")).await,
        ),
        (
            "a write of a key over 512 bytes fails",
            long_key_write(kv, &format!("{prefix}long-key-write/")).await,
        ),
        (
            "a TTL of 60 s or more is kept, one under 60 s refused",
            ttl(kv, &format!("{prefix}ttl/")).await,
        ),
        (
            "a delete removes the key from reads and lists",
            delete(kv, &format!("{prefix}delete/")).await,
        ),
    ];
    for (case, outcome) in cases {
        results.push(CaseResult {
            case,
            passed: outcome.is_ok(),
            detail: outcome.err().unwrap_or_default(),
        });
    }
    results
}

type Outcome = Result<(), String>;

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, wanted: T) -> Outcome {
    if got == wanted {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, wanted {wanted:?}"))
    }
}

fn fail(what: &str) -> impl FnOnce(crate::ports::StorageError) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// Writes each `(name, value)` under the prefix `p`, in order.
async fn put_all<K: KeyValueStore>(kv: &K, p: &str, entries: &[(&str, &str)]) -> Outcome {
    for (name, value) in entries {
        kv.put(&format!("{p}{name}"), value, None)
            .await
            .map_err(fail("put"))?;
    }
    Ok(())
}

async fn absent<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let key = format!("{p}nothing");
    expect("get", kv.get(&key).await.map_err(fail("get"))?, None)?;
    kv.delete(&key).await.map_err(fail("delete"))
}

async fn round_trip<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let key = format!("{p}k");
    kv.put(&key, "one", None).await.map_err(fail("put"))?;
    expect(
        "read",
        kv.get(&key).await.map_err(fail("get"))?.as_deref(),
        Some("one"),
    )?;
    kv.put(&key, "two ✓", None).await.map_err(fail("put"))?;
    expect(
        "overwrite",
        kv.get(&key).await.map_err(fail("get"))?.as_deref(),
        Some("two ✓"),
    )
}

async fn order<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    put_all(kv, p, &["b", "a~", "ab", "A", "a"].map(|name| (name, name))).await?;
    // A key just outside the prefix (the prefix without its final '/') is not listed.
    let outside = format!("{}-outside", p.trim_end_matches('/'));
    kv.put(&outside, "x", None).await.map_err(fail("put"))?;
    let page = kv.list(p, None, 100).await.map_err(fail("list"))?;
    let names: Vec<&str> = page.keys.iter().map(|key| &key[p.len()..]).collect();
    expect("keys", names, vec!["A", "a", "ab", "a~", "b"])?;
    expect("cursor", page.cursor, None)
}

async fn paging<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let names = ["k1", "k2", "k3", "k4", "k5"];
    put_all(kv, p, &names.map(|name| (name, name))).await?;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let page = kv
            .list(p, cursor.as_deref(), 2)
            .await
            .map_err(fail("list"))?;
        if page.keys.len() > 2 {
            return Err(format!("a page of limit 2 held {}", page.keys.len()));
        }
        seen.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let wanted: Vec<String> = names.iter().map(|name| format!("{p}{name}")).collect();
    expect("every key once, in order", seen, wanted)
}

async fn bulk<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    put_all(kv, p, &[("x", "X"), ("y", "Y")]).await?;
    let keys = [format!("{p}y"), format!("{p}missing"), format!("{p}x")];
    let values = kv.get_many(&keys).await.map_err(fail("get_many"))?;
    expect(
        "values",
        values,
        vec![Some("Y".to_owned()), None, Some("X".to_owned())],
    )
}

async fn bulk_of_none<K: KeyValueStore>(kv: &K) -> Outcome {
    expect(
        "no keys",
        kv.get_many(&[]).await.map_err(fail("get_many of none"))?,
        vec![],
    )
}

/// One key (which the platform reads with a plain `get`): its value, or `None`.
async fn bulk_of_one<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    put_all(kv, p, &[("x", "X")]).await?;
    let found = kv.get_many(&[format!("{p}x")]).await;
    expect(
        "a stored key",
        found.map_err(fail("get_many of one"))?,
        vec![Some("X".to_owned())],
    )?;
    let missing = kv.get_many(&[format!("{p}missing")]).await;
    expect(
        "a missing key",
        missing.map_err(fail("get_many of one"))?,
        vec![None],
    )
}

/// Past [`crate::ports::MAX_BULK_GET_KEYS`] a bulk read is made in parts; the answer is still
/// one value per key asked, in order.
async fn bulk_of_101<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    put_all(kv, p, &[("first", "1"), ("last", "101")]).await?;
    let mut keys: Vec<String> = (1..100).map(|n| format!("{p}missing-{n}")).collect();
    keys.insert(0, format!("{p}first"));
    keys.push(format!("{p}last"));
    let values = kv.get_many(&keys).await.map_err(fail("get_many of 101"))?;
    let mut wanted = vec![None; 101];
    wanted[0] = Some("1".to_owned());
    wanted[100] = Some("101".to_owned());
    expect("values", values, wanted)
}

/// Workers KV refuses a key over 512 bytes; the store says so as an error (never a panic, nor
/// an absent value).
async fn long_key<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let long = format!("{p}{}", "k".repeat(513));
    if let Ok(value) = kv.get(&long).await {
        return Err(format!("a get of a 513-byte key answered {value:?}"));
    }
    match kv.get_many(&[format!("{p}short"), long]).await {
        Err(_) => Ok(()),
        Ok(values) => Err(format!(
            "a bulk read with a 513-byte key answered {values:?}"
        )),
    }
}

async fn long_key_write<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    match kv.put(&format!("{p}{}", "k".repeat(513)), "v", None).await {
        Err(_) => Ok(()),
        Ok(()) => Err("a put of a 513-byte key succeeded".into()),
    }
}

async fn ttl<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let key = format!("{p}kept");
    kv.put(&key, "v", Some(60))
        .await
        .map_err(fail("put with 60 s"))?;
    expect(
        "read",
        kv.get(&key).await.map_err(fail("get"))?.as_deref(),
        Some("v"),
    )?;
    match kv.put(&format!("{p}short"), "v", Some(30)).await {
        Err(_) => Ok(()),
        Ok(()) => Err("a TTL of 30 s was accepted".into()),
    }
}

async fn delete<K: KeyValueStore>(kv: &K, p: &str) -> Outcome {
    let key = format!("{p}gone");
    kv.put(&key, "v", None).await.map_err(fail("put"))?;
    kv.delete(&key).await.map_err(fail("delete"))?;
    expect("read", kv.get(&key).await.map_err(fail("get"))?, None)?;
    let page = kv.list(p, None, 100).await.map_err(fail("list"))?;
    expect("list", page.keys, Vec::<String>::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::{block_on, MemoryStore};

    #[test]
    fn the_kv_twin_passes_every_case() {
        let kv = MemoryStore::new();
        for result in block_on(kv_conformance(&kv, "conformance:")) {
            assert!(result.passed, "{}: {}", result.case, result.detail);
        }
    }
}

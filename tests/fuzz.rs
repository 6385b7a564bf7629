//! Property-based fuzzing of everything that parses hostile input: the token pipeline, admin
//! account bodies, form bodies and query strings, and issuer key sets.
//!
//! cargo-fuzz needs a nightly compiler with sanitizers, which this project's machines cannot
//! count on, so these are proptest targets: each mutates the seed corpus in
//! `tests/fuzz-corpus/` (byte flips, insertions, deletions, splices) or generates inputs from
//! scratch, for `FUZZ_SECONDS` seconds (default 10) per target, and checks that nothing panics
//! and every answer is one the SPEC allows. They are `#[ignore]`d in `cargo test`; run them with
//! `npm run fuzz`, which prints how many inputs each target tried.

use std::time::{Duration, Instant};

use edge_sts::http::router::{handle, Isolate};
use edge_sts::http::{Method, Request};
use edge_sts::testing::fuzzing;
use edge_sts::testing::memory::{block_on, FixedClock};
use edge_sts::testing::platform::MemoryPlatform;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

const NOW: u64 = 1_795_435_200;
const ADMIN: &str = "fuzz-admin-token";
/// A test-only P-256 key.
const SIGNING_KEYS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"JboNEBgP8fBlEICH8NbaE0v-ruw0A4a4ONhJWZlRljs","y":"7s9DRl0Vr1pLJx6ZYzm2_9LfS9N8rp1N1K2e9UI6fi8","d":"nBQDC5rt3yJIcUbUpxpJJo1lX0nfzeAmIDe5rTB4Nts"}]}"#;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let path = format!(
        "{}/tests/fuzz-corpus/{target}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{path}: {error}"))
        .lines()
        .map(|line| line.as_bytes().to_vec())
        .collect()
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// Copies a run of the input onto another place (duplicated members, repeated parts).
    Splice(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b'.'),
                Just(b'='),
                Just(b'%'),
                Just(b'"'),
                Just(b'{'),
                Just(b'['),
                any::<u8>()
            ]
        )
            .prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any::<usize>(), 1usize..64)
            .prop_map(|(from, to, len)| Edit::Splice(from, to, len)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip(at, mask) if !bytes.is_empty() => bytes[at % len] ^= mask,
            Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Delete(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            Edit::Splice(from, to, run) if !bytes.is_empty() => {
                let from = from % len;
                let chunk: Vec<u8> = bytes[from..(from + run).min(bytes.len())].to_vec();
                let to = to % (bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
            _ => {}
        }
    }
    bytes
}

/// Seeds with up to 8 edits, or arbitrary bytes.
fn inputs(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    prop_oneof![
        4 => (proptest::sample::select(seeds), proptest::collection::vec(edit(), 0..8)).prop_map(|(seed, edits)| apply(seed, &edits)),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Runs `check` on inputs for the target's time budget and reports the count.
fn fuzz(
    name: &str,
    strategy: impl Strategy<Value = Vec<u8>>,
    check: impl Fn(Vec<u8>) -> Result<(), TestCaseError>,
) {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let batch = 500;
    let mut tried = 0u64;
    // A runner counts its successes and stops at `cases`, so each batch gets a new one, seeded
    // anew (from the batch number and the clock) so batches do not repeat each other.
    for round in 0u64.. {
        if Instant::now() >= deadline {
            break;
        }
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        seed[8..24].copy_from_slice(
            &std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_le_bytes(),
        );
        let config = RunnerConfig {
            cases: batch,
            failure_persistence: None,
            ..RunnerConfig::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        if let Err(failure) = runner.run(&strategy, &check) {
            panic!("fuzz {name}: {failure}");
        }
        tried += u64::from(batch);
    }
    println!("fuzz {name}: {tried} inputs in {seconds} s, all answered without a panic");
}

struct World {
    isolate: Isolate,
    platform: MemoryPlatform,
}

impl World {
    /// A worker with one account for the seed tokens' issuer and subject, and its JWKS served.
    fn new() -> Self {
        let mut platform = fuzzing::platform(SIGNING_KEYS);
        platform.clock = FixedClock::at_seconds(NOW);
        let world = Self {
            isolate: fuzzing::isolate(SIGNING_KEYS, ADMIN),
            platform,
        };
        let jwks = String::from_utf8(seeds("jwks").remove(0)).unwrap();
        world
            .platform
            .fetcher
            .serve("https://idp.example.com/jwks", &jwks, None);
        let body = r#"{"name":"f","scopes":["certificate-issuance"],"issuerURL":"https://idp.example.com","jwksURI":"https://idp.example.com/jwks","subject":"repo:acme/app:ref:refs/heads/main","audience":"https://sts.example.com"}"#;
        let (status, _) = world.send(
            Method::Post,
            "/v1/serviceaccounts",
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(status, 201);
        world
    }

    fn send(&self, method: Method, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        // Split off the query as the platform layer does.
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path, None),
        };
        let mut request = Request::new(method, "https://sts.example.com", path);
        request.query = query;
        request
            .headers
            .push(("authorization".into(), format!("Bearer {ADMIN}")));
        request
            .headers
            .push(("content-type".into(), content_type.into()));
        request.body = body.to_vec();
        let response = block_on(handle(&request, &self.isolate, &self.platform));
        (response.status, response.body)
    }
}

fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition {
        Ok(())
    } else {
        Err(TestCaseError::fail(message()))
    }
}

#[test]
#[ignore = "fuzzing: run with `npm run fuzz`"]
fn fuzz_token_pipeline() {
    let world = World::new();
    fuzz("token pipeline", inputs("token"), |token| {
        let form = [
            b"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=".as_slice(),
            &urlencode(&token),
        ]
        .concat();
        let (status, body) = world.send(
            Method::Post,
            "/oauth2/token",
            "application/x-www-form-urlencoded",
            &form,
        );
        // Nothing forged may mint; the only non-4xx for a client's token is an issuer outage.
        ensure(
            status == 400 || status == 401 || status == 413 || status == 503,
            || format!("status {status} for {token:?}"),
        )?;
        ensure(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            || "a non-JSON body".into(),
        )
    });
}

#[test]
#[ignore = "fuzzing: run with `npm run fuzz`"]
fn fuzz_account_json() {
    let world = World::new();
    fuzz("account JSON", inputs("account"), |body| {
        let _ = fuzzing::account_body(&body);
        let (status, response) = world.send(
            Method::Post,
            "/v1/serviceaccounts",
            "application/json",
            &body,
        );
        ensure(matches!(status, 201 | 400 | 409 | 413), || {
            format!("status {status} for {:?}", String::from_utf8_lossy(&body))
        })?;
        ensure(
            serde_json::from_slice::<serde_json::Value>(&response).is_ok(),
            || "a non-JSON body".into(),
        )
    });
}

#[test]
#[ignore = "fuzzing: run with `npm run fuzz`"]
fn fuzz_form_and_query() {
    let world = World::new();
    fuzz("form and query", inputs("form"), |body| {
        let _ = fuzzing::form(&body);
        let (status, _) = world.send(
            Method::Post,
            "/oauth2/token",
            "application/x-www-form-urlencoded",
            &body,
        );
        ensure(status < 500 || status == 503, || {
            format!("status {status} for {:?}", String::from_utf8_lossy(&body))
        })?;
        let query = String::from_utf8_lossy(&body).replace('#', "%23");
        let (status, _) = world.send(
            Method::Get,
            &format!("/v1/serviceaccounts?{query}"),
            "application/json",
            b"",
        );
        ensure(status == 200 || status == 400, || {
            format!("status {status} for query {query:?}")
        })
    });
}

#[test]
#[ignore = "fuzzing: run with `npm run fuzz`"]
fn fuzz_jwks() {
    fuzz("JWKS", inputs("jwks"), |body| {
        if let Some(kept) = fuzzing::key_set(&body) {
            ensure(kept <= 100, || "more than 100 keys kept".into())?;
        }
        Ok(())
    });
}

fn urlencode(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => vec![b],
            _ => format!("%{b:02X}").into_bytes(),
        })
        .collect()
}

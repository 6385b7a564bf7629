//! The pipeline end to end in memory, on a fixed `now`: a success, then one test per `reason`.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};

use super::key_sets::DISCOVERED_SET_PREFIX;
use super::*;
use crate::accounts::{validate, AccountFields};
use crate::config::settings::{Settings, Vars};
use crate::config::signing_keys::SigningKeys;
use crate::jose::alg::Alg;
use crate::jose::keys::parse_key_set;
use crate::jose::reason::Rejection;
use crate::ports::{FetchError, KeyValueStore, SignatureVerifier};
use crate::testing::memory::{block_on, MemorySigner, WhatwgUrls};
use crate::testing::platform::MemoryPlatform;
use crate::testing::registry::put_accounts;
use crate::testing::test_issuer::TestIssuer;

/// 2026-11-23T12:00:00Z
const NOW: i64 = 1_795_435_200;
const ISSUER: &str = "https://idp.example.com";
const JWKS_URL: &str = "https://idp.example.com/jwks";
const AUDIENCE: &str = "https://sts.example.com";
const STS: &str = "https://sts.example.com";
const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";
/// Account ids for the tests that name one in `client_id` (which must look like an id).
const ACCOUNT_1: &str = "0000000a-0000-4000-8000-000000000001";
const PATTERN_2: &str = "0000000b-0000-4000-8000-000000000002";
use crate::testing::test_issuer::MINT_KEY;

struct World {
    settings: Settings,
    issuer: TestIssuer,
    platform: MemoryPlatform,
    key_sets: KeySets,
    now: i64,
}

impl World {
    fn new() -> Self {
        let keys = SigningKeys::parse(MINT_KEY).unwrap();
        let world = Self {
            settings: Settings::from_vars(&Vars::default(), &WhatwgUrls).unwrap(),
            issuer: TestIssuer::new(),
            platform: MemoryPlatform {
                signer: Some(MemorySigner::new(keys.active()).unwrap()),
                ..MemoryPlatform::default()
            },
            key_sets: KeySets::default(),
            now: NOW,
        };
        world.platform.fetcher.serve(
            JWKS_URL,
            &world.issuer.jwks().to_string(),
            Some("max-age=600"),
        );
        world
    }

    fn add_account(&self, id: &str, changes: Value) -> Account {
        let mut body = json!({
            "name": id,
            "scopes": ["certificate-issuance", "api-integration"],
            "issuerURL": ISSUER,
            "jwksURI": JWKS_URL,
            "subject": SUBJECT,
            "audience": AUDIENCE,
        });
        crate::accounts::merge_patch(body.as_object_mut().unwrap(), changes.as_object().unwrap());
        let fields: AccountFields =
            validate(body.as_object().unwrap(), &self.settings, &WhatwgUrls).unwrap();
        let account = Account {
            id: id.to_owned(),
            fields,
            created_at: "2026-11-23T11:00:00.000Z".into(),
            updated_at: "2026-11-23T11:00:00.000Z".into(),
        };
        put_accounts(&self.platform.accounts, std::slice::from_ref(&account));
        account
    }

    /// The exchange run once here (so `JWKS_CACHE` holds what a location that served it holds),
    /// then on a new isolate at this location: that isolate, and the account its first
    /// exchange minted for.
    fn cold_after_one_exchange(&self) -> (World, String) {
        assert!(self.run(&es256(self, &claims()), None, None).result.is_ok());
        let cold = self.cold_copy(true);
        let issued = cold
            .run(&es256(&cold, &claims()), None, None)
            .result
            .unwrap();
        (cold, issued.account_id)
    }

    /// A new isolate (nothing in memory) at a location holding this world's `ACCOUNTS` and
    /// `JWKS_CACHE`; `accounts` false leaves its `ACCOUNTS` empty.
    fn cold_copy(&self, accounts: bool) -> World {
        let cold = World::new();
        let stores = [
            (&*self.platform.accounts, &*cold.platform.accounts, accounts),
            (&self.platform.jwks_cache, &cold.platform.jwks_cache, true),
        ];
        for (from, to, copy) in stores {
            for key in from.keys().into_iter().filter(|_| copy) {
                let stored = from.entry(&key).unwrap();
                block_on(to.put(&key, &stored.value, stored.ttl_seconds)).unwrap();
            }
        }
        cold
    }

    /// A location that has served one exchange for an account found by discovery ("acct-1",
    /// without `jwksURI`): its `JWKS_CACHE` holds the discovery document, the key set and the
    /// issuer's discovered key set.
    fn after_a_discovery_exchange() -> World {
        let world = World::new();
        world.add_account("acct-1", json!({"jwksURI": null}));
        world.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
        assert!(world
            .run(&es256(&world, &claims()), None, None)
            .result
            .is_ok());
        world
    }

    /// The issuer serves `document` as its discovery document; returns the document's URL.
    fn serve_discovery(&self, document: Value) -> String {
        let url = format!("{ISSUER}/.well-known/openid-configuration");
        self.platform
            .fetcher
            .serve(&url, &document.to_string(), None);
        url
    }

    fn exchange(&self) -> Exchange<'_, MemoryPlatform> {
        Exchange {
            platform: &self.platform,
            settings: &self.settings,
            key_sets: &self.key_sets,
            issuer: STS,
            now: self.now,
        }
    }

    fn run(&self, token: &str, scope: Option<&str>, client_id: Option<&str>) -> Outcome {
        let request = TokenRequest {
            assertion: token.to_owned(),
            scope: scope.map(str::to_owned),
            client_id: client_id.map(str::to_owned),
        };
        block_on(self.exchange().run(&request))
    }

    /// The reason `token` is refused for.
    fn reason(&self, token: &str) -> Reason {
        self.rejection(token, None).reason
    }

    fn rejection(&self, token: &str, client_id: Option<&str>) -> Rejection {
        match self.run(token, None, client_id).result {
            Err(ExchangeError::Rejected(rejection)) => rejection,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}

/// Claims of a valid workload token at NOW.
fn claims() -> Value {
    json!({"iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE, "iat": NOW - 60, "exp": NOW + 540, "jti": "workload-jti-1"})
}

fn with(changes: Value) -> Value {
    let mut claims = claims();
    crate::accounts::merge_patch(
        claims.as_object_mut().unwrap(),
        changes.as_object().unwrap(),
    );
    claims
}

fn es256(world: &World, claims: &Value) -> String {
    world.issuer.sign(Alg::Es256, claims, json!({}))
}

/// The issuer's key set after a rotation: its ES256 key's `kid` is now "next".
fn rotated_jwks(world: &World) -> String {
    let mut jwks = world.issuer.jwks();
    jwks["keys"][6]["kid"] = json!("next");
    jwks.to_string()
}

/// A token signed by the rotated ES256 key (`kid` "next"), valid at [`NOW`].
fn next_kid_token(world: &World) -> String {
    let claims = with(json!({"iat": NOW, "exp": NOW + 600}));
    world
        .issuer
        .sign(Alg::Es256, &claims, json!({"kid": "next"}))
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
}

#[test]
fn a_valid_token_of_every_algorithm_is_exchanged_for_a_15_minute_access_token() {
    let world = World::new();
    let account = world.add_account("acct-1", json!({}));
    for alg in Alg::ALL {
        let token = world.issuer.sign(alg, &claims(), json!({}));
        let outcome = world.run(&token, None, None);
        let issued = outcome
            .result
            .unwrap_or_else(|error| panic!("{}: {error:?}", alg.name()));
        assert_eq!(issued.account_id, account.id);
        assert_eq!(issued.scope, "certificate-issuance api-integration");
        assert_eq!(
            outcome.identity.unwrap().jti.as_deref(),
            Some("workload-jti-1")
        );

        let parts: Vec<&str> = issued.access_token.split('.').collect();
        let header = decode(parts[0]);
        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "at+jwt", "kid": world.platform.signer.as_ref().unwrap().kid()})
        );
        let minted = decode(parts[1]);
        assert_eq!(minted["iss"], STS);
        assert_eq!(minted["aud"], STS);
        assert_eq!(minted["sub"], account.id);
        assert_eq!(minted["client_id"], account.id);
        assert_eq!(minted["iat"], NOW);
        assert_eq!(
            minted["exp"].as_i64().unwrap() - minted["iat"].as_i64().unwrap(),
            900
        );
        assert_eq!(
            minted["federated"],
            json!({"iss": ISSUER, "sub": SUBJECT, "jti": "workload-jti-1"})
        );
        assert!(
            Base64UrlUnpadded::decode_vec(minted["jti"].as_str().unwrap())
                .unwrap()
                .len()
                >= 16
        );

        // The access token verifies with the published key.
        let keys = SigningKeys::parse(MINT_KEY).unwrap();
        let published = parse_key_set(keys.public_jwks().to_string().as_bytes()).unwrap();
        let signature = Base64UrlUnpadded::decode_vec(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(
            block_on(crate::testing::native_crypto::RustCryptoVerifier.verify(
                Alg::Es256,
                &published.keys[0],
                input.as_bytes(),
                &signature
            ))
            .unwrap()
        );
    }
}

/// The access token's header and claims are written with their members in alphabetical order
/// at every level, as when they were JSON objects: each reads back to its own text.
#[test]
fn the_access_tokens_header_and_claims_are_written_in_alphabetical_order() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let access = world
        .run(&es256(&world, &claims()), None, None)
        .result
        .unwrap()
        .access_token;
    for part in access.split('.').take(2) {
        let text = String::from_utf8(Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value.to_string(), text);
    }
}

/// A workload token without `jti`: the minted token's `federated` claim records it as `null`.
#[test]
fn a_workload_token_without_jti_is_recorded_as_null() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let token = es256(&world, &with(json!({"jti": null})));
    let access = world.run(&token, None, None).result.unwrap().access_token;
    let minted = decode(access.split('.').nth(1).unwrap());
    assert_eq!(
        minted["federated"],
        json!({"iss": ISSUER, "jti": null, "sub": SUBJECT})
    );
}

#[test]
fn the_access_token_lives_900_s_whatever_the_incoming_lifetime() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    for lifetime in [61, 900, 7200] {
        let token = es256(
            &world,
            &with(json!({"iat": NOW - 30, "exp": NOW - 30 + lifetime})),
        );
        let access = world.run(&token, None, None).result.unwrap().access_token;
        let minted = decode(access.split('.').nth(1).unwrap());
        assert_eq!(
            minted["exp"].as_i64().unwrap() - minted["iat"].as_i64().unwrap(),
            900,
            "{lifetime}"
        );
    }
}

#[test]
fn malformed_token() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let good = es256(&world, &claims());
    let (header, rest) = good.split_once('.').unwrap();
    let cases = [
        "not-a-jwt".to_owned(),
        format!("{header}.{rest}.extra.parts"),
        format!("{header}.{rest}.x.y"), // five parts: a JWE
        format!("{header}=.{rest}"),    // padding
        // Standard base64 ("+" and "/") where base64url is required.
        format!(
            "{}.{rest}",
            base64ct::Base64Unpadded::encode_string(
                br#"{"alg":"ES256","kid":"ES256","n":"???>>>"}"#
            )
        ),
        format!(" {good}"),
        format!(".{rest}"),
        world
            .issuer
            .sign(Alg::Es256, &claims(), json!({"crit": ["exp"]})),
        world
            .issuer
            .sign(Alg::Es256, &claims(), json!({"b64": false})),
        world
            .issuer
            .sign(Alg::Es256, &claims(), json!({"cty": "JWT"})),
        world.issuer.sign_raw(
            Alg::Es256,
            r#"{"alg":"ES256","alg":"ES256"}"#,
            &claims().to_string(),
        ),
        world
            .issuer
            .sign_raw(Alg::Es256, r#"{"alg":"ES256"}"#, r#"{"sub":"a","sub":"b"}"#),
        world.issuer.sign_raw(
            Alg::Es256,
            r#"{"alg":"ES256"}"#,
            &format!("{}{}", "[".repeat(40), "]".repeat(40)),
        ),
        world
            .issuer
            .sign_raw(Alg::Es256, r#"{"alg":"ES256"}"#, "[]"),
    ];
    for token in cases {
        assert_eq!(world.reason(&token), Reason::MalformedToken, "{token}");
    }
}

#[test]
fn token_too_large() {
    let world = World::new();
    let token = es256(&world, &with(json!({"padding": "x".repeat(17 * 1024)})));
    assert_eq!(world.reason(&token), Reason::TokenTooLarge);
}

#[test]
fn unsupported_algorithm() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let payload = Base64UrlUnpadded::encode_string(claims().to_string().as_bytes());
    for alg in [
        "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "ES256K", "RS1", "",
    ] {
        let header = Base64UrlUnpadded::encode_string(json!({ "alg": alg }).to_string().as_bytes());
        for signature in ["", "c2ln"] {
            assert_eq!(
                world.reason(&format!("{header}.{payload}.{signature}")),
                Reason::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }
    let no_alg = Base64UrlUnpadded::encode_string(b"{\"kid\":\"ES256\"}");
    assert_eq!(
        world.reason(&format!("{no_alg}.{payload}.")),
        Reason::UnsupportedAlgorithm
    );
}

#[test]
fn unknown_key() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let token = world
        .issuer
        .sign(Alg::Es256, &claims(), json!({"kid": "rotated-away"}));
    let rejection = world.rejection(&token, None);
    assert_eq!(rejection.reason, Reason::UnknownKey);
    assert!(rejection.description.contains("rotated-away"));
    // The unknown kid refetched once; a second try within 30 s does not fetch again.
    let fetches = world.platform.fetcher.requests().len();
    assert_eq!(world.reason(&token), Reason::UnknownKey);
    assert_eq!(world.platform.fetcher.requests().len(), fetches);
}

#[test]
fn a_new_kid_at_the_issuer_is_picked_up_by_the_refetch() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    // The issuer rotates at once: its ES256 key now has kid "next". No wait is needed, since
    // only unknown-kid refetches are rate-limited, and there has been none.
    let jwks = rotated_jwks(&world);
    world.platform.fetcher.serve(JWKS_URL, &jwks, None);
    assert!(world
        .run(&next_kid_token(&world), None, None)
        .result
        .is_ok());
    // And the old kid, gone from the set, is refused once the new set is in use.
    assert_eq!(
        world.reason(&es256(&world, &with(json!({"iat": NOW, "exp": NOW + 600})))),
        Reason::UnknownKey
    );
}

#[test]
fn key_mismatch() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    // ES256 header naming the P-384 key, and every other alg naming a key of another kind.
    for (alg, kid) in [
        (Alg::Es256, "ES384"),
        (Alg::Es384, "ES256"),
        (Alg::Rs256, "ES256"),
        (Alg::EdDsa, "RS256"),
        (Alg::Es512, "EdDSA"),
    ] {
        let token = world.issuer.sign(alg, &claims(), json!({ "kid": kid }));
        assert_eq!(
            world.reason(&token),
            Reason::KeyMismatch,
            "{} with {kid}",
            alg.name()
        );
    }
    // A JWK whose own alg, use or key_ops forbids the token's alg.
    for restriction in [
        json!({"alg": "ES384"}),
        json!({"use": "enc"}),
        json!({"key_ops": ["encrypt"]}),
    ] {
        let mut jwks = world.issuer.jwks();
        crate::accounts::merge_patch(
            jwks["keys"][6].as_object_mut().unwrap(),
            restriction.as_object().unwrap(),
        );
        let world = World::new();
        world.add_account("acct-1", json!({}));
        world
            .platform
            .fetcher
            .serve(JWKS_URL, &jwks.to_string(), None);
        assert_eq!(
            world.reason(&es256(&world, &claims())),
            Reason::KeyMismatch,
            "{restriction}"
        );
    }
}

#[test]
fn rsa_keys_under_2048_bits_do_not_fit() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let mut jwks = world.issuer.jwks();
    // A 1024-bit modulus (the top half of the 2048-bit one).
    let n = Base64UrlUnpadded::decode_vec(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    jwks["keys"][0]["n"] = json!(Base64UrlUnpadded::encode_string(&n[..128]));
    world
        .platform
        .fetcher
        .serve(JWKS_URL, &jwks.to_string(), None);
    let rejection = world.rejection(&world.issuer.sign(Alg::Rs256, &claims(), json!({})), None);
    assert_eq!(rejection.reason, Reason::KeyMismatch);
    // Why is the operator's to read: the key set is the account's, not the token's.
    assert!(
        !rejection.description.contains("1024"),
        "{}",
        rejection.description
    );
    let detail = rejection.detail.unwrap_or_default();
    assert!(detail.contains("1024-bit"), "{detail}");
}

#[test]
fn bad_signature() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let good = es256(&world, &claims());
    let (input, signature) = good.rsplit_once('.').unwrap();
    let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
    let mut flipped = signature.clone();
    flipped[10] ^= 0x01;
    let zero = vec![0u8; 64];
    let mut r_is_n = crate::jose::alg::Curve::P256.order().to_vec();
    r_is_n.extend_from_slice(&signature[32..]);
    let der = [
        &[0x30, 0x44, 0x02, 0x20][..],
        &signature[..32],
        &[0x02, 0x20],
        &signature[32..],
    ]
    .concat();
    for bad in [flipped, zero, r_is_n, der, Vec::new()] {
        let token = format!("{input}.{}", Base64UrlUnpadded::encode_string(&bad));
        assert_eq!(world.reason(&token), Reason::BadSignature, "{bad:?}");
    }
    // Another key's signature over the same input.
    let other = world
        .issuer
        .sign(Alg::Es256, &with(json!({"sub": "other"})), json!({}));
    let token = format!("{input}.{}", other.rsplit_once('.').unwrap().1);
    assert_eq!(world.reason(&token), Reason::BadSignature);
}

#[test]
fn time_rules_on_a_fixed_now_with_60_s_leeway() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let cases = [
        (
            json!({"iat": NOW - 700, "exp": NOW - 61}),
            Some(Reason::TokenExpired),
        ),
        (
            json!({"iat": NOW - 700, "exp": NOW - 60}),
            Some(Reason::TokenExpired),
        ),
        (json!({"iat": NOW - 700, "exp": NOW - 59}), None),
        (json!({"nbf": NOW + 61}), Some(Reason::TokenNotYetValid)),
        (json!({"nbf": NOW + 60}), None),
        (
            json!({"iat": NOW + 61, "exp": NOW + 600}),
            Some(Reason::IssuedInFuture),
        ),
        (json!({"iat": NOW + 60, "exp": NOW + 600}), None),
        (json!({"iat": NOW - 100, "exp": NOW - 100 + 7200}), None),
        (
            json!({"iat": NOW - 100, "exp": NOW - 100 + 7201}),
            Some(Reason::LifetimeTooLong),
        ),
        // Several failing: the first of expired, not-yet-valid, in-future, too-long.
        (
            json!({"iat": NOW + 100, "exp": NOW - 100 + 10_000, "nbf": NOW + 100}),
            Some(Reason::TokenNotYetValid),
        ),
        (
            json!({"iat": NOW + 100, "exp": NOW + 100 + 7201}),
            Some(Reason::IssuedInFuture),
        ),
    ];
    for (changes, expected) in cases {
        let outcome = world.run(&es256(&world, &with(changes.clone())), None, None);
        match expected {
            None => assert!(outcome.result.is_ok(), "{changes}: {:?}", outcome.result),
            Some(reason) => match outcome.result {
                Err(ExchangeError::Rejected(rejection)) => {
                    assert_eq!(rejection.reason, reason, "{changes}")
                }
                other => panic!("{changes}: {other:?}"),
            },
        }
    }
}

#[test]
fn missing_claim() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    for claim in ["iss", "sub", "aud", "exp", "iat"] {
        let token = es256(&world, &with(json!({ claim: null })));
        let rejection = world.rejection(&token, None);
        assert_eq!(rejection.reason, Reason::MissingClaim, "{claim}");
        assert!(rejection.description.contains(claim));
    }
}

#[test]
fn invalid_claim() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let cases = [
        json!({"exp": "1795435800"}),
        json!({"exp": 1e300}),
        json!({"exp": 9_007_199_254_740_993u64}),
        json!({"iat": -1e20}),
        json!({"iat": true}),
        json!({"nbf": [1]}),
        json!({"aud": 7}),
        json!({"aud": [AUDIENCE, 7]}),
        json!({"sub": ""}),
        json!({"sub": 42}),
        json!({"jti": 1}),
        json!({"exp": NOW - 60, "iat": NOW - 60}),
    ];
    for changes in cases {
        assert_eq!(
            world.reason(&es256(&world, &with(changes.clone()))),
            Reason::InvalidClaim,
            "{changes}"
        );
    }
    // 1e309 is not even a JSON number serde accepts: malformed.
    let token = world.issuer.sign_raw(
        Alg::Es256,
        r#"{"alg":"ES256","kid":"ES256"}"#,
        &claims()
            .to_string()
            .replace(&format!("\"exp\":{}", NOW + 540), "\"exp\":1e309"),
    );
    assert_eq!(world.reason(&token), Reason::MalformedToken);
}

#[test]
fn issuer_mismatch_with_client_id() {
    let world = World::new();
    let account = world.add_account(ACCOUNT_1, json!({}));
    for iss in [
        "https://other.example.com",
        "https://idp.example.com/",
        "https://IDP.example.com",
    ] {
        let rejection = world.rejection(
            &es256(&world, &with(json!({ "iss": iss }))),
            Some(&account.id),
        );
        assert_eq!(rejection.reason, Reason::IssuerMismatch, "{iss}");
        // Before the signature: the account's configured issuer is not revealed.
        assert!(
            !rejection.description.contains(&format!("\"{ISSUER}\"")),
            "{}",
            rejection.description
        );
    }
}

/// A token from another issuer with a `client_id` is refused for its issuer, whatever that
/// other issuer's index holds: it is neither needed nor a reason to fail.
#[test]
fn issuer_mismatch_with_client_id_does_not_depend_on_the_tokens_issuers_index() {
    let world = World::new();
    let account = world.add_account(ACCOUNT_1, json!({}));
    let other = "https://other.example.com";
    let index_key = crate::accounts::store::issuer_index_key(other);
    block_on(
        world
            .platform
            .accounts
            .put(&index_key, "{not an index", None),
    )
    .unwrap();
    let rejection = world.rejection(
        &es256(
            &world,
            &with(json!({ "iss": other, "sub": "repo:acme/other" })),
        ),
        Some(&account.id),
    );
    assert_eq!(rejection.reason, Reason::IssuerMismatch);
}

#[test]
fn audience_mismatch() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    assert!(world
        .run(
            &es256(&world, &with(json!({"aud": ["other", AUDIENCE]}))),
            None,
            None
        )
        .result
        .is_ok());
    for aud in [
        json!("https://sts.example.com/"),
        json!(["other"]),
        json!([]),
        json!("HTTPS://STS.EXAMPLE.COM"),
    ] {
        let rejection = world.rejection(&es256(&world, &with(json!({ "aud": aud.clone() }))), None);
        assert_eq!(rejection.reason, Reason::AudienceMismatch, "{aud}");
        assert!(
            rejection.description.contains(AUDIENCE),
            "after the signature, both values: {}",
            rejection.description
        );
    }
}

#[test]
fn subject_mismatch_with_client_id() {
    let world = World::new();
    let account = world.add_account(ACCOUNT_1, json!({}));
    let rejection = world.rejection(
        &es256(
            &world,
            &with(json!({"sub": "repo:acme/app:ref:refs/heads/dev"})),
        ),
        Some(&account.id),
    );
    assert_eq!(rejection.reason, Reason::SubjectMismatch);
    assert!(
        rejection.description.contains(SUBJECT) && rejection.description.contains("refs/heads/dev")
    );
}

#[test]
fn claim_mismatch() {
    let world = World::new();
    world.add_account(
        "acct-1",
        json!({"claims": {"ref_protected": "true", "run_attempt": "?", "environment": "prod*"}}),
    );
    let good = json!({"ref_protected": true, "run_attempt": 1, "environment": "production"});
    assert!(world
        .run(&es256(&world, &with(good.clone())), None, None)
        .result
        .is_ok());
    for (changes, claim) in [
        (json!({"ref_protected": false}), "ref_protected"),
        (json!({"ref_protected": "yes"}), "ref_protected"),
        (json!({"run_attempt": 12}), "run_attempt"),
        (json!({"environment": "staging"}), "environment"),
        (json!({"environment": null}), "environment"),
        (json!({"environment": ["staging", "dev"]}), "environment"),
        (json!({"environment": [{"name": "prod"}]}), "environment"),
        (json!({"environment": {"name": "prod"}}), "environment"),
    ] {
        let mut claims = with(good.clone());
        crate::accounts::merge_patch(
            claims.as_object_mut().unwrap(),
            changes.as_object().unwrap(),
        );
        let rejection = world.rejection(&es256(&world, &claims), None);
        assert_eq!(rejection.reason, Reason::ClaimMismatch, "{changes}");
        assert!(rejection.description.contains(claim));
    }
}

/// Kubernetes tokens nest their claims (`kubernetes.io.namespace`) and GitLab or Entra ones
/// carry arrays (`groups`): a rule may name a dotted path, and an array matches when any of its
/// elements does (Vault's `bound_claims`).
#[test]
fn claim_rules_reach_into_nested_objects_and_arrays() {
    let world = World::new();
    world.add_account(
        "acct-1",
        json!({"claims": {"kubernetes.io.namespace": "ci-*", "kubernetes.io.serviceaccount.name": "builder", "groups": "deploy-*"}}),
    );
    let kubernetes = json!({
        "kubernetes.io": {"namespace": "ci-main", "serviceaccount": {"name": "builder", "uid": "u"}},
        "groups": ["readers", "deploy-prod"],
    });
    assert!(world
        .run(&es256(&world, &with(kubernetes.clone())), None, None)
        .result
        .is_ok());
    for (changes, claim) in [
        (
            json!({"kubernetes.io": {"namespace": "default"}}),
            "kubernetes.io.namespace",
        ),
        (json!({"groups": ["readers"]}), "groups"),
        (json!({"groups": []}), "groups"),
    ] {
        let mut claims = with(kubernetes.clone());
        crate::accounts::merge_patch(
            claims.as_object_mut().unwrap(),
            changes.as_object().unwrap(),
        );
        let rejection = world.rejection(&es256(&world, &claims), None);
        assert_eq!(rejection.reason, Reason::ClaimMismatch, "{changes}");
        assert!(
            rejection.description.contains(claim),
            "{}",
            rejection.description
        );
    }
}

/// A member whose own name has a dot is reached by the longest matching name first.
#[test]
fn a_dotted_path_prefers_the_longest_member_name() {
    use crate::policy::claim_at;
    let claims = json!({
        "a.b": {"c": "long"},
        "a": {"b": {"c": "short"}, "x": "only-short"},
        "flat.name": "flat",
    });
    let claims = claims.as_object().unwrap();
    assert_eq!(claim_at(claims, "a.b.c"), Some(&json!("long")));
    assert_eq!(claim_at(claims, "a.x"), Some(&json!("only-short")));
    assert_eq!(claim_at(claims, "flat.name"), Some(&json!("flat")));
    assert_eq!(claim_at(claims, "a.b.d"), None);
    assert_eq!(claim_at(claims, "a.x.y"), None);
}

#[test]
fn no_matching_account() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    for changes in [
        json!({"sub": "repo:acme/app:ref:refs/heads/dev"}),
        json!({"iss": "https://unknown.example.com"}),
    ] {
        assert_eq!(
            world.reason(&es256(&world, &with(changes.clone()))),
            Reason::NoMatchingAccount,
            "{changes}"
        );
    }
    let rejection = world.rejection(
        &es256(&world, &claims()),
        Some("00000000-0000-4000-8000-000000000000"),
    );
    assert_eq!(rejection.reason, Reason::NoMatchingAccount);
}

#[test]
fn a_client_id_that_is_no_account_id_is_no_matching_account_without_a_lookup() {
    let world = World::new();
    world.add_account(ACCOUNT_1, json!({}));
    let reads = world.platform.accounts.reads();
    for client_id in [
        "x".repeat(10_000),
        "' OR 1=1 --".into(),
        "../account:x".into(),
        ACCOUNT_1.to_uppercase(),
    ] {
        let rejection = world.rejection(&es256(&world, &claims()), Some(&client_id));
        assert_eq!(
            rejection.reason,
            Reason::NoMatchingAccount,
            "{}",
            &client_id[..20.min(client_id.len())]
        );
        assert!(
            rejection.description.len() < 200,
            "the client_id is not echoed whole"
        );
    }
    assert_eq!(
        world.platform.accounts.reads(),
        reads,
        "no KV lookup for them"
    );
}

#[test]
fn exact_subject_wins_and_patterns_can_be_ambiguous() {
    let world = World::new();
    world.add_account(
        "pattern-1",
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    world.add_account("exact-1", json!({}));
    let outcome = world.run(&es256(&world, &claims()), None, None);
    assert_eq!(outcome.result.unwrap().account_id, "exact-1");
    world.add_account(
        PATTERN_2,
        json!({"subject": null, "subjectPattern": "repo:acme/app:*"}),
    );
    let other_branch = with(json!({"sub": "repo:acme/app:ref:refs/heads/dev"}));
    let rejection = world.rejection(&es256(&world, &other_branch), None);
    assert_eq!(rejection.reason, Reason::AmbiguousAccount);
    // Other accounts' ids are for the operator (the log line), never for the client.
    assert!(
        !rejection.description.contains("pattern-1") && !rejection.description.contains(PATTERN_2),
        "{}",
        rejection.description
    );
    let detail = rejection.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("pattern-1") && detail.contains(PATTERN_2),
        "{detail}"
    );
    // client_id settles it.
    assert_eq!(
        world
            .run(&es256(&world, &other_branch), None, Some(PATTERN_2))
            .result
            .unwrap()
            .account_id,
        PATTERN_2
    );
}

#[test]
fn the_dry_run_of_a_disabled_account_fails_only_its_enabled_check() {
    let world = World::new();
    let account = world.add_account("acct-1", json!({"enabled": false}));
    let answer = block_on(
        world
            .exchange()
            .dry_run(&account, &es256(&world, &claims())),
    )
    .unwrap();
    assert!(!answer.ok);
    let failed: Vec<(&str, &str)> = answer
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| (check.check, check.reason.unwrap()))
        .collect();
    assert_eq!(failed, [("enabled", "account_disabled")]);
}

/// The dry run says, for each check, what passed.
#[test]
fn the_dry_run_says_why_each_check_passed() {
    let world = World::new();
    let account = world.add_account(
        "acct-1",
        json!({"claims": {"environment": "prod*", "groups": "deploy-*"}}),
    );
    let token = es256(
        &world,
        &with(json!({"environment": "production", "groups": ["read", "deploy-eu"]})),
    );
    let answer = block_on(world.exchange().dry_run(&account, &token)).unwrap();
    assert!(answer.ok, "{answer:?}");
    let details: Vec<(&str, &str)> = answer
        .checks
        .iter()
        .map(|check| (check.check, check.detail.as_str()))
        .collect();
    for (check, wanted) in [
        ("issuer", "iss is the account's issuerURL"),
        ("time", "valid now; lifetime"),
        ("audience", "aud contains"),
        ("subject", &format!("sub {SUBJECT:?} matches")),
        (
            "claims",
            "environment \"production\" matches \"prod*\"; groups[1] \"deploy-eu\" matches",
        ),
        ("enabled", "the account is enabled"),
    ] {
        let detail = details.iter().find(|(name, _)| *name == check);
        assert!(
            detail.is_some_and(|(_, detail)| detail.contains(wanted)),
            "{check}: {detail:?}"
        );
    }
}

/// For an account without claim rules, the dry run's claims check says there are none.
#[test]
fn the_dry_run_says_an_account_has_no_claim_rules() {
    let world = World::new();
    let account = world.add_account("acct-1", json!({}));
    let token = es256(&world, &claims());
    let answer = block_on(world.exchange().dry_run(&account, &token)).unwrap();
    let claims = answer.checks.iter().find(|check| check.check == "claims");
    assert_eq!(
        claims.map(|check| check.detail.as_str()),
        Some("the account has no claim rules")
    );
}

/// A dry run whose accounts cannot be read for the exact-subject rule fails as the exchange
/// would (storage), instead of passing the enabled check.
#[test]
fn a_dry_run_that_cannot_read_the_accounts_is_a_storage_failure() {
    let world = World::new();
    let account = world.add_account(
        "pattern-1",
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    world.platform.accounts.fail_with(Some("KV is down"));
    let answer = block_on(
        world
            .exchange()
            .dry_run(&account, &es256(&world, &claims())),
    );
    assert!(matches!(answer, Err(StoreError::Storage(_))), "{answer:?}");
}

/// A record that cannot be read back is no outage: retrying cannot help, so it is not told
/// as one (the HTTP layer answers 500, not 503 with Retry-After).
#[test]
fn a_corrupt_record_is_corrupt_not_a_storage_outage() {
    let world = World::new();
    world.add_account(ACCOUNT_1, json!({}));
    let key = crate::accounts::store::account_key(ACCOUNT_1);
    block_on(world.platform.accounts.put(&key, "{", None)).unwrap();
    let outcome = world.run(&es256(&world, &claims()), None, Some(ACCOUNT_1));
    assert!(
        matches!(outcome.result, Err(ExchangeError::Corrupt(ref why)) if why.contains(&key)),
        "{:?}",
        outcome.result
    );
}

#[test]
fn account_disabled_is_decided_after_the_signature() {
    let world = World::new();
    world.add_account("acct-1", json!({"enabled": false}));
    assert_eq!(
        world.reason(&es256(&world, &claims())),
        Reason::AccountDisabled
    );
    let (input, _) = es256(&world, &claims())
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let forged = format!("{input}.{}", Base64UrlUnpadded::encode_string(&[7u8; 64]));
    assert_eq!(world.reason(&forged), Reason::BadSignature);
}

#[test]
fn scope_not_allowed() {
    let world = World::new();
    world.add_account("acct-1", json!({"scopes": ["certificate-issuance"]}));
    let token = es256(&world, &claims());
    let granted = world
        .run(
            &token,
            Some("certificate-issuance certificate-issuance"),
            None,
        )
        .result
        .unwrap();
    assert_eq!(granted.scope, "certificate-issuance");
    for scope in [
        "api-integration",
        "certificate-issuance api-integration",
        "admin",
    ] {
        let outcome = world.run(&token, Some(scope), None);
        match outcome.result {
            Err(ExchangeError::Rejected(rejection)) => {
                assert_eq!(rejection.reason, Reason::ScopeNotAllowed, "{scope}")
            }
            other => panic!("{scope}: {other:?}"),
        }
    }
}

#[test]
fn jwks_unavailable_without_a_cached_set() {
    let mut world = World::new();
    world.add_account("acct-1", json!({}));
    for failure in [
        FetchError::Timeout,
        FetchError::TooLarge,
        FetchError::Network("refused".into()),
    ] {
        world
            .platform
            .fetcher
            .respond(JWKS_URL, Err(failure.clone()));
        assert_eq!(
            world.reason(&es256(&world, &claims())),
            Reason::JwksUnavailable,
            "{failure:?}"
        );
        world.now += 30;
    }
    world.platform.fetcher.respond(
        JWKS_URL,
        Ok(crate::ports::Fetched {
            status: 500,
            cache_control: None,
            body: Vec::new(),
        }),
    );
    assert_eq!(
        world.reason(&es256(&world, &claims())),
        Reason::JwksUnavailable
    );
}

#[test]
fn jwks_invalid_without_a_cached_set() {
    let mut world = World::new();
    world.add_account("acct-1", json!({}));
    for body in [
        "not json",
        "{}",
        r#"{"keys": []}"#,
        r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
    ] {
        world.platform.fetcher.serve(JWKS_URL, body, None);
        assert_eq!(
            world.reason(&es256(&world, &claims())),
            Reason::JwksInvalid,
            "{body}"
        );
        // Past the 30 s for which a failed fetch is remembered, so the next body is fetched.
        world.now += 30;
    }
}

#[test]
fn with_a_cached_set_an_issuer_outage_changes_nothing() {
    let mut world = World::new();
    world.add_account("acct-1", json!({}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    world
        .platform
        .fetcher
        .respond(JWKS_URL, Err(FetchError::Network("down".into())));
    // Past freshness (600 s) but within stale-if-error (24 h): still served.
    world.now += 3_600;
    let later = with(json!({"iat": world.now - 10, "exp": world.now + 600}));
    assert!(world.run(&es256(&world, &later), None, None).result.is_ok());
    // Past 24 h beyond freshness: nothing usable is left.
    world.now += 86_400;
    let much_later = with(json!({"iat": world.now - 10, "exp": world.now + 600}));
    assert_eq!(
        world.reason(&es256(&world, &much_later)),
        Reason::JwksUnavailable
    );
}

#[test]
fn a_warm_exchange_makes_no_subrequest_and_no_jwks_cache_traffic() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    let (fetches, reads, writes) = (
        world.platform.fetcher.requests().len(),
        world.platform.jwks_cache.reads(),
        world.platform.jwks_cache.writes(),
    );
    assert_eq!(
        (fetches, writes),
        (1, 1),
        "the cold exchange fetched once and stored once"
    );
    for _ in 0..3 {
        assert!(world
            .run(&es256(&world, &claims()), None, None)
            .result
            .is_ok());
    }
    assert_eq!(world.platform.fetcher.requests().len(), fetches);
    assert_eq!(world.platform.jwks_cache.reads(), reads);
    assert_eq!(world.platform.jwks_cache.writes(), writes);
}

#[test]
fn a_cold_isolate_reads_the_shared_cache_instead_of_fetching() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    let cold = world.cold_copy(false);
    cold.add_account("acct-1", json!({}));
    cold.platform.fetcher.respond(
        JWKS_URL,
        Err(FetchError::Network("must not be called".into())),
    );
    assert!(cold
        .run(&es256(&cold, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(cold.platform.fetcher.requests().len(), 0);
}

/// What a cold location reads before the signature: the issuer's index, then every candidate
/// record in one bulk read together with the key set's `JWKS_CACHE` entry (the index names
/// its URL): nothing else. The platform starts each pair together (e2e: `kv-waits` in Server-Timing).
#[test]
fn a_cold_isolate_reads_the_index_then_all_candidates_at_once_and_the_key_set_ahead() {
    let world = World::new();
    world.add_account("exact-1", json!({}));
    world.add_account(
        "pattern-1",
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    world.add_account(
        "pattern-2",
        json!({"subject": null, "subjectPattern": "repo:acme/app:*"}),
    );
    let (cold, account) = world.cold_after_one_exchange();
    assert_eq!(account, "exact-1");
    assert_eq!(
        cold.platform.accounts.reads(),
        2,
        "the index, then three candidates' records in one read"
    );
    assert_eq!(
        cold.platform.jwks_cache.reads(),
        1,
        "the key set, with the records"
    );
    assert_eq!(cold.platform.fetcher.requests().len(), 0);
}

/// An index whose hint names another URL (written before the record changed): the key set the
/// record names is read, and the hint's read is only wasted.
#[test]
fn a_stale_key_set_hint_in_the_index_costs_one_wasted_read() {
    let world = World::new();
    world.add_account("exact-1", json!({}));
    let (cold, _) = world.cold_after_one_exchange();
    let index_key = crate::accounts::store::issuer_index_key(ISSUER);
    let stale_hint = cold
        .platform
        .accounts
        .entry(&index_key)
        .unwrap()
        .value
        .replace(JWKS_URL, "https://idp.example.com/old-jwks");
    let colder = cold.cold_copy(true);
    block_on(colder.platform.accounts.put(&index_key, &stale_hint, None)).unwrap();
    assert!(colder
        .run(&es256(&colder, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(
        colder.platform.jwks_cache.reads(),
        2,
        "the hint's key set, then the record's"
    );
    assert!(
        colder.platform.fetcher.requests().is_empty(),
        "the record's key set was in JWKS_CACHE"
    );
}

/// With an exact and a pattern account for the token, each naming its own key set, the exact
/// one's is read ahead (an exact subject wins, so it is the key set that verifies), whatever
/// the index's order: two waits, no third read.
#[test]
fn the_exact_accounts_key_set_is_the_one_read_ahead() {
    let world = World::new();
    world.add_account(
        "pattern-1",
        json!({"subject": null, "subjectPattern": "repo:acme/*", "jwksURI": "https://idp.example.com/pattern-jwks"}),
    );
    world.add_account("exact-1", json!({}));
    let (cold, account) = world.cold_after_one_exchange();
    assert_eq!(account, "exact-1");
    assert_eq!(
        cold.platform.jwks_cache.reads(),
        1,
        "the exact account's key set, with the records"
    );
    assert!(cold.platform.fetcher.requests().is_empty());
}

#[test]
fn a_shared_cache_that_fails_neither_fails_nor_stops_the_exchange() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    world.platform.jwks_cache.fail_with(Some("KV is down"));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(
        world.platform.jwks_cache.writes(),
        0,
        "the write failed, unreported"
    );
    assert_eq!(world.platform.fetcher.requests().len(), 1);
}

/// The index only names candidates: an entry whose record no longer has that subject (a moment
/// between the two keys' writes) is passed over, and the record that matches decides.
#[test]
fn the_record_not_the_index_decides_which_account_matches() {
    let world = World::new();
    let exact = world.add_account("exact-1", json!({}));
    world.add_account(
        "pattern-1",
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    let mut moved = serde_json::to_value(&exact).unwrap();
    moved["subject"] = json!("repo:acme/other:ref:refs/heads/main");
    let key = crate::accounts::store::account_key("exact-1");
    block_on(world.platform.accounts.put(&key, &moved.to_string(), None)).unwrap();
    let outcome = world.run(&es256(&world, &claims()), None, None);
    assert_eq!(outcome.result.unwrap().account_id, "pattern-1");
}

/// An account without `jwksURI` on a cold isolate: the issuer's discovered key set (the URL
/// its discovery document names, and the keys there), which the first isolate wrote, is read
/// with the record — two waits, one `JWKS_CACHE` read, no fetch, no write; a warm exchange
/// then reads nothing.
#[test]
fn a_cold_isolate_reads_a_discovered_key_set_ahead_too() {
    let world = World::after_a_discovery_exchange();
    let cold = world.cold_copy(true);
    let copied = cold.platform.jwks_cache.writes();
    assert!(cold
        .run(&es256(&cold, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(
        cold.platform.accounts.reads(),
        2,
        "the index, then the record"
    );
    assert_eq!(
        cold.platform.jwks_cache.reads(),
        1,
        "the issuer's discovered key set, with the record"
    );
    assert!(cold.platform.fetcher.requests().is_empty());
    assert_eq!(cold.platform.jwks_cache.writes(), copied, "it was current");
    assert!(cold
        .run(&es256(&cold, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(cold.platform.jwks_cache.reads(), 1, "warm: from memory");
    assert_eq!(
        cold.platform.jwks_cache.writes(),
        copied,
        "warm: nothing written"
    );
}

/// The issuer rotates its keys: the isolate that refetches for the new `kid` writes the issuer's
/// discovered key set anew, so the next cold isolate verifies the new `kid` without a fetch.
#[test]
fn a_refetched_discovered_key_set_is_stored_for_the_next_isolate() {
    let world = World::after_a_discovery_exchange();
    let jwks = rotated_jwks(&world);
    let cold = world.cold_copy(true);
    cold.platform.fetcher.serve(JWKS_URL, &jwks, None);
    assert!(cold.run(&next_kid_token(&cold), None, None).result.is_ok());
    assert_eq!(cold.platform.fetcher.requests(), [JWKS_URL], "one refetch");
    let colder = cold.cold_copy(true);
    assert!(colder
        .run(&next_kid_token(&colder), None, None)
        .result
        .is_ok());
    assert!(colder.platform.fetcher.requests().is_empty());
    assert_eq!(colder.platform.jwks_cache.reads(), 1);
}

/// An isolate that keeps a discovery account warm refetches what goes stale: the key set (its
/// `max-age` is 10 minutes, the discovery document's an hour) or the discovery document (given
/// 5 minutes here). Either way it writes the issuer's discovered key set with it: a cold isolate
/// after that reads that one entry and fetches nothing.
#[test]
fn a_warm_isolates_refetch_keeps_the_discovered_key_set_fresh() {
    let discovery_url = format!("{ISSUER}/.well-known/openid-configuration");
    let discovery = json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}).to_string();
    // The discovery document's `Cache-Control`, when the warm isolate's next exchange comes, and
    // what that exchange fetches again.
    let cases = [
        (None, 700, JWKS_URL),
        (Some("max-age=300"), 400, discovery_url.as_str()),
    ];
    for (cache_control, later, refetched) in cases {
        let mut world = World::new();
        world.add_account("acct-1", json!({"jwksURI": null}));
        let fetcher = &world.platform.fetcher;
        fetcher.serve(&discovery_url, &discovery, cache_control);
        let token = |world: &World| {
            let now = world.now;
            es256(world, &with(json!({"iat": now - 60, "exp": now + 540})))
        };
        assert!(world.run(&token(&world), None, None).result.is_ok());
        world.now = NOW + later;
        let writes = world.platform.jwks_cache.writes();
        assert!(world.run(&token(&world), None, None).result.is_ok());
        let fetched = [discovery_url.as_str(), JWKS_URL, refetched];
        assert_eq!(world.platform.fetcher.requests(), fetched);
        assert_eq!(
            world.platform.jwks_cache.writes(),
            writes + 2,
            "what was fetched again, and the discovered key set"
        );
        let mut cold = world.cold_copy(true);
        cold.now = NOW + later + 100;
        assert!(cold.run(&token(&cold), None, None).result.is_ok());
        assert!(cold.platform.fetcher.requests().is_empty(), "{refetched}");
        assert_eq!(cold.platform.jwks_cache.reads(), 1, "{refetched}");
    }
}

/// The issuer's discovered key set is stale while the discovery document and the key set it
/// names are fresh in `JWKS_CACHE` (an isolate refreshed them for an account naming the same
/// `jwksURI`): a cold isolate reads those two together, the stale entry naming the URL, fetches
/// nothing and writes the entry once.
#[test]
fn a_stale_discovered_key_set_names_the_key_set_to_read_with_the_discovery_document() {
    let world = World::after_a_discovery_exchange();
    let cold = world.cold_copy(true);
    let cache = &cold.platform.jwks_cache;
    let key = cache
        .keys()
        .into_iter()
        .find(|key| key.starts_with(DISCOVERED_SET_PREFIX))
        .unwrap();
    let mut entry: Value = serde_json::from_str(&cache.entry(&key).unwrap().value).unwrap();
    entry["freshUntil"] = json!(NOW - 1);
    block_on(cache.put(&key, &entry.to_string(), None)).unwrap();
    let (reads, writes) = (cache.reads(), cache.writes());
    assert!(cold
        .run(&es256(&cold, &claims()), None, None)
        .result
        .is_ok());
    assert!(cold.platform.fetcher.requests().is_empty());
    assert_eq!(
        cache.reads(),
        reads + 3,
        "the entry with the record; the discovery document with the key set"
    );
    assert_eq!(cache.writes(), writes + 1, "the entry, anew");
}

/// With `client_id` naming a discovery account, a cold isolate reads the record with the index,
/// then the issuer's discovered key set: no fetch. A `client_id` of an account of another
/// issuer reads no key set at all: the token is refused before the signature.
#[test]
fn client_id_reads_the_discovered_key_set_ahead_only_for_the_tokens_issuer() {
    let world = World::new();
    world.add_account(ACCOUNT_1, json!({"jwksURI": null}));
    world.add_account(
        PATTERN_2,
        json!({"issuerURL": "https://other.example.com", "jwksURI": null}),
    );
    world.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
    assert!(world
        .run(&es256(&world, &claims()), None, Some(ACCOUNT_1))
        .result
        .is_ok());
    let cold = world.cold_copy(true);
    let token = es256(&cold, &claims());
    assert!(cold.run(&token, None, Some(ACCOUNT_1)).result.is_ok());
    assert_eq!(
        cold.platform.accounts.reads(),
        2,
        "record and index together"
    );
    assert_eq!(cold.platform.jwks_cache.reads(), 1);
    assert!(cold.platform.fetcher.requests().is_empty());
    let other = world.cold_copy(true);
    let token = es256(&other, &claims());
    assert!(other.run(&token, None, Some(PATTERN_2)).result.is_err());
    assert_eq!(other.platform.jwks_cache.reads(), 0);
}

#[test]
fn discovery_finds_the_jwks_uri_when_the_account_has_none() {
    let world = World::new();
    world.add_account("acct-1", json!({"jwksURI": null}));
    let discovery = world.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(
        world.platform.fetcher.requests(),
        [discovery.clone(), JWKS_URL.to_owned()]
    );
    // A discovery document naming another issuer is not trusted.
    let world = World::new();
    world.add_account("acct-1", json!({"jwksURI": null}));
    world.serve_discovery(json!({"issuer": "https://evil.example.com", "jwks_uri": JWKS_URL}));
    assert_eq!(world.reason(&es256(&world, &claims())), Reason::JwksInvalid);
}

/// Until the signature verifies, a refusal repeats only the token's own values: an account's
/// JWKS URL, the issuer's HTTP status and a redirect's target go to the detail (the log line
/// and the dry run), never to the anonymous client.
#[test]
fn an_unreachable_key_set_says_nothing_of_the_account_or_the_issuer_to_the_client() {
    let mut world = World::new();
    world.add_account("acct-1", json!({}));
    let outcomes = [
        Ok(crate::ports::Fetched {
            status: 500,
            cache_control: None,
            body: b"internal error; reference = 1234".to_vec(),
        }),
        Err(FetchError::BadRedirect(
            "a redirect to https://169.254.169.254/?secret=1 is refused".into(),
        )),
        Err(FetchError::Network(
            "internal error; reference = abcdef".into(),
        )),
    ];
    for outcome in outcomes {
        world.platform.fetcher.respond(JWKS_URL, outcome);
        let rejection = world.rejection(&es256(&world, &claims()), None);
        assert_eq!(rejection.reason, Reason::JwksUnavailable);
        for secret in [JWKS_URL, "500", "169.254", "secret", "internal error"] {
            assert!(
                !rejection.description.contains(secret),
                "{secret} in {}",
                rejection.description
            );
        }
        let detail = rejection.detail.unwrap();
        assert!(detail.contains(JWKS_URL), "{detail}");
        world.now += 30;
    }
}

/// A failed fetch is remembered per URL for 30 s: an issuer that is down costs one fetch, not
/// one per anonymous request.
#[test]
fn a_failed_fetch_is_not_repeated_for_30_s() {
    let mut world = World::new();
    world.add_account("acct-1", json!({}));
    world
        .platform
        .fetcher
        .respond(JWKS_URL, Err(FetchError::Network("down".into())));
    for _ in 0..5 {
        assert_eq!(
            world.reason(&es256(&world, &claims())),
            Reason::JwksUnavailable
        );
    }
    assert_eq!(
        world.platform.fetcher.requests().len(),
        1,
        "one fetch for five requests"
    );
    world.now += 29;
    world.reason(&es256(&world, &claims()));
    assert_eq!(
        world.platform.fetcher.requests().len(),
        1,
        "still cooling down at 29 s"
    );
    // After 30 s it is asked again, and once it answers, tokens are exchanged.
    world.now += 1;
    world
        .platform
        .fetcher
        .serve(JWKS_URL, &world.issuer.jwks().to_string(), None);
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    assert_eq!(world.platform.fetcher.requests().len(), 2);
}

/// Another P-256 public key, as a JWK with `kid` (or none).
fn other_p256(scalar: u8, kid: Option<&str>) -> Value {
    let key = p256::ecdsa::SigningKey::from_slice(&[scalar; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    let mut jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": Base64UrlUnpadded::encode_string(point.x().unwrap()),
        "y": Base64UrlUnpadded::encode_string(point.y().unwrap()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

fn without_kid(mut jwk: Value) -> Value {
    jwk.as_object_mut().unwrap().remove("kid");
    jwk
}

/// A token without `kid` is tried against at most 3 keys that fit its `alg`; a key published
/// several times counts once. 100 P-521 keys would otherwise be 100 verifications per request.
#[test]
fn a_token_without_kid_is_tried_against_at_most_3_distinct_keys() {
    let world = World::new();
    let token = world
        .issuer
        .sign(Alg::Es256, &claims(), json!({"kid": null}));
    let real = without_kid(world.issuer.public_jwk(Alg::Es256));
    let run_with = |keys: Vec<Value>| {
        let world = World::new();
        world.add_account("acct-1", json!({}));
        world
            .platform
            .fetcher
            .serve(JWKS_URL, &json!({ "keys": keys }).to_string(), None);
        world.run(&token, None, None).result.map(|_| ())
    };
    // The real key fourth, behind three others that fit ES256: never tried.
    let behind_three = run_with(vec![
        other_p256(1, None),
        other_p256(2, None),
        other_p256(3, None),
        real.clone(),
    ]);
    assert!(
        matches!(&behind_three, Err(ExchangeError::Rejected(r)) if r.reason == Reason::BadSignature),
        "{behind_three:?}"
    );
    // Third: tried. Keys of other algorithms do not count.
    let keys = vec![
        world.issuer.public_jwk(Alg::Rs256),
        other_p256(1, None),
        other_p256(2, None),
        real.clone(),
    ];
    assert_eq!(run_with(keys), Ok(()));
    // One key published three times counts once, so the real key is the second distinct one.
    let duplicated = vec![
        other_p256(1, None),
        other_p256(1, Some("a")),
        other_p256(1, Some("b")),
        real,
    ];
    assert_eq!(run_with(duplicated), Ok(()));
}

/// Several keys with one `kid`: the first (that fits the `alg`) is the key, the others are not
/// tried.
#[test]
fn of_several_keys_with_one_kid_the_first_is_used() {
    let run_with = |keys: Vec<Value>| {
        let world = World::new();
        world.add_account("acct-1", json!({}));
        world
            .platform
            .fetcher
            .serve(JWKS_URL, &json!({ "keys": keys }).to_string(), None);
        let token = world
            .issuer
            .sign(Alg::Es256, &claims(), json!({"kid": "k"}));
        world.run(&token, None, None).result.map(|_| ())
    };
    let issuer = TestIssuer::new();
    let mut real = issuer.public_jwk(Alg::Es256);
    real["kid"] = json!("k");
    assert_eq!(
        run_with(vec![real.clone(), other_p256(1, Some("k"))]),
        Ok(())
    );
    let second = run_with(vec![other_p256(1, Some("k")), real.clone()]);
    assert!(
        matches!(&second, Err(ExchangeError::Rejected(r)) if r.reason == Reason::BadSignature),
        "{second:?}"
    );
    // A first key of that kid that cannot verify ES256 at all is passed over for one that can.
    let mut rsa = issuer.public_jwk(Alg::Rs256);
    rsa["kid"] = json!("k");
    assert_eq!(run_with(vec![rsa, real]), Ok(()));
}

/// SPIFFE trust bundles mark JWT-SVID keys `"use": "jwt-svid"`: a signing use.
#[test]
fn a_key_marked_use_jwt_svid_verifies_tokens() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let mut jwk = world.issuer.public_jwk(Alg::Es256);
    jwk["use"] = json!("jwt-svid");
    world
        .platform
        .fetcher
        .serve(JWKS_URL, &json!({ "keys": [jwk] }).to_string(), None);
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    let mut encryption = world.issuer.public_jwk(Alg::Es256);
    encryption["use"] = json!("enc");
    let world = World::new();
    world.add_account("acct-1", json!({}));
    world
        .platform
        .fetcher
        .serve(JWKS_URL, &json!({ "keys": [encryption] }).to_string(), None);
    assert_eq!(world.reason(&es256(&world, &claims())), Reason::KeyMismatch);
}

/// A disabled account for exactly this (`iss`, `sub`) blocks the subject, whatever `client_id`
/// names: a pattern account that also matches it mints nothing for it.
#[test]
fn a_disabled_exact_account_blocks_its_subject_whatever_client_id_says() {
    let world = World::new();
    world.add_account(
        PATTERN_2,
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    let legacy = with(json!({"sub": "repo:acme/legacy"}));
    let token = es256(&world, &legacy);
    assert!(world.run(&token, None, Some(PATTERN_2)).result.is_ok());
    world.add_account(
        ACCOUNT_1,
        json!({"subject": "repo:acme/legacy", "enabled": false}),
    );
    let rejection = world.rejection(&token, Some(PATTERN_2));
    assert_eq!(rejection.reason, Reason::AccountDisabled);
    assert!(
        rejection.description.contains(ACCOUNT_1),
        "{}",
        rejection.description
    );
    // Without client_id the exact account is chosen, and it is disabled.
    assert_eq!(world.reason(&token), Reason::AccountDisabled);
    // Other subjects of the pattern are not blocked.
    let other = es256(&world, &with(json!({"sub": "repo:acme/app"})));
    assert!(world.run(&other, None, Some(PATTERN_2)).result.is_ok());
    // And an invalid signature still says so first: disabled is decided after it.
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(
        world.rejection(&forged, Some(PATTERN_2)).reason,
        Reason::BadSignature
    );
}

/// A `sub` over 1 KiB is refused before any pattern is matched against it.
#[test]
fn a_sub_over_1_kib_is_invalid_claim() {
    let world = World::new();
    world.add_account(
        PATTERN_2,
        json!({"subject": null, "subjectPattern": "repo:acme/*"}),
    );
    let at_limit = format!("repo:acme/{}", "a".repeat(1024 - 10));
    assert!(world
        .run(
            &es256(&world, &with(json!({ "sub": at_limit }))),
            None,
            None
        )
        .result
        .is_ok());
    let over = format!("repo:acme/{}", "a".repeat(1024 - 9));
    let rejection = world.rejection(&es256(&world, &with(json!({ "sub": over }))), None);
    assert_eq!(rejection.reason, Reason::InvalidClaim);
    assert!(
        rejection.description.contains("1025 bytes"),
        "{}",
        rejection.description
    );
}

/// An account with an inline `jwks` (a private cluster's keys) is verified with it, and nothing
/// is fetched.
#[test]
fn an_inline_jwks_is_used_as_it_is_and_never_fetched() {
    let world = World::new();
    let jwks = world.issuer.jwks();
    world.add_account("acct-1", json!({"jwksURI": null, "jwks": jwks}));
    world.platform.fetcher.respond(
        JWKS_URL,
        Err(FetchError::Network("must not be asked".into())),
    );
    for alg in [Alg::Es256, Alg::Rs256, Alg::EdDsa] {
        let token = world.issuer.sign(alg, &claims(), json!({}));
        assert!(world.run(&token, None, None).result.is_ok(), "{alg:?}");
    }
    let unknown = world
        .issuer
        .sign(Alg::Es256, &claims(), json!({"kid": "rotated"}));
    assert_eq!(world.reason(&unknown), Reason::UnknownKey);
    assert!(world.platform.fetcher.requests().is_empty());
}

/// An account with its keys inline reads no key set ahead, even where the issuer's discovered
/// key set is in `JWKS_CACHE` (another account of the issuer uses it): warm exchanges of an
/// isolate that never verified with that set make no `JWKS_CACHE` read.
#[test]
fn an_inline_jwks_account_reads_no_key_set_ahead() {
    let world = World::new();
    world.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
    let discovering = "repo:acme/discovering";
    world.add_account("acct-1", json!({"jwksURI": null, "subject": discovering}));
    let token = es256(&world, &with(json!({ "sub": discovering })));
    assert!(world.run(&token, None, None).result.is_ok());
    world.add_account(
        "acct-2",
        json!({"jwksURI": null, "jwks": world.issuer.jwks()}),
    );
    let cold = world.cold_copy(true);
    assert!(cold
        .run(&es256(&cold, &claims()), None, None)
        .result
        .is_ok());
    let reads = cold.platform.jwks_cache.reads();
    for _ in 0..3 {
        assert!(cold
            .run(&es256(&cold, &claims()), None, None)
            .result
            .is_ok());
    }
    assert_eq!(cold.platform.jwks_cache.reads(), reads);
}

/// Two hours on, the issuer's discovered key set in `JWKS_CACHE` is stale: a cold isolate
/// reads it, finds the discovery document and the key set anew (fetched: theirs are stale
/// too), writes the discovered key set once, and its warm exchanges read nothing.
#[test]
fn a_stale_discovered_key_set_is_written_anew_once() {
    let world = World::new();
    world.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
    world.add_account("acct-1", json!({"jwksURI": null}));
    assert!(world
        .run(&es256(&world, &claims()), None, None)
        .result
        .is_ok());
    let mut later = world.cold_copy(true);
    later.now = NOW + 7200;
    later.serve_discovery(json!({"issuer": ISSUER, "jwks_uri": JWKS_URL}));
    let token = es256(
        &later,
        &with(json!({"iat": later.now - 60, "exp": later.now + 540})),
    );
    let copied = later.platform.jwks_cache.writes();
    assert!(later.run(&token, None, None).result.is_ok());
    assert_eq!(
        later.platform.fetcher.requests().len(),
        2,
        "discovery, keys"
    );
    assert_eq!(
        later.platform.jwks_cache.writes(),
        copied + 3,
        "the discovery document, the key set, the discovered key set: each once"
    );
    let cache = &later.platform.jwks_cache;
    let discovered = cache
        .keys()
        .into_iter()
        .find(|key| key.starts_with(DISCOVERED_SET_PREFIX));
    let stored = cache.entry(&discovered.unwrap()).unwrap();
    assert!(stored
        .value
        .contains(&format!("\"freshUntil\":{}", later.now + 600)));
    let (reads, writes) = (
        later.platform.jwks_cache.reads(),
        later.platform.jwks_cache.writes(),
    );
    for _ in 0..3 {
        assert!(later.run(&token, None, None).result.is_ok());
    }
    assert_eq!(later.platform.jwks_cache.reads(), reads);
    assert_eq!(later.platform.jwks_cache.writes(), writes);
}

/// An Entra client asks for `<resource>/.default`: all of the account's scopes.
#[test]
fn an_entra_default_scope_is_all_of_the_accounts_scopes() {
    let world = World::new();
    world.add_account("acct-1", json!({}));
    let token = es256(&world, &claims());
    for scope in [
        "api://edge-sts/.default",
        "https://sts.example.com/.default",
    ] {
        let issued = world.run(&token, Some(scope), None).result.unwrap();
        assert_eq!(issued.scope, "certificate-issuance api-integration");
    }
}

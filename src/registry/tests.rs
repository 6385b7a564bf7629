//! The registry's rules on the in-memory twin of its SQLite store.

use serde_json::{json, Map, Value};

use super::import::{import, IMPORTED};
use super::projection::{drain, entry};
use super::store::{AuditQuery, Projection, RegistryStore};
use super::*;
use crate::accounts::store::{account_key, issuer_index_key};
use crate::accounts::SubjectRule;
use crate::config::settings::Vars;
use crate::testing::memory::{block_on, MemoryStore, WhatwgUrls};
use crate::testing::registry::MemoryRegistryStore;

const GITHUB: &str = "https://token.actions.githubusercontent.com";

struct World {
    store: MemoryRegistryStore,
    settings: Settings,
    clock: std::cell::Cell<u32>,
    ids: std::cell::Cell<u32>,
}

impl World {
    fn new() -> Self {
        Self {
            store: MemoryRegistryStore::new(),
            settings: Settings::from_vars(&Vars::default(), &WhatwgUrls).unwrap(),
            clock: std::cell::Cell::new(0),
            ids: std::cell::Cell::new(0),
        }
    }

    fn run(&self, actor: &str, command: Command) -> Result<Answer, RegistryError> {
        self.clock.set(self.clock.get() + 1);
        self.ids.set(self.ids.get() + 1);
        let now = format!("2026-11-23T12:00:{:02}.000Z", self.clock.get());
        let new_id = format!("00000000-0000-4000-8000-{:012}", self.ids.get());
        let context = Context {
            settings: &self.settings,
            urls: &WhatwgUrls,
            now: &now,
            new_id: &new_id,
        };
        let envelope = Envelope {
            command,
            actor: actor.into(),
            request_id: format!("ray-{}", self.clock.get()),
        };
        self.store
            .transaction(|store| execute(store, &envelope, &context))
    }

    fn create(&self, body: Value) -> Result<(Account, u64), RegistryError> {
        let answer = self.run("admin", Command::Create { body: object(body) })?;
        match answer.reply {
            Reply::Account { account, version } => Ok((*account, version)),
            other => panic!("create answered {other:?}"),
        }
    }

    fn patch(
        &self,
        id: &str,
        patch: Value,
        if_match: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        self.run(
            "admin",
            Command::Patch {
                id: id.into(),
                patch: object(patch),
                if_match: if_match.map(str::to_owned),
            },
        )
    }

    fn get(&self, id: &str) -> Result<(Account, u64), RegistryError> {
        match self.run("admin", Command::Get { id: id.into() })?.reply {
            Reply::Account { account, version } => Ok((*account, version)),
            other => panic!("get answered {other:?}"),
        }
    }

    fn events(&self, query: AuditQuery) -> Vec<super::store::AuditEvent> {
        match self.run("admin", Command::Audit { query }).unwrap().reply {
            Reply::Events { events, .. } => events,
            other => panic!("audit answered {other:?}"),
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn body(subject: &str) -> Value {
    json!({
        "name": "deploy",
        "scopes": ["certificate-issuance"],
        "issuerURL": GITHUB,
        "subject": subject,
        "audience": "https://sts.example.com",
    })
}

fn all() -> AuditQuery {
    AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    }
}

#[test]
fn a_create_commits_the_account_its_event_and_its_read_model_keys() {
    let world = World::new();
    let answer = world
        .run(
            "ci-terraform",
            Command::Create {
                body: object(body("repo:acme/app")),
            },
        )
        .unwrap();
    let Reply::Account { account, version } = &answer.reply else {
        panic!("{answer:?}");
    };
    assert_eq!(*version, 1);
    assert_eq!(account.created_at, account.updated_at);
    // The answer carries the read model's new entries, for the isolate that sent it.
    assert_eq!(answer.projected.len(), 2);
    assert_eq!(answer.projected[0].key, account_key(&account.id));
    assert_eq!(answer.projected[1].key, issuer_index_key(GITHUB));
    assert!(answer.projected[1]
        .value
        .as_deref()
        .unwrap()
        .contains(&account.id));
    let events = world.events(all());
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (
            event.actor.as_str(),
            event.action.as_str(),
            event.account.as_str()
        ),
        ("ci-terraform", "create", account.id.as_str())
    );
    assert_eq!(event.request_id, "ray-1");
    assert_eq!(
        event.changes["subject"],
        json!({"old": null, "new": "repo:acme/app"})
    );
    assert_eq!(event.changes["enabled"], json!({"old": null, "new": true}));
}

#[test]
fn the_same_issuer_and_rule_twice_is_a_conflict_and_leaves_no_trace() {
    let world = World::new();
    let (first, _) = world.create(body("repo:acme/app")).unwrap();
    let error = world.create(body("repo:acme/app")).unwrap_err();
    assert_eq!(
        error,
        RegistryError::Conflict {
            existing_id: first.id.clone(),
            field: "subject".into(),
            value: "repo:acme/app".into()
        }
    );
    assert_eq!(
        world.events(all()).len(),
        1,
        "the refused create wrote no event"
    );
    assert_eq!(
        world.store.queued().unwrap().len(),
        2,
        "nor queued anything"
    );
    // The same text as a pattern is another rule.
    let mut pattern = body("x");
    pattern.as_object_mut().unwrap().remove("subject");
    pattern["subjectPattern"] = json!("repo:acme/app");
    world.create(pattern).unwrap();
}

#[test]
fn a_patch_applies_its_own_members_to_the_current_record() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    // Two administrators: one disables, the other edits the subject from what it read before.
    world
        .patch(&account.id, json!({"enabled": false}), None)
        .unwrap();
    world
        .patch(
            &account.id,
            json!({"subject": "repo:acme/app:ref:refs/heads/main"}),
            None,
        )
        .unwrap();
    let (now, version) = world.get(&account.id).unwrap();
    assert!(!now.fields.enabled, "the disable holds");
    assert_eq!(
        now.fields.subject,
        SubjectRule::Exact("repo:acme/app:ref:refs/heads/main".into())
    );
    assert_eq!(version, 3);
    let actions: Vec<String> = world
        .events(all())
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(actions, ["update", "disable", "create"], "newest first");
}

#[test]
fn if_match_with_a_stale_version_is_refused() {
    let world = World::new();
    let (account, version) = world.create(body("repo:acme/app")).unwrap();
    let tag = etag(version);
    world
        .patch(&account.id, json!({"name": "renamed"}), Some(&tag))
        .unwrap();
    let error = world
        .patch(&account.id, json!({"enabled": false}), Some(&tag))
        .unwrap_err();
    assert_eq!(
        error,
        RegistryError::Stale {
            current: "\"2\"".into(),
            given: "\"1\"".into()
        }
    );
    assert!(world.get(&account.id).unwrap().0.fields.enabled);
    world
        .patch(&account.id, json!({"enabled": false}), Some("\"2\""))
        .unwrap();
    world
        .patch(&account.id, json!({"enabled": true}), Some("*"))
        .unwrap();
    let error = world
        .run(
            "admin",
            Command::Delete {
                id: account.id.clone(),
                if_match: Some(tag),
            },
        )
        .unwrap_err();
    assert!(matches!(error, RegistryError::Stale { .. }));
}

#[test]
fn a_deleted_account_never_comes_back() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    let answer = world
        .run(
            "admin",
            Command::Delete {
                id: account.id.clone(),
                if_match: None,
            },
        )
        .unwrap();
    assert_eq!(answer.reply, Reply::Deleted);
    assert_eq!(
        answer.projected[0].value, None,
        "the record goes from the read model"
    );
    assert_eq!(
        answer.projected[1].value, None,
        "and the issuer's index with it"
    );
    // A PATCH that raced the delete finds nothing to write back.
    let error = world
        .patch(&account.id, json!({"name": "x"}), None)
        .unwrap_err();
    assert_eq!(
        error,
        RegistryError::NotFound {
            id: account.id.clone()
        }
    );
    assert!(world.store.was_deleted(&account.id).unwrap());
    // The pair is free again, under a new id.
    let (again, _) = world.create(body("repo:acme/app")).unwrap();
    assert_ne!(again.id, account.id);
    let events = world.events(AuditQuery {
        account: Some(account.id.clone()),
        ..all()
    });
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].action, "delete");
    assert_eq!(
        events[0].changes["name"],
        json!({"old": "deploy", "new": null})
    );
}

#[test]
fn moving_onto_a_taken_pair_is_a_conflict_and_changes_nothing() {
    let world = World::new();
    world.create(body("repo:acme/app")).unwrap();
    let (second, _) = world.create(body("repo:acme/api")).unwrap();
    let error = world
        .patch(&second.id, json!({"subject": "repo:acme/app"}), None)
        .unwrap_err();
    assert!(matches!(error, RegistryError::Conflict { .. }));
    assert_eq!(world.get(&second.id).unwrap().1, 1);
    assert_eq!(world.events(all()).len(), 2);
}

#[test]
fn a_patch_that_changes_nothing_commits_nothing() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    let answer = world
        .patch(&account.id, json!({"name": "deploy"}), None)
        .unwrap();
    assert!(answer.projected.is_empty());
    assert_eq!(world.get(&account.id).unwrap().1, 1);
    assert_eq!(world.events(all()).len(), 1);
}

#[test]
fn invalid_input_is_refused_with_its_field() {
    let world = World::new();
    let error = world.create(json!({"name": "x"})).unwrap_err();
    assert!(
        matches!(error, RegistryError::Invalid { field: Some(_), .. }),
        "{error:?}"
    );
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    let error = world
        .patch(&account.id, json!({"id": "x"}), None)
        .unwrap_err();
    assert!(matches!(error, RegistryError::Invalid { field: Some(field), .. } if field == "id"));
}

/// A change that leaves the issuer's index entry as it was (a rename, a disable) rewrites only
/// the record; one that moves the account to another issuer rewrites both issuers' indexes.
#[test]
fn an_issuers_index_is_rewritten_only_when_its_entry_changes() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    let keys = |answer: Answer| -> Vec<String> {
        answer
            .projected
            .into_iter()
            .map(|entry| entry.key)
            .collect()
    };
    let renamed = world
        .patch(
            &account.id,
            json!({"name": "renamed", "enabled": false}),
            None,
        )
        .unwrap();
    assert_eq!(keys(renamed), [account_key(&account.id)]);
    let moved = world
        .patch(
            &account.id,
            json!({"issuerURL": "https://gitlab.com"}),
            None,
        )
        .unwrap();
    let projected = moved.projected.clone();
    assert_eq!(
        keys(moved),
        [
            account_key(&account.id),
            issuer_index_key(GITHUB),
            issuer_index_key("https://gitlab.com")
        ]
    );
    assert_eq!(
        projected[1].value, None,
        "GitHub's index has no account left"
    );
    assert!(projected[2].value.as_deref().unwrap().contains(&account.id));
}

/// The index entry names the account's key set (`jwksURI`, or `jwks: true` for inline keys),
/// so a change of either rewrites the issuer's index with the record.
#[test]
fn a_change_of_the_key_set_rewrites_the_issuers_index() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    let moved = world
        .patch(
            &account.id,
            json!({"jwksURI": "https://token.actions.githubusercontent.com/.well-known/other-jwks"}),
            None,
        )
        .unwrap();
    let index = moved
        .projected
        .iter()
        .find(|entry| entry.key == issuer_index_key(GITHUB))
        .expect("the index is rewritten");
    assert!(index.value.as_deref().unwrap().contains("other-jwks"));
}

/// The Durable Object's JavaScript (`entry.mjs`, `queuedKeys`) tells from an answer's text
/// whether to project: an `Ok` that ends in an empty `projected` queued nothing.
#[test]
fn an_answers_text_ends_in_its_projected_keys() {
    let world = World::new();
    let created = world.run(
        "admin",
        Command::Create {
            body: object(body("repo:acme/app")),
        },
    );
    let text = super::answer_text(&created);
    assert!(
        text.starts_with(r#"{"Ok":"#)
            && text.ends_with("]}}")
            && !text.ends_with(r#""projected":[]}}"#)
    );
    let id = match created.unwrap().reply {
        Reply::Account { account, .. } => account.id,
        other => panic!("{other:?}"),
    };
    let read = super::answer_text(&world.run("admin", Command::Get { id }));
    assert!(
        read.starts_with(r#"{"Ok":"#) && read.ends_with(r#""projected":[]}}"#),
        "{read}"
    );
    let refused = super::answer_text(&world.run(
        "admin",
        Command::Get {
            id: "nobody".into(),
        },
    ));
    assert!(refused.starts_with(r#"{"Err":"#), "{refused}");
}

/// A disable that comes with other changes is still a `disable`: an auditor filtering for it
/// must not miss it.
#[test]
fn a_change_of_enabled_is_an_enable_or_disable_whatever_else_changes() {
    let world = World::new();
    let (account, _) = world.create(body("repo:acme/app")).unwrap();
    world
        .patch(
            &account.id,
            json!({"enabled": false, "name": "retired"}),
            None,
        )
        .unwrap();
    world
        .patch(&account.id, json!({"enabled": true, "name": "back"}), None)
        .unwrap();
    let events = world.events(all());
    let actions: Vec<&str> = events.iter().map(|event| event.action.as_str()).collect();
    assert_eq!(actions, ["enable", "disable", "create"], "newest first");
    assert!(
        events[1].changes.contains_key("name"),
        "{:?}",
        events[1].changes
    );
}

#[test]
fn the_audit_trail_filters_and_pages_newest_first() {
    let world = World::new();
    let (a, _) = world.create(body("repo:acme/a")).unwrap();
    let (b, _) = world.create(body("repo:acme/b")).unwrap();
    world.patch(&a.id, json!({"enabled": false}), None).unwrap();
    world
        .run(
            "ci",
            Command::Patch {
                id: b.id.clone(),
                patch: object(json!({"enabled": false})),
                if_match: None,
            },
        )
        .unwrap();
    world.patch(&a.id, json!({"enabled": true}), None).unwrap();
    let of_a = world.events(AuditQuery {
        account: Some(a.id.clone()),
        ..all()
    });
    let actions: Vec<&str> = of_a.iter().map(|event| event.action.as_str()).collect();
    assert_eq!(actions, ["enable", "disable", "create"]);
    let by_ci = world.events(AuditQuery {
        actor: Some("ci".into()),
        ..all()
    });
    assert_eq!(by_ci.len(), 1);
    assert_eq!(by_ci[0].account, b.id);
    let since = world.events(AuditQuery {
        since: Some(of_a[1].at.clone()),
        ..all()
    });
    assert_eq!(since.len(), 3);
    // Pages of two: 5 events in three pages, none twice.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let answer = world
            .run(
                "admin",
                Command::Audit {
                    query: AuditQuery {
                        before,
                        limit: 2,
                        ..all()
                    },
                },
            )
            .unwrap();
        let Reply::Events {
            events,
            next_before,
        } = answer.reply
        else {
            panic!()
        };
        seen.extend(events.iter().map(|event| event.id));
        match next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    // The Audit calls themselves write no events.
    assert_eq!(seen, [5, 4, 3, 2, 1]);
}

#[test]
fn list_pages_by_id_and_by_size() {
    let world = World::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(world.create(body(&format!("repo:acme/{i}"))).unwrap().0.id);
    }
    let page = |after: Option<String>, limit, max_bytes| match world
        .run(
            "admin",
            Command::List {
                after,
                limit,
                max_bytes,
                overhead: 0,
            },
        )
        .unwrap()
        .reply
    {
        Reply::Accounts {
            accounts,
            next_after,
        } => (accounts.len(), next_after),
        other => panic!("{other:?}"),
    };
    assert_eq!(page(None, 2, usize::MAX), (2, Some(ids[1].clone())));
    assert_eq!(page(Some(ids[3].clone()), 2, usize::MAX), (1, None));
    assert_eq!(
        page(None, 100, 1),
        (1, Some(ids[0].clone())),
        "at least one per page"
    );
    assert_eq!(page(None, 100, usize::MAX), (5, None));
}

#[test]
fn a_failed_store_write_rolls_the_whole_command_back() {
    // The account is inserted, then the audit append fails: nothing of it stays.
    struct FailsOnAudit<'a>(&'a MemoryRegistryStore);
    impl RegistryStore for FailsOnAudit<'_> {
        fn account(&self, id: &str) -> Result<Option<Row>, StoreFault> {
            self.0.account(id)
        }
        fn insert(&self, row: &Row) -> Result<(), StoreFault> {
            self.0.insert(row)
        }
        fn replace(&self, row: &Row) -> Result<(), StoreFault> {
            self.0.replace(row)
        }
        fn remove(&self, id: &str, at: &str) -> Result<(), StoreFault> {
            self.0.remove(id, at)
        }
        fn was_deleted(&self, id: &str) -> Result<bool, StoreFault> {
            self.0.was_deleted(id)
        }
        fn accounts_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<Row>, StoreFault> {
            self.0.accounts_after(after, limit)
        }
        fn issuer_entries(
            &self,
            issuer_url: &str,
        ) -> Result<Vec<crate::accounts::store::IndexEntry>, StoreFault> {
            self.0.issuer_entries(issuer_url)
        }
        fn append_audit(&self, _: &super::store::AuditEvent) -> Result<(), StoreFault> {
            Err(StoreFault::Failed("disk full".into()))
        }
        fn audit(&self, query: &AuditQuery) -> Result<Vec<super::store::AuditEvent>, StoreFault> {
            self.0.audit(query)
        }
        fn enqueue(&self, key: &Projection, at: &str) -> Result<(), StoreFault> {
            self.0.enqueue(key, at)
        }
        fn queued(&self) -> Result<Vec<super::store::Queued>, StoreFault> {
            self.0.queued()
        }
        fn dequeue(&self, seq: u64) -> Result<(), StoreFault> {
            self.0.dequeue(seq)
        }
        fn meta(&self, key: &str) -> Result<Option<String>, StoreFault> {
            self.0.meta(key)
        }
        fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), StoreFault> {
            self.0.set_meta(key, value)
        }
    }
    let world = World::new();
    let settings = &world.settings;
    let envelope = Envelope {
        command: Command::Create {
            body: object(body("repo:acme/app")),
        },
        actor: "admin".into(),
        request_id: "r".into(),
    };
    let context = Context {
        settings,
        urls: &WhatwgUrls,
        now: "t",
        new_id: "00000000-0000-4000-8000-000000000001",
    };
    let error = world
        .store
        .transaction(|store| execute(&FailsOnAudit(store), &envelope, &context))
        .unwrap_err();
    assert!(matches!(error, RegistryError::Unavailable(_)));
    assert_eq!(world.store.accounts_after(None, 10).unwrap().len(), 0);
}

#[test]
fn the_read_model_is_written_in_order_and_catches_up_after_kv_fails() {
    let world = World::new();
    let kv = MemoryStore::new();
    let (a, _) = world.create(body("repo:acme/a")).unwrap();
    let (b, _) = world.create(body("repo:acme/b")).unwrap();
    kv.fail_with(Some("KV is down"));
    let error = block_on(drain(&world.store, &kv)).unwrap_err();
    assert!(error.to_string().contains("KV is down"));
    match world.run("admin", Command::Status).unwrap().reply {
        Reply::Status {
            pending,
            oldest_pending_at,
            last_error,
        } => {
            assert_eq!(pending, 4);
            assert_eq!(
                oldest_pending_at.as_deref(),
                Some("2026-11-23T12:00:01.000Z")
            );
            assert!(last_error.unwrap().contains("KV is down"));
        }
        other => panic!("{other:?}"),
    }
    world
        .run(
            "admin",
            Command::Delete {
                id: a.id.clone(),
                if_match: None,
            },
        )
        .unwrap();
    kv.fail_with(None);
    // Each key once, with its value as of now: a's record is gone, the index holds b only.
    assert_eq!(block_on(drain(&world.store, &kv)).unwrap(), 3);
    assert_eq!(kv.keys(), [account_key(&b.id), issuer_index_key(GITHUB)]);
    let index = block_on(crate::ports::KeyValueStore::get(
        &kv,
        &issuer_index_key(GITHUB),
    ))
    .unwrap()
    .unwrap();
    assert!(index.contains(&b.id) && !index.contains(&a.id));
    match world.run("admin", Command::Status).unwrap().reply {
        Reply::Status {
            pending,
            last_error,
            ..
        } => assert_eq!((pending, last_error), (0, None)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        entry(&world.store, &Projection::Account(a.id.clone()))
            .unwrap()
            .value,
        None
    );
}

#[test]
fn the_import_takes_kv_accounts_in_once_and_drops_later_duplicates() {
    let world = World::new();
    let account = |id: &str, created: &str, subject: &str| {
        let mut value = body(subject);
        value["id"] = json!(id);
        value["createdAt"] = json!(created);
        value["updatedAt"] = json!(created);
        value["authenticationType"] = json!("rsaKeyFederated");
        value["enabled"] = json!(true);
        serde_json::from_value::<Account>(value).unwrap()
    };
    let accounts = vec![
        account("b", "2026-01-02T00:00:00.000Z", "repo:acme/app"),
        account("a", "2026-01-01T00:00:00.000Z", "repo:acme/app"),
        account("c", "2026-01-03T00:00:00.000Z", "repo:acme/api"),
    ];
    let report = world
        .store
        .transaction(|store| {
            import(
                store,
                accounts.clone(),
                vec!["https://gone.example".into()],
                "now",
                "import",
            )
        })
        .unwrap();
    assert_eq!(report.imported, ["a", "c"]);
    assert_eq!(report.dropped, ["b"]);
    assert!(world.store.was_deleted("b").unwrap());
    assert!(world.store.meta(IMPORTED).unwrap().is_some());
    let events = world.events(all());
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|event| event.actor == "import"));
    assert_eq!(events[1].action, "delete");
    // Every key is queued: the records, both issuers (the left-over index is removed).
    let queued: Vec<Projection> = world
        .store
        .queued()
        .unwrap()
        .into_iter()
        .map(|q| q.key)
        .collect();
    assert!(queued.contains(&Projection::Issuer("https://gone.example".into())));
    assert!(queued.contains(&Projection::Account("b".into())));
    // Only once.
    let again = world
        .store
        .transaction(|store| import(store, accounts.clone(), Vec::new(), "later", "import"))
        .unwrap();
    assert_eq!(again, Default::default());
}

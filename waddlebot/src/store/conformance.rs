//! The conformance suite every [`Store`] must pass, written once over `&dyn Store`.
//!
//! Run it against a backend with one line in a test file:
//!
//! ```ignore
//! waddlebot::store_conformance_tests!(async { MyStore::connect("...").await.unwrap() });
//! ```
//!
//! Each case is also a public `async fn` taking `&dyn Store`, for backends whose tests need
//! custom set-up around each case. The factory must give a fresh, empty store per call.

use std::sync::Arc;

use futures_util::future::join_all;

use super::{
    Alias, CommandSettings, CustomCommand, EntityKey, Expect, MatchType, ModuleInstall, Page,
    RoleGrant, RuleAction, Store, StoreError, StringRule,
};
use super::{ApiKey, AuditEntry, RemoteKind, RemoteModule, Write};
use crate::id::CommunityId;
use crate::permission::PermissionLevel;
use crate::platform::PlatformKind;

/// What a conformance factory may give: a store, shared or boxed, or a store paired with a guard
/// that must outlive it (a temp dir, a scratch database to drop).
pub trait AsStore {
    /// The store to test.
    fn as_store(&self) -> &dyn Store;
}

impl<T: Store> AsStore for Arc<T> {
    fn as_store(&self) -> &dyn Store {
        &**self
    }
}

impl<T: Store> AsStore for Box<T> {
    fn as_store(&self) -> &dyn Store {
        &**self
    }
}

impl<T: Store, G> AsStore for (T, G) {
    fn as_store(&self) -> &dyn Store {
        &self.0
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each given a fresh store from `$factory`
/// (an expression evaluating to a future of an [`AsStore`]); with `skip_unless:`, a future of
/// `Option<AsStore>` where `None` skips the case.
#[macro_export]
macro_rules! store_conformance_tests {
    (@cases $mode:ident $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let holder = $crate::store_conformance_tests!(@holder $mode $factory);
                $crate::store::conformance::$case(
                    $crate::store::conformance::AsStore::as_store(&holder),
                )
                .await;
            }
        )*
    };
    (@holder required $factory:expr) => {
        $factory.await
    };
    (@holder optional $factory:expr) => {
        match $factory.await {
            Some(holder) => holder,
            None => {
                eprintln!("skipped: the backend under test is not configured");
                return;
            }
        }
    };
    (@list $mode:ident $factory:expr) => {
        $crate::store_conformance_tests!(@cases $mode $factory;
            entities_are_created_once_per_key,
            communities_are_shared_by_a_server,
            communities_are_created_found_and_listed,
            counters_and_namespaces_are_enumerable,
            entity_listing_pages_through_everything_once,
            custom_commands_have_create_update_delete_semantics,
            custom_commands_are_scoped_to_their_community,
            aliases_have_create_delete_semantics,
            string_rules_keep_their_action_and_count_matches,
            remote_modules_round_trip_every_field,
            api_keys_round_trip_and_are_revoked_and_touched,
            audit_entries_list_newest_first_per_community,
            role_grants_replace_and_are_scoped,
            module_installs_round_trip_their_config,
            command_settings_keep_every_override,
            documents_honour_their_preconditions,
            document_listing_pages_by_prefix_exactly_once,
            concurrent_compare_and_set_loses_no_update,
            counters_add_up_under_concurrency,
            batches_apply_all_or_none,
            top_counters_are_ordered,
            empty_keys_are_refused,
        );
    };
    // A factory giving `Option<store>`: `None` skips (a server-backed store not configured).
    (skip_unless: $factory:expr) => {
        $crate::store_conformance_tests!(@list optional $factory);
    };
    ($factory:expr) => {
        $crate::store_conformance_tests!(@list required $factory);
    };
}

fn key(platform: PlatformKind, server: &str, channel: &str) -> EntityKey {
    EntityKey {
        platform,
        server_id: server.to_owned(),
        channel_id: channel.to_owned(),
    }
}

fn command(community: CommunityId, name: &str, response: &str) -> CustomCommand {
    let now = super::now_millis();
    CustomCommand {
        community_id: community,
        name: name.to_owned(),
        response: response.to_owned(),
        created_by: "tester".to_owned(),
        created_at: now,
        updated_at: now,
    }
}

/// Resolving a key twice gives the same entity; different keys give different entities.
pub async fn entities_are_created_once_per_key(store: &dyn Store) {
    store
        .ping()
        .await
        .expect("a fresh store answers its health check");
    let twitch = key(PlatformKind::Twitch, "pond", "pond");
    let first = store.resolve_entity(&twitch).await.expect("created");
    let again = store.resolve_entity(&twitch).await.expect("found");
    assert_eq!(first, again);
    assert_eq!(first.key, twitch);
    let community = store
        .community(first.community_id)
        .await
        .expect("readable")
        .expect("community created with the entity");
    assert_eq!(community.name, "twitch:pond");
    let other = store
        .resolve_entity(&key(PlatformKind::Discord, "pond", "pond"))
        .await
        .expect("created");
    assert_ne!(
        other.id, first.id,
        "same ids on another platform are another place"
    );
    assert_ne!(other.community_id, first.community_id);
    assert!(
        store
            .community(CommunityId(i64::MAX))
            .await
            .expect("readable")
            .is_none()
    );
}

/// Channels of one server land in one community, created once even when resolved concurrently.
pub async fn communities_are_shared_by_a_server(store: &dyn Store) {
    let keys: Vec<_> = (0..20)
        .map(|i| {
            key(
                PlatformKind::Discord,
                "guild",
                &format!("channel-{}", i % 5),
            )
        })
        .collect();
    let entities = join_all(keys.iter().map(|k| store.resolve_entity(k))).await;
    let entities: Vec<_> = entities
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all resolve");
    let community = entities[0].community_id;
    assert!(entities.iter().all(|e| e.community_id == community));
    let mut ids: Vec<_> = entities.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        5,
        "one entity per channel, however often resolved"
    );
}

/// Paging through entities yields every one exactly once.
pub async fn entity_listing_pages_through_everything_once(store: &dyn Store) {
    for i in 0..23 {
        store
            .resolve_entity(&key(PlatformKind::Slack, "team", &format!("c{i}")))
            .await
            .expect("created");
    }
    let mut seen = Vec::new();
    let mut page = Page::first(5);
    loop {
        let batch = store.list_entities(&page).await.expect("listed");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 5);
        page.after = batch.last().map(|e| e.id.to_string());
        seen.extend(batch.into_iter().map(|e| e.key.channel_id));
    }
    seen.sort();
    let mut expected: Vec<_> = (0..23).map(|i| format!("c{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(matches!(
        store
            .list_entities(&Page {
                after: Some("not-an-id".into()),
                limit: 5
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
}

/// Create refuses a taken name, update needs an existing one, delete says whether it deleted.
pub async fn custom_commands_have_create_update_delete_semantics(store: &dyn Store) {
    let entity = store
        .resolve_entity(&key(PlatformKind::Twitch, "c", "c"))
        .await
        .expect("created");
    let community = entity.community_id;
    store
        .create_custom_command(&command(community, "hello", "Hi {user}!"))
        .await
        .expect("created");
    assert!(matches!(
        store
            .create_custom_command(&command(community, "hello", "again"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let found = store
        .custom_command(community, "hello")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(found.response, "Hi {user}!");
    assert_eq!(found.created_by, "tester");

    let updated = store
        .update_custom_command(community, "hello", "Hello {user}")
        .await
        .expect("updated");
    assert_eq!(updated.response, "Hello {user}");
    assert!(updated.updated_at >= found.updated_at);
    assert!(matches!(
        store.update_custom_command(community, "nope", "x").await,
        Err(StoreError::NotFound(_))
    ));

    store
        .create_custom_command(&command(community, "about", "a bot"))
        .await
        .expect("created");
    let names: Vec<_> = store
        .list_custom_commands(community)
        .await
        .expect("listed")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["about", "hello"], "sorted by name");

    assert!(
        store
            .delete_custom_command(community, "hello")
            .await
            .expect("deleted")
    );
    assert!(
        !store
            .delete_custom_command(community, "hello")
            .await
            .expect("second delete is a no-op")
    );
    assert!(
        store
            .custom_command(community, "hello")
            .await
            .expect("read")
            .is_none()
    );
}

/// One community's commands are invisible to another.
pub async fn custom_commands_are_scoped_to_their_community(store: &dyn Store) {
    let a = store
        .resolve_entity(&key(PlatformKind::Twitch, "a", "a"))
        .await
        .expect("created")
        .community_id;
    let b = store
        .resolve_entity(&key(PlatformKind::Twitch, "b", "b"))
        .await
        .expect("created")
        .community_id;
    store
        .create_custom_command(&command(a, "hello", "from a"))
        .await
        .expect("created");
    store
        .create_custom_command(&command(b, "hello", "from b"))
        .await
        .expect("same name in another community is fine");
    assert!(
        store
            .custom_command(b, "hello")
            .await
            .expect("read")
            .is_some()
    );
    store
        .delete_custom_command(a, "hello")
        .await
        .expect("deleted");
    assert_eq!(
        store
            .custom_command(b, "hello")
            .await
            .expect("read")
            .expect("b keeps its own")
            .response,
        "from b"
    );
    assert_eq!(
        store.list_custom_commands(a).await.expect("listed").len(),
        0
    );
}

/// `Absent` creates, `Version` is compare-and-set, `Any` overwrites; versions count writes.
pub async fn documents_honour_their_preconditions(store: &dyn Store) {
    let ns = "1:quotes";
    let v1 = serde_json::json!({"text": "waddle", "tags": ["a", 1, null]});
    assert_eq!(
        store
            .put_document(ns, "q1", &v1, Expect::Absent)
            .await
            .expect("created"),
        1
    );
    assert!(matches!(
        store.put_document(ns, "q1", &v1, Expect::Absent).await,
        Err(StoreError::Conflict(_))
    ));
    let doc = store
        .get_document(ns, "q1")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((doc.value, doc.version), (v1.clone(), 1));

    let v2 = serde_json::json!("second");
    assert_eq!(
        store
            .put_document(ns, "q1", &v2, Expect::Version(1))
            .await
            .expect("cas"),
        2
    );
    assert!(matches!(
        store.put_document(ns, "q1", &v1, Expect::Version(1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .put_document(ns, "nope", &v1, Expect::Version(1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .put_document(ns, "q1", &v1, Expect::Any)
            .await
            .expect("overwrite"),
        3
    );
    assert_eq!(
        store
            .put_document(ns, "fresh", &v1, Expect::Any)
            .await
            .expect("create"),
        1
    );
    assert!(
        store
            .get_document("2:quotes", "q1")
            .await
            .expect("read")
            .is_none(),
        "namespaces are separate"
    );
    assert!(store.delete_document(ns, "q1").await.expect("deleted"));
    assert!(!store.delete_document(ns, "q1").await.expect("no-op"));
    assert!(store.get_document(ns, "q1").await.expect("read").is_none());
}

/// Listing by prefix pages through every matching key once, in order, and nothing else.
pub async fn document_listing_pages_by_prefix_exactly_once(store: &dyn Store) {
    let ns = "1:inventory";
    for i in 0..37 {
        store
            .put_document(
                ns,
                &format!("item:{i:03}"),
                &serde_json::json!(i),
                Expect::Any,
            )
            .await
            .expect("written");
    }
    for other in ["itel", "item", "itemz:1", "jtem:1", "item%:1", "ITEM:1"] {
        store
            .put_document(ns, other, &serde_json::json!(other), Expect::Any)
            .await
            .expect("written");
    }
    let mut seen = Vec::new();
    let mut page = Page::first(10);
    loop {
        let batch = store
            .list_documents(ns, "item:", &page)
            .await
            .expect("listed");
        if batch.is_empty() {
            break;
        }
        page.after = batch.last().map(|d| d.key.clone());
        seen.extend(batch.into_iter().map(|d| d.key));
    }
    let expected: Vec<_> = (0..37).map(|i| format!("item:{i:03}")).collect();
    assert_eq!(seen, expected);
    let all = store
        .list_documents(ns, "", &Page::first(100))
        .await
        .expect("listed");
    assert_eq!(all.len(), 43, "the empty prefix lists the whole namespace");
    let percent = store
        .list_documents(ns, "item%", &Page::first(100))
        .await
        .expect("listed");
    assert_eq!(percent.len(), 1, "'%' is not a wildcard");
}

/// Many tasks doing read-modify-write with compare-and-set, retrying on conflict, lose nothing.
pub async fn concurrent_compare_and_set_loses_no_update(store: &dyn Store) {
    let ns = "1:cas";
    store
        .put_document(ns, "n", &serde_json::json!(0), Expect::Absent)
        .await
        .expect("created");
    let bump = || async {
        loop {
            let doc = store
                .get_document(ns, "n")
                .await
                .expect("read")
                .expect("exists");
            let next = serde_json::json!(doc.value.as_i64().unwrap_or(0) + 1);
            match store
                .put_document(ns, "n", &next, Expect::Version(doc.version))
                .await
            {
                Ok(_) => return,
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => panic!("unexpected store error: {other}"),
            }
        }
    };
    join_all((0..25).map(|_| bump())).await;
    let doc = store
        .get_document(ns, "n")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(doc.value, serde_json::json!(25));
    assert_eq!(doc.version, 26);
}

/// 100 concurrent increments add exactly 100.
pub async fn counters_add_up_under_concurrency(store: &dyn Store) {
    let ns = "1:uses";
    assert_eq!(store.counter(ns, "hello").await.expect("read"), 0);
    let results = join_all((0..100).map(|_| store.increment(ns, "hello", 1))).await;
    let mut values: Vec<i64> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all increments succeed");
    values.sort();
    assert_eq!(
        values,
        (1..=100).collect::<Vec<_>>(),
        "each saw a distinct value"
    );
    assert_eq!(store.counter(ns, "hello").await.expect("read"), 100);
    assert_eq!(
        store.increment(ns, "hello", -30).await.expect("decrement"),
        70
    );
}

/// A batch applies every write in order (a key twice counts twice) and, with one bad key,
/// applies none.
pub async fn batches_apply_all_or_none(store: &dyn Store) {
    use serde_json::json;
    store.increment("1:batch", "ann", 5).await.expect("seeded");
    store
        .put_document(
            "1:docs",
            "kept",
            &json!({"first": 1, "name": "old"}),
            Expect::Any,
        )
        .await
        .expect("seeded");
    let fields = |value: serde_json::Value| value.as_object().cloned().expect("an object");
    store
        .write_batch(&[
            Write::increment("1:batch", "ann", 2),
            Write::increment("1:batch", "bob", -3),
            Write::increment("2:batch", "ann", 7),
            Write::increment("1:batch", "ann", 1),
            Write::insert("1:docs", "kept", json!({"first": 2})),
            Write::merge(
                "1:docs",
                "kept",
                fields(json!({"name": "new", "gone": null})),
            ),
            Write::insert("1:docs", "fresh", json!({"first": 3})),
            Write::merge("1:docs", "fresh", fields(json!({"name": "cat"}))),
            Write::merge("1:docs", "merged", fields(json!({"name": "dan"}))),
            Write::put("1:docs", "put", json!([1, 2])),
            Write::put("1:docs", "dropped", json!(1)),
            Write::delete("1:docs", "dropped"),
        ])
        .await
        .expect("applied");
    assert_eq!(store.counter("1:batch", "ann").await.expect("read"), 8);
    assert_eq!(store.counter("1:batch", "bob").await.expect("read"), -3);
    assert_eq!(store.counter("2:batch", "ann").await.expect("read"), 7);
    let value = |key: &'static str| async move {
        store
            .get_document("1:docs", key)
            .await
            .expect("read")
            .map(|document| document.value)
    };
    assert_eq!(
        value("kept").await,
        Some(json!({"first": 1, "name": "new", "gone": null})),
        "an insert keeps what is there; a merge sets its fields and keeps the others"
    );
    assert_eq!(
        value("fresh").await,
        Some(json!({"first": 3, "name": "cat"}))
    );
    assert_eq!(value("merged").await, Some(json!({"name": "dan"})));
    assert_eq!(value("put").await, Some(json!([1, 2])));
    assert_eq!(value("dropped").await, None);
    let refused = store
        .write_batch(&[
            Write::increment("1:batch", "ann", 100),
            Write::put("1:docs", "kept", json!(0)),
            Write::increment("1:batch", "", 1),
        ])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.counter("1:batch", "ann").await.expect("read"),
        8,
        "nothing of a refused batch is applied"
    );
    assert_eq!(value("kept").await.expect("kept")["first"], 1);
    store
        .write_batch(&[])
        .await
        .expect("an empty batch is fine");
}

/// Top-N is ordered by value, then key, and limited.
pub async fn top_counters_are_ordered(store: &dyn Store) {
    let ns = "1:rep";
    for (key, value) in [("ann", 5), ("bob", 9), ("cat", 5), ("dan", 1)] {
        store.increment(ns, key, value).await.expect("incremented");
    }
    store
        .increment("2:rep", "eve", 100)
        .await
        .expect("other ns");
    let top = store.top_counters(ns, 3).await.expect("top");
    assert_eq!(
        top,
        [
            ("bob".to_owned(), 9),
            ("ann".to_owned(), 5),
            ("cat".to_owned(), 5)
        ]
    );
    assert!(
        store
            .top_counters("empty", 3)
            .await
            .expect("top")
            .is_empty()
    );
}

/// Empty namespaces and keys are refused, not stored.
pub async fn empty_keys_are_refused(store: &dyn Store) {
    let value = serde_json::json!(1);
    assert!(matches!(
        store.put_document("", "k", &value, Expect::Any).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_document("ns", "", &value, Expect::Any).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.increment("ns", "", 1).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn community(store: &dyn Store, server: &str) -> CommunityId {
    store
        .resolve_entity(&key(PlatformKind::Twitch, server, server))
        .await
        .expect("created")
        .community_id
}

/// Communities can be made by name, found by name and listed; entities can be looked up without
/// being created and moved between communities.
pub async fn communities_are_created_found_and_listed(store: &dyn Store) {
    let created_at = super::from_millis(1_700_000_000_123);
    let pond = store
        .create_community("pond", created_at)
        .await
        .expect("created");
    assert_eq!((pond.name.as_str(), pond.created_at), ("pond", created_at));
    assert!(matches!(
        store.create_community("pond", created_at).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_community("", created_at).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.community_named("pond").await.expect("read"),
        Some(pond.clone())
    );
    assert!(store.community_named("lake").await.expect("read").is_none());

    let lake_key = key(PlatformKind::Discord, "lake", "general");
    assert!(
        store.entity(&lake_key).await.expect("read").is_none(),
        "looking up never creates"
    );
    let lake = store.resolve_entity(&lake_key).await.expect("created");
    assert_eq!(
        store.entity(&lake_key).await.expect("read"),
        Some(lake.clone())
    );
    let moved = store
        .assign_entity(&lake_key, pond.id)
        .await
        .expect("moved");
    assert_eq!((moved.id, moved.community_id), (lake.id, pond.id));
    assert_eq!(
        store.resolve_entity(&lake_key).await.expect("found"),
        moved,
        "the move sticks"
    );
    let fresh_key = key(PlatformKind::Slack, "T1", "C1");
    let fresh = store
        .assign_entity(&fresh_key, pond.id)
        .await
        .expect("created in place");
    assert_eq!(fresh.community_id, pond.id);
    assert!(matches!(
        store.assign_entity(&fresh_key, CommunityId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));

    let mut seen = Vec::new();
    let mut page = Page::first(1);
    loop {
        let batch = store.list_communities(&page).await.expect("listed");
        let Some(last) = batch.last() else { break };
        page.after = Some(last.id.0.to_string());
        seen.extend(batch.into_iter().map(|c| c.name));
    }
    assert_eq!(
        seen,
        ["pond", "discord:lake"],
        "every community once, by id"
    );
}

/// Counters list in key order page by page; namespaces list once each, documents or counters.
pub async fn counters_and_namespaces_are_enumerable(store: &dyn Store) {
    for key in ["c", "a", "b", "d"] {
        store.increment("7:uses", key, 2).await.expect("counted");
    }
    store.increment("8:uses", "x", 1).await.expect("counted");
    let value = serde_json::json!({"text": "waddle"});
    for ns in ["7:quotes", "7:uses", "70:quotes", "7:gone"] {
        store
            .put_document(ns, "1", &value, Expect::Any)
            .await
            .expect("written");
    }
    assert!(store.delete_document("7:gone", "1").await.expect("deleted"));

    let mut seen = Vec::new();
    let mut page = Page::first(3);
    loop {
        let batch = store.list_counters("7:uses", &page).await.expect("listed");
        let Some((last, _)) = batch.last() else { break };
        page.after = Some(last.clone());
        seen.extend(batch);
    }
    let expected: Vec<(String, i64)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|k| (k.to_owned(), 2))
        .collect();
    assert_eq!(seen, expected);

    assert_eq!(
        store.list_namespaces("7:").await.expect("listed"),
        ["7:quotes", "7:uses"],
        "documents and counters, each once; emptied ones gone; 70: is another community"
    );
    assert_eq!(
        store.list_namespaces("").await.expect("listed"),
        ["70:quotes", "7:quotes", "7:uses", "8:uses"]
    );
}

/// A grant is per (community, platform, user); granting again replaces it.
pub async fn role_grants_replace_and_are_scoped(store: &dyn Store) {
    let a = community(store, "a").await;
    let b = community(store, "b").await;
    let grant = |community, platform: PlatformKind, user: &str, level| RoleGrant {
        community_id: community,
        platform,
        user_id: user.to_owned(),
        level,
        granted_by: "owner".to_owned(),
        granted_at: super::now_millis(),
    };
    store
        .put_role_grant(&grant(a, PlatformKind::Twitch, "42", PermissionLevel::Vip))
        .await
        .expect("granted");
    store
        .put_role_grant(&grant(
            a,
            PlatformKind::Twitch,
            "42",
            PermissionLevel::Moderator,
        ))
        .await
        .expect("replaced");
    store
        .put_role_grant(&grant(
            a,
            PlatformKind::Discord,
            "42",
            PermissionLevel::Subscriber,
        ))
        .await
        .expect("granted");
    let found = store
        .role_grant(a, &PlatformKind::Twitch, "42")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(found.level, PermissionLevel::Moderator);
    assert!(
        store
            .role_grant(b, &PlatformKind::Twitch, "42")
            .await
            .expect("read")
            .is_none(),
        "another community knows nothing of it"
    );
    let listed: Vec<_> = store
        .list_role_grants(a)
        .await
        .expect("listed")
        .into_iter()
        .map(|g| (g.platform.to_string(), g.level))
        .collect();
    assert_eq!(
        listed,
        [
            ("discord".to_owned(), PermissionLevel::Subscriber),
            ("twitch".to_owned(), PermissionLevel::Moderator)
        ]
    );
    assert!(
        store
            .delete_role_grant(a, &PlatformKind::Twitch, "42")
            .await
            .expect("deleted")
    );
    assert!(
        !store
            .delete_role_grant(a, &PlatformKind::Twitch, "42")
            .await
            .expect("no-op")
    );
}

/// Install records keep the flag and the JSON config; writing again replaces them.
pub async fn module_installs_round_trip_their_config(store: &dyn Store) {
    let a = community(store, "a").await;
    let install = ModuleInstall {
        community_id: a,
        module: "quotes".to_owned(),
        enabled: false,
        config: serde_json::json!({"max": 5, "names": ["x"]}),
        updated_by: "owner".to_owned(),
        updated_at: super::now_millis(),
    };
    assert!(
        store
            .module_install(a, "quotes")
            .await
            .expect("read")
            .is_none()
    );
    store.put_module_install(&install).await.expect("written");
    assert_eq!(
        store.module_install(a, "quotes").await.expect("read"),
        Some(install.clone())
    );
    let enabled = ModuleInstall {
        enabled: true,
        ..install.clone()
    };
    store.put_module_install(&enabled).await.expect("replaced");
    let second = ModuleInstall {
        module: "alias".to_owned(),
        ..install
    };
    store.put_module_install(&second).await.expect("written");
    let listed: Vec<_> = store
        .list_module_installs(a)
        .await
        .expect("listed")
        .into_iter()
        .map(|i| (i.module, i.enabled))
        .collect();
    assert_eq!(
        listed,
        [("alias".to_owned(), false), ("quotes".to_owned(), true)]
    );
}

/// Command overrides keep every field, including the unset ones.
pub async fn command_settings_keep_every_override(store: &dyn Store) {
    let a = community(store, "a").await;
    let sparse = CommandSettings::new(a, "hello");
    store.put_command_settings(&sparse).await.expect("written");
    assert_eq!(
        store.command_settings(a, "hello").await.expect("read"),
        Some(sparse)
    );
    let full = CommandSettings {
        community_id: a,
        command: "hello".to_owned(),
        enabled: false,
        min_level: Some(PermissionLevel::Vip),
        global_cooldown_secs: Some(30),
        user_cooldown_secs: Some(120),
        cooldown_bucket: Some("greetings".to_owned()),
    };
    store.put_command_settings(&full).await.expect("replaced");
    assert_eq!(
        store.command_settings(a, "hello").await.expect("read"),
        Some(full.clone())
    );
    let other = CommandSettings::new(a, "Bye");
    store.put_command_settings(&other).await.expect("written");
    let b = community(store, "b").await;
    store
        .put_command_settings(&CommandSettings::new(b, "zzz"))
        .await
        .expect("written");
    assert_eq!(
        store.list_command_settings(a).await.expect("listed"),
        [other, full],
        "the community's own, in byte order"
    );
    assert!(
        store
            .delete_command_settings(a, "hello")
            .await
            .expect("deleted")
    );
    assert!(
        store
            .command_settings(a, "hello")
            .await
            .expect("read")
            .is_none()
    );
}

/// Aliases: create refuses a taken name; per community; sorted listing; delete says whether.
pub async fn aliases_have_create_delete_semantics(store: &dyn Store) {
    let a = community(store, "a").await;
    let b = community(store, "b").await;
    let alias = |community, name: &str, target: &str| Alias {
        community_id: community,
        name: name.to_owned(),
        target: target.to_owned(),
        created_by: "mod".to_owned(),
        created_at: super::now_millis(),
    };
    let so = alias(a, "so", "!shoutout {arg1}");
    store.create_alias(&so).await.expect("created");
    assert!(matches!(
        store.create_alias(&alias(a, "so", "!other")).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_alias(&alias(b, "so", "!b"))
        .await
        .expect("another community may use the name");
    store
        .create_alias(&alias(a, "q", "!quote"))
        .await
        .expect("created");
    assert_eq!(store.alias(a, "so").await.expect("read"), Some(so));
    let names: Vec<_> = store
        .list_aliases(a)
        .await
        .expect("listed")
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["q", "so"]);
    assert!(store.delete_alias(a, "so").await.expect("deleted"));
    assert!(!store.delete_alias(a, "so").await.expect("no-op"));
    assert!(store.alias(a, "so").await.expect("read").is_none());
    assert_eq!(
        store.alias(b, "so").await.expect("read").map(|x| x.target),
        Some("!b".to_owned())
    );
}

/// Rules come back by priority with their action intact; matches are counted per rule.
pub async fn string_rules_keep_their_action_and_count_matches(store: &dyn Store) {
    let a = community(store, "a").await;
    let b = community(store, "b").await;
    let rule = |community, pattern: &str, priority, action| StringRule {
        id: 0,
        community_id: community,
        pattern: pattern.to_owned(),
        match_type: MatchType::Word,
        case_sensitive: false,
        priority,
        action,
        enabled: true,
        match_count: 0,
        last_matched: None,
        created_by: "mod".to_owned(),
        created_at: super::now_millis(),
    };
    let block = store
        .create_rule(&rule(
            a,
            "spam",
            50,
            RuleAction::Block {
                message: Some("no spam".to_owned()),
                timeout_secs: Some(60),
            },
        ))
        .await
        .expect("created");
    assert_eq!(block.match_count, 0, "a new rule has matched nothing");
    let warn = store
        .create_rule(&rule(a, "heck", 10, RuleAction::Warn { message: None }))
        .await
        .expect("created");
    store
        .create_rule(&rule(
            b,
            "x",
            1,
            RuleAction::Webhook {
                url: "https://example.invalid/hook".to_owned(),
            },
        ))
        .await
        .expect("created");
    assert_ne!(block.id, warn.id);
    let listed = store.list_rules(a).await.expect("listed");
    assert_eq!(listed, [warn.clone(), block.clone()], "by priority");

    let at = super::now_millis();
    store
        .record_rule_match(a, block.id, at)
        .await
        .expect("counted");
    store
        .record_rule_match(a, block.id, at)
        .await
        .expect("counted");
    store
        .record_rule_match(b, block.id, at)
        .await
        .expect("another community's id is a no-op");
    let counted = store.list_rules(a).await.expect("listed");
    assert_eq!(counted[1].match_count, 2);
    assert_eq!(counted[1].last_matched, Some(at));

    let imported = store
        .create_rule(&StringRule {
            match_count: 41,
            last_matched: Some(at),
            ..rule(b, "moved", 5, RuleAction::Warn { message: None })
        })
        .await
        .expect("created");
    assert_eq!(
        store.list_rules(b).await.expect("listed").last(),
        Some(&imported),
        "an imported rule keeps its count and last match"
    );
    assert_eq!(
        (imported.match_count, imported.last_matched),
        (41, Some(at))
    );

    assert!(!store.delete_rule(b, block.id).await.expect("not b's"));
    assert!(store.delete_rule(a, block.id).await.expect("deleted"));
    assert_eq!(store.list_rules(a).await.expect("listed"), [warn]);
}

/// Audit entries get increasing ids, keep every field, and list newest first, per community or
/// bot-wide, paged.
pub async fn audit_entries_list_newest_first_per_community(store: &dyn Store) {
    let a = community(store, "a").await;
    let at = super::now_millis();
    let entry = |community, action: &str| AuditEntry {
        id: 0,
        community_id: community,
        actor: "key:k1 (admin)".to_owned(),
        action: action.to_owned(),
        target: "hello".to_owned(),
        detail: serde_json::json!({"response": "Hi {user}!"}),
        at,
    };
    let first = store
        .append_audit(&entry(Some(a), "command.create"))
        .await
        .expect("appended");
    let second = store
        .append_audit(&entry(Some(a), "command.update"))
        .await
        .expect("appended");
    store
        .append_audit(&entry(None, "ai.config.update"))
        .await
        .expect("appended");
    assert!(second > first);
    let listed = store.list_audit(Some(a), 10, 0).await.expect("listed");
    let actions: Vec<&str> = listed.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["command.update", "command.create"]);
    assert_eq!(
        listed[1],
        AuditEntry {
            id: first,
            ..entry(Some(a), "command.create")
        }
    );
    let paged = store.list_audit(Some(a), 1, 1).await.expect("listed");
    assert_eq!(paged.len(), 1);
    assert_eq!(paged[0].id, first);
    let global = store.list_audit(None, 10, 0).await.expect("listed");
    assert_eq!(global.len(), 1);
    assert_eq!(global[0].action, "ai.config.update");
}

/// API key records keep every field (times at the store's millisecond precision), list newest
/// first and by community, and are revoked and touched in place.
pub async fn api_keys_round_trip_and_are_revoked_and_touched(store: &dyn Store) {
    let a = community(store, "a").await;
    let now = super::now_millis();
    let admin = ApiKey {
        id: "k1admin".to_owned(),
        hash: "ab".repeat(32),
        name: "bootstrap admin".to_owned(),
        role: "admin".to_owned(),
        community_id: None,
        created_at: now,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    };
    let collector = ApiKey {
        id: "k2coll".to_owned(),
        name: "twitch collector".to_owned(),
        role: "collector".to_owned(),
        community_id: Some(a),
        created_at: now + std::time::Duration::from_secs(1),
        expires_at: Some(now + std::time::Duration::from_secs(3600)),
        ..admin.clone()
    };
    store.create_api_key(&admin).await.expect("created");
    store.create_api_key(&collector).await.expect("created");
    assert!(matches!(
        store.create_api_key(&admin).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.api_key("k1admin").await.expect("read"),
        Some(admin.clone())
    );
    assert_eq!(store.api_key("nope").await.expect("read"), None);
    assert_eq!(
        store.list_api_keys(None).await.expect("listed"),
        [collector.clone(), admin.clone()],
        "newest first"
    );
    assert_eq!(
        store.list_api_keys(Some(a)).await.expect("listed"),
        std::slice::from_ref(&collector)
    );
    let later = now + std::time::Duration::from_secs(60);
    store.touch_api_key("k2coll", later).await.expect("touched");
    assert!(
        store
            .revoke_api_key("k2coll", later)
            .await
            .expect("revoked")
    );
    assert!(!store.revoke_api_key("nope", later).await.expect("no-op"));
    let revoked = store.api_key("k2coll").await.expect("read").expect("there");
    assert_eq!(revoked.last_used_at, Some(later));
    assert_eq!(revoked.revoked_at, Some(later));
}

/// Remote modules keep every field; names are unique per community.
pub async fn remote_modules_round_trip_every_field(store: &dyn Store) {
    let a = community(store, "a").await;
    let weather = RemoteModule {
        community_id: a,
        name: "weather".to_owned(),
        url: "https://modules.example.invalid/weather".to_owned(),
        secret: "s3cret-s3cret".to_owned(),
        commands: vec!["weather".to_owned(), "forecast".to_owned()],
        events: vec!["subscription".to_owned()],
        timeout_ms: 5000,
        kind: RemoteKind::OpenWhisk {
            namespace: "waddlebot".to_owned(),
            action: "weather".to_owned(),
            auth: "user:pass".to_owned(),
        },
        enabled: true,
        created_at: super::now_millis(),
    };
    store.create_remote_module(&weather).await.expect("created");
    assert!(matches!(
        store.create_remote_module(&weather).await,
        Err(StoreError::Conflict(_))
    ));
    let dice = RemoteModule {
        name: "dice".to_owned(),
        kind: RemoteKind::Webhook,
        events: Vec::new(),
        ..weather.clone()
    };
    store.create_remote_module(&dice).await.expect("created");
    assert_eq!(
        store.list_remote_modules(a).await.expect("listed"),
        [dice, weather]
    );
    assert!(
        store
            .delete_remote_module(a, "dice")
            .await
            .expect("deleted")
    );
    assert!(!store.delete_remote_module(a, "dice").await.expect("no-op"));
    assert_eq!(store.list_remote_modules(a).await.expect("listed").len(), 1);
}

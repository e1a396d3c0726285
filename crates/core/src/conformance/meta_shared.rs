//! `MetaStore` conformance cases for a store shared by many writers and many processes: races run with 64
//! concurrent tasks, replicas with a second handle on the same data, and listings through the service's delimiter
//! logic. Generated per adapter by [`meta_conformance_tests!`](crate::meta_conformance_tests).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::join_all;

use super::meta::{cid, commit, key, marker, new_bucket, null_put, put, with_claim};
use crate::meta::{MetaError, MetaStore};
use crate::model::{Bucket, ObjectVersion, PutCondition, Versioning};
use crate::names::{BucketName, VersionId};
use crate::service::{Gateway, ListParams, VersionsParams};

/// How many tasks a race runs.
const RACERS: usize = 64;

fn seed(i: usize) -> u8 {
    u8::try_from(i % 250 + 1).unwrap_or(1)
}

/// Uploads `new` as the next version of `k` (begin, claim, commit), returning the store's answer.
async fn try_commit(
    store: &dyn MetaStore,
    bucket: &BucketName,
    k: &str,
    new: crate::meta::NewVersion,
) -> Result<ObjectVersion, MetaError> {
    let upload = store.begin_version(bucket, &key(k)).await?;
    let new = with_claim(store, new).await;
    let claim = new.claim;
    let committed = store.commit_version(upload, new).await;
    if committed.is_err() {
        if let Some(claim) = claim {
            store.release_claim(claim).await?;
        }
        store.abort_version(upload).await?;
    }
    committed
}

/// 64 concurrent uploads to one key of a versioned bucket leave 64 versions with distinct, ordered sequence
/// numbers; the newest is the latest, and the listing shows them newest first.
pub async fn racing_commits_to_one_key_get_distinct_ordered_seqs(store: &dyn MetaStore) {
    let b = new_bucket(store, "race64", Versioning::Enabled).await;
    let uploads = (0..RACERS).map(|i| try_commit(store, &b, "hot", put(VersionId::generate(), seed(i), false)));
    let versions: Vec<ObjectVersion> = join_all(uploads).await.into_iter().map(|r| r.expect("commit")).collect();
    let mut seqs: Vec<u64> = versions.iter().map(|v| v.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), RACERS, "sequence numbers are distinct");
    let listed = store.list_versions(&b, "", None, 1000).await.expect("list");
    assert_eq!(listed.len(), RACERS);
    assert!(listed.windows(2).all(|w| w[0].seq > w[1].seq), "newest first, strictly ordered");
    let newest = versions.iter().max_by_key(|v| v.seq).expect("some");
    assert_eq!(store.latest_version(&b, &key("hot")).await.expect("latest").as_ref(), Some(newest));
}

/// 64 concurrent `null` writes to one key of an unversioned bucket leave exactly one visible version, and every
/// replaced version's content reference was dropped exactly once.
pub async fn racing_null_writes_leave_one_version_and_exact_references(store: &dyn MetaStore) {
    let b = new_bucket(store, "racenull", Versioning::Unversioned).await;
    let uploads = (0..RACERS).map(|i| try_commit(store, &b, "k", null_put(seed(i))));
    let versions: Vec<ObjectVersion> = join_all(uploads).await.into_iter().map(|r| r.expect("commit")).collect();
    let listed = store.list_versions(&b, "", None, 1000).await.expect("list");
    assert_eq!(listed.len(), 1, "one null version survives");
    let winner = versions.iter().max_by_key(|v| v.seq).expect("some");
    assert_eq!(listed[0], *winner, "the last commit is the survivor");
    for i in 0..RACERS {
        let refs = store.content_refs(&cid(seed(i))).await.expect("refs");
        let expected = u64::from(Some(cid(seed(i))) == winner.meta().and_then(|m| m.cid));
        assert_eq!(refs, expected, "content {i}");
    }
}

/// Of 64 concurrent deletes of one version by id, one retires it and drops its reference; the rest find nothing.
pub async fn racing_deletes_by_id_retire_once(store: &dyn MetaStore) {
    let b = new_bucket(store, "racedel", Versioning::Enabled).await;
    commit(store, &b, "k", put(VersionId::generate(), 7, false)).await;
    let target = commit(store, &b, "k", put(VersionId::generate(), 8, false)).await;
    let k = key("k");
    let deletes = (0..RACERS).map(|_| store.retire_version(&b, &k, &target.version_id));
    let results: Vec<Option<ObjectVersion>> = join_all(deletes).await.into_iter().map(|r| r.expect("retire")).collect();
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 1, "exactly one delete retired it");
    assert_eq!(store.content_refs(&cid(8)).await.expect("refs"), 0);
    assert_eq!(store.content_refs(&cid(7)).await.expect("refs"), 1, "the other version keeps its reference");
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("the older version");
    assert_eq!(latest.meta().map(|m| m.size), Some(7), "the previous version is the latest again");
}

/// 64 concurrent `If-None-Match: *` writes of one new key: exactly one wins, the rest fail the precondition.
pub async fn racing_if_none_match_writes_have_one_winner(store: &dyn MetaStore) {
    let b = new_bucket(store, "racenone", Versioning::Enabled).await;
    let uploads = (0..RACERS).map(|i| {
        let mut new = put(VersionId::generate(), seed(i), false);
        new.condition = Some(PutCondition::IfNoneMatchAny);
        try_commit(store, &b, "once", new)
    });
    let results = join_all(uploads).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one winner");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| r == &Err(MetaError::PreconditionFailed)));
    assert_eq!(store.list_versions(&b, "", None, 1000).await.expect("list").len(), 1);
}

/// 64 concurrent `If-Match` writes naming the current ETag: exactly one wins (each changes the ETag).
pub async fn racing_if_match_writes_have_one_winner(store: &dyn MetaStore) {
    let b = new_bucket(store, "racematch", Versioning::Enabled).await;
    let first = commit(store, &b, "k", put(VersionId::generate(), 251, false)).await;
    let etag = first.meta().map(|m| m.etag.clone()).expect("an object");
    let uploads = (0..RACERS).map(|i| {
        let mut new = put(VersionId::generate(), seed(i), false);
        new.condition = Some(PutCondition::IfMatch(etag.clone()));
        try_commit(store, &b, "k", new)
    });
    let results = join_all(uploads).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one winner");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| r == &Err(MetaError::PreconditionFailed)));
}

/// 64 concurrent creations of one bucket name by two users: one wins; every other gets `BucketExists` naming the
/// winner.
pub async fn racing_bucket_creations_have_one_winner(store: &dyn MetaStore) {
    let alice = store.create_user("alice@race.example").await.expect("user").id;
    let bob = store.create_user("bob@race.example").await.expect("user").id;
    let name = BucketName::parse("contested").expect("valid");
    let creations = (0..RACERS).map(|i| {
        let owner = if i % 2 == 0 { alice } else { bob };
        let bucket =
            Bucket { name: name.clone(), owner, created_at: SystemTime::now(), versioning: Versioning::Enabled };
        async move { store.create_bucket(&bucket).await }
    });
    let results = join_all(creations).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one winner");
    let owner = store.bucket(&name).await.expect("lookup").expect("created").owner;
    assert!(results.iter().filter(|r| r.is_err()).all(|r| r == &Err(MetaError::BucketExists { owner })));
}

/// Keys are compared as bytes: `%`, `_` and `\` are not wildcards in prefixes; NUL, multi-byte and 1024-byte keys
/// round-trip and sort in byte order.
pub async fn keys_with_wildcards_and_multibyte_characters_are_exact(store: &dyn MetaStore) {
    let b = new_bucket(store, "oddkeys", Versioning::Unversioned).await;
    let long = "k".repeat(1024);
    let keys = [
        "%",
        "%a",
        "_",
        "_a",
        "\\",
        "\\a",
        "a%b",
        "a_b",
        "a\\b",
        "ab",
        "axb",
        "日本",
        "日本語",
        "\u{10FFFF}",
        "\0",
        "a\0b",
        &long,
    ];
    for (i, k) in keys.iter().enumerate() {
        commit(store, &b, k, null_put(seed(i))).await;
    }
    let b = &b;
    let listed = |prefix: &'static str| async move {
        let found = store.list_latest(b, prefix, None, 100).await.expect("list");
        found.into_iter().map(|v| v.key.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(listed("%").await, ["%", "%a"]);
    assert_eq!(listed("_").await, ["_", "_a"]);
    assert_eq!(listed("\\").await, ["\\", "\\a"]);
    assert_eq!(listed("a%").await, ["a%b"]);
    assert_eq!(listed("a\0").await, ["a\0b"], "NUL is a character like any other");
    assert_eq!(listed("a_").await, ["a_b"]);
    assert_eq!(listed("a\\").await, ["a\\b"]);
    assert_eq!(listed("日本").await, ["日本", "日本語"]);
    assert_eq!(listed("\u{10FFFF}").await, ["\u{10FFFF}"]);
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort();
    assert_eq!(listed("").await, sorted, "byte order");
    let found = store.latest_version(b, &key(&long)).await.expect("latest").expect("the 1024-byte key");
    assert_eq!(found.key.as_str().len(), 1024);
}

/// A grouped listing returns one key per common prefix and every other key, past `after`, whatever the prefix,
/// delimiter (several bytes, or a character XML cannot carry) and odd keys (U+10FFFF, NUL) — as a plain scan would.
pub async fn grouped_listings_return_one_key_per_common_prefix(store: &dyn MetaStore) {
    let b = new_bucket(store, "grouped", Versioning::Enabled).await;
    let keys = [
        "a/1",
        "a/2",
        "a/\u{10FFFF}x",
        "a/\u{10FFFF}\u{10FFFF}",
        "b",
        "c/d/e",
        "c/x",
        "d",
        "e/1",
        "f//g",
        "f//h",
        "f/i",
        "g\0h",
        "g\0i",
        "g\u{1}j",
        "日/本",
        "日/語",
    ];
    for (i, k) in keys.iter().enumerate() {
        commit(store, &b, k, put(VersionId::generate(), seed(i), false)).await;
    }
    store.append_version(&b, &key("e/1"), marker(VersionId::generate(), false)).await.expect("marker");
    let live: Vec<&str> = {
        let mut live: Vec<&str> = keys.iter().copied().filter(|k| *k != "e/1").collect();
        live.sort_unstable();
        live
    };
    let cases: [(&str, &str, Option<&str>, usize); 12] = [
        ("", "/", None, 100),
        ("", "/", Some("a/"), 100),
        ("", "/", Some("a/1"), 100),
        ("", "/", Some("b"), 2),
        ("", "//", None, 100),
        ("c/", "/", None, 100),
        ("", "\0", None, 100),
        ("g", "\0", None, 100),
        ("", "/", None, 1),
        ("a/", "/", Some("a/1"), 100),
        ("", "本", None, 100),
        ("a", "\u{10FFFF}", None, 100),
    ];
    for (prefix, delimiter, after, limit) in cases {
        let mut expected: Vec<String> = Vec::new();
        let mut groups: Vec<&str> = Vec::new();
        for k in live.iter().filter(|k| k.starts_with(prefix) && after.is_none_or(|a| **k > a)) {
            match crate::meta::common_prefix(k, prefix, delimiter) {
                Some(g) if groups.contains(&g) || after.is_some_and(|a| g <= a) => {}
                Some(g) => {
                    groups.push(g);
                    expected.push((*k).to_owned());
                }
                None => expected.push((*k).to_owned()),
            }
        }
        expected.truncate(limit);
        let found = store.list_latest_grouped(&b, prefix, delimiter, after, limit).await.expect("list");
        let found: Vec<String> = found.into_iter().map(|v| v.key.to_string()).collect();
        assert_eq!(found, expected, "prefix {prefix:?}, delimiter {delimiter:?}, after {after:?}, limit {limit}");
    }
}

/// Retiring the latest version (object or delete marker) uncovers the one before it, for lookups and listings.
pub async fn retiring_the_latest_version_uncovers_the_previous_one(store: &dyn MetaStore) {
    let b = new_bucket(store, "uncover", Versioning::Enabled).await;
    let v1 = commit(store, &b, "k", put(VersionId::generate(), 1, false)).await;
    let v2 = commit(store, &b, "k", put(VersionId::generate(), 2, false)).await;
    let m = store.append_version(&b, &key("k"), marker(VersionId::generate(), false)).await.expect("marker");
    assert!(store.list_latest(&b, "", None, 10).await.expect("list").is_empty(), "a delete marker hides the key");
    store.retire_version(&b, &key("k"), &m.version_id).await.expect("retire").expect("the marker");
    assert_eq!(store.list_latest(&b, "", None, 10).await.expect("list"), std::slice::from_ref(&v2));
    store.retire_version(&b, &key("k"), &v2.version_id).await.expect("retire").expect("v2");
    assert_eq!(store.latest_version(&b, &key("k")).await.expect("latest"), Some(v1.clone()));
    assert_eq!(store.list_latest(&b, "", None, 10).await.expect("list"), std::slice::from_ref(&v1));
    store.retire_version(&b, &key("k"), &v1.version_id).await.expect("retire").expect("v1");
    assert_eq!(store.latest_version(&b, &key("k")).await.expect("latest"), None);
    let again = commit(store, &b, "k", put(VersionId::generate(), 3, false)).await;
    assert!(again.seq > m.seq, "sequence numbers keep growing after the chain emptied");
}

/// A GET's metadata in one read: the bucket, and its key's newest visible version (a delete marker included).
pub async fn a_get_reads_the_bucket_and_the_latest_version_together(store: &dyn MetaStore) {
    let b = new_bucket(store, "together", Versioning::Enabled).await;
    let missing = BucketName::parse("missing").expect("valid");
    assert_eq!(store.bucket_and_latest(&missing, &key("k")).await.expect("read"), None);
    let bucket = store.bucket(&b).await.expect("lookup").expect("bucket");
    assert_eq!(store.bucket_and_latest(&b, &key("k")).await.expect("read"), Some((bucket.clone(), None)));
    commit(store, &b, "k", put(VersionId::generate(), 1, false)).await;
    let latest = commit(store, &b, "k", put(VersionId::generate(), 2, false)).await;
    assert_eq!(store.bucket_and_latest(&b, &key("k")).await.expect("read"), Some((bucket.clone(), Some(latest))));
    let m = store.append_version(&b, &key("k"), marker(VersionId::generate(), false)).await.expect("marker");
    assert_eq!(store.bucket_and_latest(&b, &key("k")).await.expect("read"), Some((bucket, Some(m))));
}

/// Aborted and retired versions are pruned once older than the cutoff; visible versions never are.
pub async fn history_is_pruned_but_visible_versions_stay(store: &dyn MetaStore) {
    let b = new_bucket(store, "prune", Versioning::Unversioned).await;
    for i in 1..=5 {
        commit(store, &b, "k", null_put(i)).await;
    }
    let aborted = store.begin_version(&b, &key("k")).await.expect("begin");
    store.abort_version(aborted).await.expect("abort");
    let before = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(store.prune_history(SystemTime::UNIX_EPOCH, 100).await.expect("prune"), 0, "nothing that old");
    assert_eq!(store.prune_history(before, 2).await.expect("prune"), 2, "at most the limit");
    assert_eq!(store.prune_history(before, 100).await.expect("prune"), 3, "the rest of the history");
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("kept");
    assert_eq!(latest.meta().map(|m| m.size), Some(5));
    assert_eq!(store.list_versions(&b, "", None, 10).await.expect("list"), [latest]);
    assert_eq!(store.content_refs(&cid(5)).await.expect("refs"), 1);
    let next = commit(store, &b, "k", null_put(6)).await;
    assert_eq!(store.list_versions(&b, "", None, 10).await.expect("list"), [next]);
}

/// Pending versions and claims belong to their replica: cleanup frees those of a replica whose heartbeat stopped
/// (or older than the bound) and never those of a live one.
pub async fn orphans_are_only_those_of_stopped_replicas(store: &dyn MetaStore, peer: &dyn MetaStore) {
    assert_ne!(store.replica(), peer.replica());
    let b = new_bucket(store, "replicas", Versioning::Enabled).await;
    store.heartbeat(Duration::from_secs(60)).await.expect("beat");
    peer.heartbeat(Duration::from_millis(1)).await.expect("beat");
    let mine = store.begin_version(&b, &key("mine")).await.expect("begin");
    let my_claim = store.claim_content(&cid(1), 1).await.expect("claim");
    let theirs = peer.begin_version(&b, &key("theirs")).await.expect("begin");
    let _their_claim = peer.claim_content(&cid(2), 2).await.expect("claim");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(store.abort_orphans(long_ago).await.expect("sweep"), 1, "only the stopped replica's upload");
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 0, "its claim is released");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1, "the live replica's claim stays");
    assert_eq!(peer.commit_version(theirs, put(VersionId::generate(), 2, false)).await, Err(MetaError::NoSuchUpload));
    let mut new = put(VersionId::generate(), 1, false);
    new.claim = Some(my_claim);
    store.commit_version(mine, new).await.expect("the live replica's upload commits");

    let late = store.begin_version(&b, &key("late")).await.expect("begin");
    assert_eq!(peer.abort_orphans(SystemTime::now() + Duration::from_secs(1)).await.expect("sweep"), 1, "by age");
    assert_eq!(store.commit_version(late, put(VersionId::generate(), 1, false)).await, Err(MetaError::NoSuchUpload));
}

/// Through the service: a delimiter listing pages through common prefixes, delete markers and markers exactly as
/// S3 does, however the store pages.
pub async fn delimiter_listings_page_through_prefixes_and_delete_markers(store: Arc<dyn MetaStore>) {
    let b = new_bucket(store.as_ref(), "delimited", Versioning::Enabled).await;
    let owner = store.bucket(&b).await.expect("lookup").expect("bucket").owner;
    let mut expected_prefixes = Vec::new();
    let mut expected_keys = Vec::new();
    for d in 0..30 {
        let dir = format!("d{d:02}/");
        for f in 0..40 {
            commit(store.as_ref(), &b, &format!("{dir}f{f:02}"), put(VersionId::generate(), 1, false)).await;
        }
        if d % 3 == 0 {
            // A directory whose every key is deleted is not listed.
            for f in 0..40 {
                let k = key(&format!("{dir}f{f:02}"));
                store.append_version(&b, &k, marker(VersionId::generate(), false)).await.expect("marker");
            }
        } else {
            expected_prefixes.push(dir);
        }
        let top = format!("t{d:02}");
        commit(store.as_ref(), &b, &top, put(VersionId::generate(), 1, false)).await;
        if d % 2 == 0 {
            store.append_version(&b, &key(&top), marker(VersionId::generate(), false)).await.expect("marker");
        } else {
            expected_keys.push(top);
        }
    }
    let gateway = Gateway::new(Arc::clone(&store), Arc::new(crate::MemoryContent::new()), Default::default());
    for page_size in [1, 7, 1000] {
        let (mut prefixes, mut keys, mut after) = (Vec::new(), Vec::new(), None);
        loop {
            let params = ListParams {
                prefix: String::new(),
                delimiter: Some("/".into()),
                after: after.clone(),
                max_keys: page_size,
            };
            let page = gateway.list_objects(owner, &b, &params).await.expect("list");
            prefixes.extend(page.common_prefixes);
            keys.extend(page.objects.into_iter().map(|v| v.key.to_string()));
            if !page.truncated {
                break;
            }
            after = page.next_after;
        }
        assert_eq!(prefixes, expected_prefixes, "pages of {page_size}");
        assert_eq!(keys, expected_keys, "pages of {page_size}");
    }
    let params = VersionsParams { delimiter: Some("/".into()), max_keys: 1000, ..Default::default() };
    let versions = gateway.list_versions(owner, &b, &params).await.expect("versions");
    assert_eq!(versions.common_prefixes.len(), 30, "every directory has versions");
    assert_eq!(versions.versions.len(), 30 + 15, "each top-level key, and the markers of half of them");
}

//! In-memory `MetaStore`: the reference adapter for tests; everything lives behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use s3ipfs_cid::Cid;

use crate::meta::{
    ClaimId, MetaError, MetaStore, NewVersion, StoredContent, UploadId, heartbeat_lease, list_grouped_by_seeks,
    new_replica_name, underflow,
};
use crate::model::{AccessKey, Bucket, MultipartUpload, ObjectVersion, UploadPart, User, VersionState, Versioning};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

#[derive(Debug)]
struct Row {
    id: i64,
    version: ObjectVersion,
    /// The replica that began the version.
    replica: String,
    /// When it was retired.
    retired_at: Option<SystemTime>,
}

/// A content row: its references and where it is in its life.
#[derive(Debug)]
struct Content {
    size: u64,
    refs: u64,
    /// Since when `refs` is zero.
    zero_since: Option<SystemTime>,
    /// Marked by garbage collection: its bytes are being deleted.
    deleting: bool,
}

/// An open claim: its content, when it was made and by which replica.
#[derive(Debug)]
struct Claim {
    cid: Cid,
    at: SystemTime,
    replica: String,
}

#[derive(Debug, Default)]
struct State {
    next_id: i64,
    users: Vec<User>,
    keys: HashMap<String, AccessKey>,
    buckets: BTreeMap<BucketName, Bucket>,
    rows: Vec<Row>,
    content: HashMap<Cid, Content>,
    claims: HashMap<i64, Claim>,
    leases: HashMap<String, (String, SystemTime)>,
    multiparts: BTreeMap<String, (MultipartUpload, BTreeMap<u32, UploadPart>)>,
}

impl State {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn chain<'a>(&'a self, bucket: &'a BucketName, key: &'a ObjectKey) -> impl Iterator<Item = &'a Row> + 'a {
        self.rows.iter().filter(move |r| &r.version.bucket == bucket && &r.version.key == key)
    }

    fn latest<'a>(&'a self, bucket: &'a BucketName, key: &'a ObjectKey) -> Option<&'a ObjectVersion> {
        self.chain(bucket, key).map(|r| &r.version).filter(|v| v.is_visible()).max_by_key(|v| v.seq)
    }

    /// Keys starting with `prefix` after `after` whose latest version is an object: that version, at most `limit`.
    fn latest_objects(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<ObjectVersion> {
        let mut latest: BTreeMap<&str, &ObjectVersion> = BTreeMap::new();
        for v in self.rows.iter().map(|r| &r.version) {
            let k = v.key.as_str();
            if &v.bucket != bucket || !v.is_visible() || !k.starts_with(prefix) || after.is_some_and(|a| k <= a) {
                continue;
            }
            if latest.get(k).is_none_or(|cur| cur.seq < v.seq) {
                latest.insert(k, v);
            }
        }
        latest.into_values().filter(|v| !v.is_delete_marker()).take(limit).cloned().collect()
    }

    fn add_ref(&mut self, cid: Cid, size: u64) {
        let row = self.content.entry(cid).or_insert(Content { size, refs: 0, zero_since: None, deleting: false });
        row.refs += 1;
        row.zero_since = None;
    }

    fn drop_ref(&mut self, cid: &Cid) -> Result<(), MetaError> {
        let row = self.content.get_mut(cid).filter(|row| row.refs > 0).ok_or_else(|| underflow(cid))?;
        row.refs -= 1;
        if row.refs == 0 {
            row.zero_since = Some(SystemTime::now());
        }
        Ok(())
    }

    fn retire(&mut self, index: usize) -> Result<(), MetaError> {
        let row = &mut self.rows[index];
        if !row.version.is_visible() {
            return Err(MetaError::Invalid("only a visible version can be retired"));
        }
        row.version.retired = true;
        row.retired_at = Some(SystemTime::now());
        match row.version.meta().and_then(|m| m.cid) {
            Some(cid) => self.drop_ref(&cid),
            None => Ok(()),
        }
    }

    /// Whether `replica`'s heartbeat lease is live.
    fn beating(&self, replica: &str, now: SystemTime) -> bool {
        self.leases.get(&heartbeat_lease(replica)).is_some_and(|(holder, until)| holder == replica && *until > now)
    }

    /// A claim on `cid`, checked before it is taken over.
    fn check_claim(&self, claim: ClaimId, cid: &Cid) -> Result<(), MetaError> {
        match self.claims.get(&claim.0) {
            Some(open) if &open.cid == cid => Ok(()),
            _ => Err(MetaError::Invalid("the claim does not name this content")),
        }
    }

    /// Writes `new` into row `index` of the chain of `bucket`/`key`, as one transaction: every check runs before
    /// anything changes.
    fn commit(&mut self, index: usize, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        if !matches!(new.state, VersionState::Committed(_) | VersionState::DeleteMarker) {
            return Err(MetaError::Invalid("only objects and delete markers can be committed"));
        }
        let (bucket, key) = (self.rows[index].version.bucket.clone(), self.rows[index].version.key.clone());
        if let Some(condition) = &new.condition {
            condition.check(self.latest(&bucket, &key).and_then(ObjectVersion::meta))?;
        }
        if let Some(upload) = &new.completes
            && !self.multiparts.contains_key(upload)
        {
            return Err(MetaError::NoSuchUpload);
        }
        let content = match &new.state {
            VersionState::Committed(meta) => meta.cid.map(|cid| (cid, meta.size)),
            _ => None,
        };
        match (content, new.claim) {
            (Some((cid, _)), Some(claim)) => self.check_claim(claim, &cid)?,
            (Some((cid, _)), None) if self.content.get(&cid).is_none_or(|c| c.deleting) => {
                return Err(MetaError::ContentGone);
            }
            _ => {}
        }
        // Checked: from here on nothing fails.
        match (content, new.claim) {
            // The claim's reference becomes the version's.
            (Some(_), Some(claim)) => {
                self.claims.remove(&claim.0);
            }
            (Some((cid, size)), None) => self.add_ref(cid, size),
            (None, _) => {}
        }
        if let Some(upload) = &new.completes
            && let Some((_, parts)) = self.multiparts.remove(upload)
        {
            parts.values().try_for_each(|p| self.drop_ref(&p.cid))?;
        }
        if new.replace_null {
            let nulls: Vec<usize> = (0..self.rows.len())
                .filter(|&i| {
                    let v = &self.rows[i].version;
                    v.bucket == bucket && v.key == key && v.version_id.is_null() && v.is_visible()
                })
                .collect();
            nulls.into_iter().try_for_each(|i| self.retire(i))?;
        }
        let seq = self.chain(&bucket, &key).map(|r| r.version.seq).max().unwrap_or(0) + 1;
        let version = &mut self.rows[index].version;
        version.seq = seq;
        version.version_id = new.version_id;
        version.state = new.state;
        version.modified_at = SystemTime::now();
        Ok(version.clone())
    }

    fn push_pending(&mut self, bucket: &BucketName, key: &ObjectKey, replica: &str) -> Result<(i64, usize), MetaError> {
        if !self.buckets.contains_key(bucket) {
            return Err(MetaError::NoSuchBucket);
        }
        let id = self.next_id();
        self.rows.push(Row {
            id,
            version: ObjectVersion {
                bucket: bucket.clone(),
                key: key.clone(),
                seq: 0,
                version_id: VersionId::null(),
                state: VersionState::Pending,
                retired: false,
                modified_at: SystemTime::now(),
            },
            replica: replica.to_owned(),
            retired_at: None,
        });
        Ok((id, self.rows.len() - 1))
    }
}

/// Whether GC may mark a content row: unreferenced since before `cutoff` and not already marked.
fn collectable(content: &Content, cutoff: SystemTime) -> bool {
    content.refs == 0 && !content.deleting && content.zero_since.is_some_and(|since| since <= cutoff)
}

/// A `MetaStore` held in memory; lost when dropped.
#[derive(Debug)]
pub struct MemoryMeta {
    state: Arc<Mutex<State>>,
    replica: String,
}

impl Default for MemoryMeta {
    fn default() -> Self {
        MemoryMeta { state: Arc::default(), replica: new_replica_name() }
    }
}

impl MemoryMeta {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle on the same data writing for another replica (tests of several processes on one store).
    pub fn peer(&self, replica: &str) -> Self {
        MemoryMeta { state: Arc::clone(&self.state), replica: replica.to_owned() }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, MetaError> {
        // std Mutex: no await happens while it is held.
        self.state.lock().map_err(|_| MetaError::Backend { message: "memory store poisoned".into() })
    }
}

#[async_trait]
impl MetaStore for MemoryMeta {
    async fn create_user(&self, email: &str) -> Result<User, MetaError> {
        let mut s = self.lock()?;
        if s.users.iter().any(|u| u.email == email) {
            return Err(MetaError::EmailTaken);
        }
        let user = User { id: UserId(s.next_id()), email: email.to_owned(), created_at: SystemTime::now() };
        s.users.push(user.clone());
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, MetaError> {
        Ok(self.lock()?.users.iter().find(|u| u.email == email).cloned())
    }

    async fn add_access_key(&self, key: &AccessKey) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if s.keys.contains_key(&key.id) {
            return Err(MetaError::KeyExists);
        }
        s.keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        Ok(self.lock()?.keys.get(id).cloned())
    }

    async fn remove_access_key(&self, id: &str) -> Result<bool, MetaError> {
        Ok(self.lock()?.keys.remove(id).is_some())
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if let Some(existing) = s.buckets.get(&bucket.name) {
            return Err(MetaError::BucketExists { owner: existing.owner });
        }
        s.buckets.insert(bucket.name.clone(), bucket.clone());
        Ok(())
    }

    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError> {
        Ok(self.lock()?.buckets.get(name).cloned())
    }

    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError> {
        Ok(self.lock()?.buckets.values().filter(|b| b.owner == owner).cloned().collect())
    }

    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        s.buckets.get_mut(name).ok_or(MetaError::NoSuchBucket)?.versioning = versioning;
        Ok(())
    }

    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if !s.buckets.contains_key(name) {
            return Err(MetaError::NoSuchBucket);
        }
        if s.rows.iter().any(|r| &r.version.bucket == name && r.version.is_visible()) {
            return Err(MetaError::BucketNotEmpty);
        }
        s.rows.retain(|r| &r.version.bucket != name);
        let gone: Vec<String> =
            s.multiparts.iter().filter(|(_, (u, _))| &u.bucket == name).map(|(id, _)| id.clone()).collect();
        for id in gone {
            if let Some((_, parts)) = s.multiparts.remove(&id) {
                parts.values().try_for_each(|p| s.drop_ref(&p.cid))?;
            }
        }
        s.buckets.remove(name);
        Ok(())
    }

    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError> {
        Ok(UploadId(self.lock()?.push_pending(bucket, key, &self.replica)?.0))
    }

    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        let mut s = self.lock()?;
        let index = s
            .rows
            .iter()
            .position(|r| r.id == upload.0 && r.version.state == VersionState::Pending)
            .ok_or(MetaError::NoSuchUpload)?;
        s.commit(index, new)
    }

    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if let Some(row) = s.rows.iter_mut().find(|r| r.id == upload.0 && r.version.state == VersionState::Pending) {
            row.version.state = VersionState::Aborted;
        }
        Ok(())
    }

    async fn append_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        new: NewVersion,
    ) -> Result<ObjectVersion, MetaError> {
        let mut s = self.lock()?;
        let (_, index) = s.push_pending(bucket, key, &self.replica)?;
        match s.commit(index, new) {
            Ok(version) => Ok(version),
            Err(err) => {
                s.rows.pop();
                Err(err)
            }
        }
    }

    async fn retire_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let mut s = self.lock()?;
        let found = s.rows.iter().position(|r| {
            let v = &r.version;
            &v.bucket == bucket && &v.key == key && &v.version_id == version_id && v.is_visible()
        });
        match found {
            Some(i) => {
                s.retire(i)?;
                Ok(Some(s.rows[i].version.clone()))
            }
            None => Ok(None),
        }
    }

    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        Ok(self.lock()?.latest(bucket, key).cloned())
    }

    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let s = self.lock()?;
        let found = s.chain(bucket, key).map(|r| &r.version).find(|v| &v.version_id == version_id && v.is_visible());
        Ok(found.cloned())
    }

    async fn list_latest(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        Ok(self.lock()?.latest_objects(bucket, prefix, after, limit))
    }

    async fn list_latest_grouped(
        &self,
        bucket: &BucketName,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        list_grouped_by_seeks(
            prefix,
            delimiter,
            after,
            limit,
            |v: &ObjectVersion| v.key.as_str(),
            |cursor| {
                let s = self.lock()?;
                Ok(s.latest_objects(bucket, prefix, cursor, 1).into_iter().next())
            },
        )
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let s = self.lock()?;
        let mut found: Vec<&ObjectVersion> = s
            .rows
            .iter()
            .map(|r| &r.version)
            .filter(|v| &v.bucket == bucket && v.is_visible() && v.key.as_str().starts_with(prefix))
            .filter(|v| after.is_none_or(|(k, seq)| v.key.as_str() > k || (v.key.as_str() == k && v.seq < seq)))
            .collect();
        found.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError> {
        Ok(self.lock()?.content.get(cid).map_or(0, |c| c.refs))
    }

    fn replica(&self) -> &str {
        &self.replica
    }

    async fn heartbeat(&self, ttl: Duration) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        let until = SystemTime::now() + ttl;
        s.leases.insert(heartbeat_lease(&self.replica), (self.replica.clone(), until));
        Ok(())
    }

    async fn abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError> {
        let mut s = self.lock()?;
        let now = SystemTime::now();
        let orphaned: Vec<usize> = (0..s.rows.len())
            .filter(|&i| {
                let row = &s.rows[i];
                row.version.state == VersionState::Pending
                    && (row.version.modified_at < before || !s.beating(&row.replica, now))
            })
            .collect();
        for &i in &orphaned {
            s.rows[i].version.state = VersionState::Aborted;
        }
        let stale: Vec<i64> = s
            .claims
            .iter()
            .filter(|(_, claim)| claim.at < before || !s.beating(&claim.replica, now))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(claim) = s.claims.remove(&id) {
                s.drop_ref(&claim.cid)?;
            }
        }
        Ok(orphaned.len() as u64)
    }

    async fn prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError> {
        let mut s = self.lock()?;
        let mut pruned = 0;
        s.rows.retain(|row| {
            let dead = match row.version.state {
                VersionState::Aborted => row.version.modified_at < before,
                _ => row.retired_at.is_some_and(|at| at < before),
            };
            let prune = dead && pruned < limit;
            pruned += usize::from(prune);
            !prune
        });
        Ok(pruned as u64)
    }

    async fn claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        let mut s = self.lock()?;
        if s.content.get(cid).is_some_and(|c| c.deleting) {
            return Err(MetaError::ContentBusy);
        }
        s.add_ref(*cid, size);
        let id = s.next_id();
        s.claims.insert(id, Claim { cid: *cid, at: SystemTime::now(), replica: self.replica.clone() });
        Ok(ClaimId(id))
    }

    async fn release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if let Some(open) = s.claims.remove(&claim.0) {
            s.drop_ref(&open.cid)?;
        }
        Ok(())
    }

    async fn collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        let s = self.lock()?;
        let mut found: Vec<StoredContent> = s
            .content
            .iter()
            .filter(|(_, c)| collectable(c, cutoff) || c.deleting)
            .map(|(cid, c)| StoredContent { cid: *cid, size: c.size })
            .filter(|c| after.is_none_or(|a| c.cid.to_bytes() > a.to_bytes()))
            .collect();
        found.sort_by_key(|c| c.cid.to_bytes());
        found.truncate(limit);
        Ok(found)
    }

    async fn mark_collectable(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<StoredContent>, MetaError> {
        let mut s = self.lock()?;
        let marked = s.content.iter().filter(|(_, c)| c.deleting);
        let mut batch: Vec<StoredContent> = marked.map(|(cid, c)| StoredContent { cid: *cid, size: c.size }).collect();
        batch.sort_by_key(|c| c.cid.to_bytes());
        batch.truncate(limit);
        let mut fresh: Vec<(Option<SystemTime>, Cid)> =
            s.content.iter().filter(|(_, c)| collectable(c, cutoff)).map(|(cid, c)| (c.zero_since, *cid)).collect();
        fresh.sort_by_key(|(since, cid)| (*since, cid.to_bytes()));
        let fresh: Vec<Cid> = fresh.into_iter().map(|(_, cid)| cid).take(limit - batch.len()).collect();
        for cid in fresh {
            if let Some(row) = s.content.get_mut(&cid) {
                row.deleting = true;
                batch.push(StoredContent { cid, size: row.size });
            }
        }
        Ok(batch)
    }

    async fn forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        for cid in cids {
            if s.content.get(cid).is_some_and(|c| c.deleting) {
                s.content.remove(cid);
            }
        }
        Ok(())
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        let mut s = self.lock()?;
        let now = SystemTime::now();
        let free = s.leases.get(name).is_none_or(|(h, until)| h == holder || *until <= now);
        if free {
            s.leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if s.leases.get(name).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }

    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        let mut s = self.lock()?;
        if !s.buckets.contains_key(&upload.bucket) {
            return Err(MetaError::NoSuchBucket);
        }
        s.multiparts.insert(upload.id.clone(), (upload.clone(), BTreeMap::new()));
        Ok(())
    }

    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        Ok(self.lock()?.multiparts.get(id).map(|(u, _)| u.clone()))
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        let mut s = self.lock()?;
        if !s.multiparts.contains_key(upload_id) {
            return Err(MetaError::NoSuchUpload);
        }
        s.check_claim(claim, &part.cid)?;
        s.claims.remove(&claim.0);
        let (_, parts) = s.multiparts.get_mut(upload_id).ok_or(MetaError::NoSuchUpload)?;
        let replaced = parts.insert(part.number, part.clone());
        if let Some(old) = &replaced {
            s.drop_ref(&old.cid)?;
        }
        Ok(replaced)
    }

    async fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<UploadPart>, MetaError> {
        let s = self.lock()?;
        let (_, parts) = s.multiparts.get(upload_id).ok_or(MetaError::NoSuchUpload)?;
        Ok(parts.range(after.saturating_add(1)..).map(|(_, p)| p.clone()).take(limit).collect())
    }

    async fn multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        let s = self.lock()?;
        let mut found: Vec<&MultipartUpload> = s
            .multiparts
            .values()
            .map(|(u, _)| u)
            .filter(|u| &u.bucket == bucket && u.key.as_str().starts_with(prefix))
            .filter(|u| after.is_none_or(|(k, id)| (u.key.as_str(), u.id.as_str()) > (k, id)))
            .collect();
        found.sort_by(|a, b| (a.key.as_str(), a.id.as_str()).cmp(&(b.key.as_str(), b.id.as_str())));
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        let mut s = self.lock()?;
        let (_, parts) = s.multiparts.remove(id).ok_or(MetaError::NoSuchUpload)?;
        parts.values().try_for_each(|p| s.drop_ref(&p.cid))?;
        Ok(parts.into_values().collect())
    }

    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        Ok(self.lock()?.multiparts.values().map(|(u, _)| u).filter(|u| u.initiated < before).cloned().collect())
    }
}

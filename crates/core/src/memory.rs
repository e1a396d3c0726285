//! In-memory `MetaStore`: the reference adapter for tests; everything lives behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use s3ipfs_cid::Cid;

use crate::meta::{MetaError, MetaStore, NewVersion, UploadId};
use crate::model::{AccessKey, Bucket, MultipartUpload, ObjectVersion, UploadPart, User, VersionState, Versioning};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

#[derive(Debug)]
struct Row {
    id: i64,
    version: ObjectVersion,
}

#[derive(Debug, Default)]
struct State {
    next_id: i64,
    users: Vec<User>,
    keys: HashMap<String, AccessKey>,
    buckets: BTreeMap<BucketName, Bucket>,
    rows: Vec<Row>,
    refs: HashMap<Cid, u64>,
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

    fn retire(&mut self, index: usize) {
        let version = &mut self.rows[index].version;
        version.retired = true;
        if let Some(cid) = version.meta().and_then(|m| m.cid)
            && let Some(count) = self.refs.get_mut(&cid)
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Writes `new` into row `index` of the chain of `bucket`/`key`, as one transaction.
    fn commit(&mut self, index: usize, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        if !matches!(new.state, VersionState::Committed(_) | VersionState::DeleteMarker) {
            return Err(MetaError::Invalid("only objects and delete markers can be committed"));
        }
        let (bucket, key) = (self.rows[index].version.bucket.clone(), self.rows[index].version.key.clone());
        if new.replace_null {
            let nulls: Vec<usize> = (0..self.rows.len())
                .filter(|&i| {
                    let v = &self.rows[i].version;
                    v.bucket == bucket && v.key == key && v.version_id.is_null() && v.is_visible()
                })
                .collect();
            nulls.into_iter().for_each(|i| self.retire(i));
        }
        let seq = self.chain(&bucket, &key).map(|r| r.version.seq).max().unwrap_or(0) + 1;
        if let Some(cid) = match &new.state {
            VersionState::Committed(meta) => meta.cid,
            _ => None,
        } {
            *self.refs.entry(cid).or_default() += 1;
        }
        let version = &mut self.rows[index].version;
        version.seq = seq;
        version.version_id = new.version_id;
        version.state = new.state;
        version.modified_at = SystemTime::now();
        Ok(version.clone())
    }

    fn push_pending(&mut self, bucket: &BucketName, key: &ObjectKey) -> Result<(i64, usize), MetaError> {
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
        });
        Ok((id, self.rows.len() - 1))
    }
}

/// A `MetaStore` held in memory; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryMeta {
    state: Mutex<State>,
}

impl MemoryMeta {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        s.multiparts.retain(|_, (upload, _)| &upload.bucket != name);
        s.buckets.remove(name);
        Ok(())
    }

    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError> {
        Ok(UploadId(self.lock()?.push_pending(bucket, key)?.0))
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
        let (_, index) = s.push_pending(bucket, key)?;
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
        Ok(found.map(|i| {
            s.retire(i);
            s.rows[i].version.clone()
        }))
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
        let s = self.lock()?;
        let mut latest: BTreeMap<&str, &ObjectVersion> = BTreeMap::new();
        for v in s.rows.iter().map(|r| &r.version) {
            let k = v.key.as_str();
            if &v.bucket != bucket || !v.is_visible() || !k.starts_with(prefix) || after.is_some_and(|a| k <= a) {
                continue;
            }
            if latest.get(k).is_none_or(|cur| cur.seq < v.seq) {
                latest.insert(k, v);
            }
        }
        Ok(latest.into_values().filter(|v| !v.is_delete_marker()).take(limit).cloned().collect())
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
        Ok(self.lock()?.refs.get(cid).copied().unwrap_or(0))
    }

    async fn abort_stale(&self, before: SystemTime) -> Result<u64, MetaError> {
        let mut s = self.lock()?;
        let mut count = 0;
        for row in s.rows.iter_mut().filter(|r| r.version.state == VersionState::Pending) {
            if row.version.modified_at < before {
                row.version.state = VersionState::Aborted;
                count += 1;
            }
        }
        Ok(count)
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

    async fn put_part(&self, upload_id: &str, part: &UploadPart) -> Result<Option<UploadPart>, MetaError> {
        let mut s = self.lock()?;
        let (_, parts) = s.multiparts.get_mut(upload_id).ok_or(MetaError::NoSuchUpload)?;
        Ok(parts.insert(part.number, part.clone()))
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
        Ok(parts.into_values().collect())
    }

    async fn part_uses(&self, cid: &Cid) -> Result<bool, MetaError> {
        Ok(self.lock()?.multiparts.values().any(|(_, parts)| parts.values().any(|p| &p.cid == cid)))
    }

    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        Ok(self.lock()?.multiparts.values().map(|(u, _)| u).filter(|u| u.initiated < before).cloned().collect())
    }
}

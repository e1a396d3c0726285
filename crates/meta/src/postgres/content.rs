//! The content lifecycle on PostgreSQL: references, claims, garbage-collection marks, leases, replica heartbeats,
//! orphan cleanup and history pruning.
//!
//! A claim and a GC mark on the same content row are ordered by the row lock: the claim's update and the mark's
//! update cannot both see the row unreferenced and unmarked.

use std::time::{Duration, SystemTime};

use deadpool_postgres::GenericClient;
use s3ipfs_cid::Cid;
use s3ipfs_core::meta::{heartbeat_lease, underflow};
use s3ipfs_core::{ClaimId, MetaError, StoredContent};
use tokio_postgres::Row;

use super::rows::{ABORTED, PENDING, corrupt};
use super::{Failure, PgMeta, execute, int, map_rows, query, query_opt, transact};
use crate::codec::millis;

/// Drops a reference to `cid`; the last one starts the grace period. A count that would go below zero is an error.
pub(super) async fn drop_ref(client: &impl GenericClient, cid: &[u8]) -> Result<(), Failure> {
    let changed = execute(
        client,
        "UPDATE content SET refcount = refcount - 1, \
         zero_since = CASE WHEN refcount = 1 THEN $2 ELSE zero_since END WHERE cid = $1 AND refcount > 0",
        &[&cid, &millis(SystemTime::now())],
    )
    .await?;
    if changed == 0 {
        let cid = Cid::from_bytes(cid).map_err(|_| corrupt("cid"))?;
        return Err(underflow(&cid).into());
    }
    Ok(())
}

/// Takes over `claim` on `cid`: its reference now belongs to whatever the transaction writes.
pub(super) async fn take_claim(client: &impl GenericClient, claim: ClaimId, cid: &[u8]) -> Result<(), Failure> {
    let taken = execute(client, "DELETE FROM content_claims WHERE id = $1 AND cid = $2", &[&claim.0, &cid]).await?;
    if taken == 0 {
        return Err(MetaError::Invalid("the claim does not name this content").into());
    }
    Ok(())
}

/// Adds a reference to content already stored (a copy): `ContentGone` if it was collected or is being collected.
pub(super) async fn add_ref_to_stored(client: &impl GenericClient, cid: &[u8]) -> Result<(), Failure> {
    let changed = execute(
        client,
        "UPDATE content SET refcount = refcount + 1, zero_since = NULL WHERE cid = $1 AND NOT deleting",
        &[&cid],
    )
    .await?;
    if changed == 0 {
        return Err(MetaError::ContentGone.into());
    }
    Ok(())
}

fn stored_content(row: &Row) -> Result<StoredContent, MetaError> {
    let cid: Vec<u8> = row.try_get(0).map_err(|e| corrupt(&e.to_string()))?;
    let size: i64 = row.try_get(1).map_err(|e| corrupt(&e.to_string()))?;
    Ok(StoredContent {
        cid: Cid::from_bytes(&cid).map_err(|_| corrupt("cid"))?,
        size: u64::try_from(size).map_err(|_| corrupt("size"))?,
    })
}

/// A row (pending version or claim, with column `replica`) whose replica's heartbeat has stopped; `$2` is now.
const ORPHANED: &str = "NOT EXISTS (SELECT 1 FROM leases l WHERE l.name = 'replica:' || replica \
     AND l.holder = replica AND l.expires_at > $2)";

impl PgMeta {
    pub(super) async fn pg_content_refs(&self, cid: &Cid) -> Result<u64, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let row = query_opt(&client, "SELECT refcount FROM content WHERE cid = $1", &[&cid.to_bytes()]).await?;
        let count: i64 = row.map_or(Ok(0), |r| r.try_get(0)).map_err(Failure::from)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub(super) async fn pg_heartbeat(&self, ttl: Duration) -> Result<(), MetaError> {
        let client = self.soft.get().await.map_err(Failure::from)?;
        let until = millis(SystemTime::now() + ttl);
        execute(
            &client,
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3",
            &[&heartbeat_lease(&self.replica), &self.replica, &until],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn pg_abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError> {
        let (before, now) = (millis(before), millis(SystemTime::now()));
        transact!(self, |tx| {
            let sql =
                format!("UPDATE object_versions SET state = $3 WHERE state = $4 AND (modified_at < $1 OR {ORPHANED})");
            let aborted = execute(&tx, &sql, &[&before, &now, &ABORTED, &PENDING]).await?;
            let sql = format!("DELETE FROM content_claims WHERE created_at < $1 OR {ORPHANED} RETURNING cid");
            for row in query(&tx, &sql, &[&before, &now]).await? {
                let cid: Vec<u8> = row.try_get(0)?;
                drop_ref(&tx, &cid).await?;
            }
            aborted
        })
    }

    pub(super) async fn pg_prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError> {
        let client = self.soft.get().await.map_err(Failure::from)?;
        let limit = super::row_limit(limit);
        let pruned = execute(
            &client,
            "DELETE FROM object_versions WHERE id IN ( \
                 (SELECT id FROM object_versions WHERE state = $1 AND modified_at < $2 LIMIT $3) \
                 UNION ALL (SELECT id FROM object_versions WHERE retired AND retired_at < $2 LIMIT $3) \
             LIMIT $3)",
            &[&ABORTED, &millis(before), &limit],
        )
        .await?;
        Ok(pruned)
    }

    pub(super) async fn pg_claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        let (cid, size) = (cid.to_bytes(), int(size)?);
        let client = self.soft.get().await.map_err(Failure::from)?;
        // One statement: the upsert locks the content row, so a GC mark in flight is either seen here (no reference
        // is added to a marked row, and no claim made) or sees this reference.
        let row = query_opt(
            &client,
            "WITH up AS (INSERT INTO content (cid, size, refcount, zero_since) VALUES ($1, $2, 1, NULL) \
                 ON CONFLICT (cid) DO UPDATE SET refcount = content.refcount + 1, zero_since = NULL \
                 WHERE NOT content.deleting RETURNING cid), \
             claim AS (INSERT INTO content_claims (cid, created_at, replica) SELECT cid, $3, $4 FROM up RETURNING id) \
             SELECT (SELECT id FROM claim)",
            &[&cid, &size, &millis(SystemTime::now()), &self.replica],
        )
        .await?;
        let id: Option<i64> = row.map(|row| row.try_get(0)).transpose().map_err(Failure::from)?.flatten();
        id.map(ClaimId).ok_or(MetaError::ContentBusy)
    }

    pub(super) async fn pg_release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        transact!(self, soft, |tx| {
            let row = query_opt(&tx, "DELETE FROM content_claims WHERE id = $1 RETURNING cid", &[&claim.0]).await?;
            if let Some(row) = row {
                let cid: Vec<u8> = row.try_get(0)?;
                drop_ref(&tx, &cid).await?;
            }
        })
    }

    pub(super) async fn pg_collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let after = after.map(Cid::to_bytes).unwrap_or_default();
        let limit = super::row_limit(limit);
        let rows = query(
            &client,
            "SELECT cid, size FROM content WHERE ((refcount = 0 AND NOT deleting AND zero_since <= $1) OR deleting) \
             AND cid > $2 ORDER BY cid LIMIT $3",
            &[&millis(cutoff), &after, &limit],
        )
        .await?;
        Ok(map_rows(rows, stored_content)?)
    }

    pub(super) async fn pg_mark_collectable(
        &self,
        cutoff: SystemTime,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        let limit = super::row_limit(limit);
        let cutoff = millis(cutoff);
        transact!(self, |tx| {
            // Rows an interrupted collection marked come first: their bytes may be half deleted.
            let sql = "SELECT cid, size FROM content WHERE deleting ORDER BY cid LIMIT $1";
            let mut batch = map_rows(query(&tx, sql, &[&limit]).await?, stored_content)?;
            let room = limit - batch.len() as i64;
            if room > 0 {
                // Rows a claim holds locked are skipped: that claim is about to reference them.
                let sql = "UPDATE content SET deleting = TRUE WHERE cid IN ( \
                         SELECT cid FROM content WHERE refcount = 0 AND NOT deleting AND zero_since <= $1 \
                         ORDER BY zero_since LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     AND refcount = 0 RETURNING cid, size";
                batch.extend(map_rows(query(&tx, sql, &[&cutoff, &room]).await?, stored_content)?);
            }
            batch
        })
    }

    pub(super) async fn pg_forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        let cids: Vec<Vec<u8>> = cids.iter().map(Cid::to_bytes).collect();
        let client = self.pool.get().await.map_err(Failure::from)?;
        execute(&client, "DELETE FROM content WHERE cid = ANY($1) AND deleting", &[&cids]).await?;
        Ok(())
    }

    pub(super) async fn pg_acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let now = SystemTime::now();
        let changed = execute(
            &client,
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
             WHERE leases.holder = $2 OR leases.expires_at <= $4",
            &[&name, &holder, &millis(now + ttl), &millis(now)],
        )
        .await?;
        Ok(changed == 1)
    }

    pub(super) async fn pg_release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        execute(&client, "DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await?;
        Ok(())
    }
}

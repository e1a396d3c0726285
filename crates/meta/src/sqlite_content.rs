//! The content lifecycle in the embedded store: references, claims, garbage-collection marks and leases.
//!
//! Every holder of content (a visible version, a live part, an open claim) counts in `content.refcount`, moved in
//! the transaction that adds or drops the holder. SQLite runs one write transaction at a time, so a claim and a GC
//! mark on the same row are totally ordered: a claim sees the mark and is refused, or the mark sees the reference.

use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use s3ipfs_cid::Cid;
use s3ipfs_core::{ClaimId, MetaError, StoredContent};

use s3ipfs_core::MetaStore as _;

use crate::codec::millis;
use crate::sqlite::{ORPHANED, SqliteMeta, backend, immediate};

/// Adds a reference to `cid` (`size` bytes), creating its row if needed.
pub(crate) fn add_ref(tx: &Transaction<'_>, cid: &[u8], size: u64) -> Result<(), MetaError> {
    tx.execute(
        "INSERT INTO content (cid, size, refcount, zero_since) VALUES (?1, ?2, 1, NULL) \
         ON CONFLICT (cid) DO UPDATE SET refcount = refcount + 1, zero_since = NULL",
        params![cid, i64::try_from(size).map_err(backend)?],
    )
    .map_err(backend)?;
    Ok(())
}

/// Drops a reference to `cid`; the last one starts the grace period (`zero_since`). A count that would go below
/// zero is an error.
pub(crate) fn drop_ref(tx: &Transaction<'_>, cid: &[u8]) -> Result<(), MetaError> {
    // The right-hand sides see the row before the update.
    let changed = tx
        .execute(
            "UPDATE content SET refcount = refcount - 1, \
             zero_since = CASE WHEN refcount = 1 THEN ?2 ELSE zero_since END WHERE cid = ?1 AND refcount > 0",
            params![cid, millis(SystemTime::now())],
        )
        .map_err(backend)?;
    if changed == 0 {
        let cid = Cid::from_bytes(cid).map_err(backend)?;
        return Err(s3ipfs_core::meta::underflow(&cid));
    }
    Ok(())
}

/// Takes over `claim` on `cid`: its reference now belongs to whatever the transaction writes.
pub(crate) fn take_claim(tx: &Transaction<'_>, claim: ClaimId, cid: &[u8]) -> Result<(), MetaError> {
    let taken =
        tx.execute("DELETE FROM content_claims WHERE id = ?1 AND cid = ?2", params![claim.0, cid]).map_err(backend)?;
    if taken == 0 {
        return Err(MetaError::Invalid("the claim does not name this content"));
    }
    Ok(())
}

/// Whether `cid` has a row, and whether garbage collection marked it: `None` (no row), `Some(marked)`.
fn marked(tx: &Transaction<'_>, cid: &[u8]) -> Result<Option<bool>, MetaError> {
    tx.query_row("SELECT deleting FROM content WHERE cid = ?1", params![cid], |r| r.get(0)).optional().map_err(backend)
}

/// Adds a reference to content already stored (a copy): `ContentGone` if it was collected or is being collected.
pub(crate) fn add_ref_to_stored(tx: &Transaction<'_>, cid: &[u8], size: u64) -> Result<(), MetaError> {
    match marked(tx, cid)? {
        Some(false) => add_ref(tx, cid, size),
        _ => Err(MetaError::ContentGone),
    }
}

/// Releases claims made before `before` or whose replica stopped (writes a crash interrupted).
pub(crate) fn release_stale_claims(tx: &Transaction<'_>, before: SystemTime) -> Result<(), MetaError> {
    let sql =
        format!("DELETE FROM content_claims WHERE created_at < ?1 OR {} RETURNING cid", ORPHANED.replace("?4", "?2"));
    let stale: Vec<Vec<u8>> = tx
        .prepare(&sql)
        .and_then(|mut s| s.query_map(params![millis(before), millis(SystemTime::now())], |r| r.get(0))?.collect())
        .map_err(backend)?;
    stale.iter().try_for_each(|cid| drop_ref(tx, cid))
}

fn stored_content(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredContent> {
    let cid: Vec<u8> = row.get(0)?;
    let cid = Cid::from_bytes(&cid).map_err(|_| crate::sqlite_rows::corrupt("cid"))?;
    let size = u64::try_from(row.get::<_, i64>(1)?).map_err(|_| crate::sqlite_rows::corrupt("size"))?;
    Ok(StoredContent { cid, size })
}

fn query_content(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<StoredContent>, MetaError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt.query_map(params, stored_content).map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// Unreferenced since before the cutoff (`?1`) and not marked.
const COLLECTABLE: &str = "refcount = 0 AND deleting = 0 AND zero_since <= ?1";

impl SqliteMeta {
    pub(crate) async fn sql_claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        let (cid, replica) = (cid.to_bytes(), self.replica().to_owned());
        // Claims live as long as the process: a crash releases them on restart, so they need no fsync.
        self.with_unsynced(move |conn| {
            let tx = immediate(conn)?;
            if marked(&tx, &cid)? == Some(true) {
                return Err(MetaError::ContentBusy);
            }
            add_ref(&tx, &cid, size)?;
            tx.execute(
                "INSERT INTO content_claims (cid, created_at, replica) VALUES (?1, ?2, ?3)",
                params![cid, millis(SystemTime::now()), replica],
            )
            .map_err(backend)?;
            let id = tx.last_insert_rowid();
            tx.commit().map_err(backend)?;
            Ok(ClaimId(id))
        })
        .await
    }

    pub(crate) async fn sql_release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        self.with_unsynced(move |conn| {
            let tx = immediate(conn)?;
            let cid: Option<Vec<u8>> = tx
                .query_row("DELETE FROM content_claims WHERE id = ?1 RETURNING cid", params![claim.0], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if let Some(cid) = cid {
                drop_ref(&tx, &cid)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        let after = after.map(Cid::to_bytes);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let sql = format!(
                "SELECT cid, size FROM content WHERE ({COLLECTABLE} OR deleting = 1) AND (?2 IS NULL OR cid > ?2) \
                 ORDER BY cid LIMIT ?3"
            );
            query_content(conn, &sql, &[&millis(cutoff), &after, &limit])
        })
        .await
    }

    pub(crate) async fn sql_mark_collectable(
        &self,
        cutoff: SystemTime,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |conn| {
            let tx = immediate(conn)?;
            // Rows an interrupted collection marked come first: their bytes may be half deleted.
            let mut batch = query_content(
                &tx,
                "SELECT cid, size FROM content WHERE deleting = 1 ORDER BY cid LIMIT ?1",
                &[&limit],
            )?;
            let room = limit - batch.len() as i64;
            if room > 0 {
                let sql = format!(
                    "UPDATE content SET deleting = 1 WHERE cid IN \
                     (SELECT cid FROM content WHERE {COLLECTABLE} ORDER BY zero_since LIMIT ?2) RETURNING cid, size"
                );
                batch.extend(query_content(&tx, &sql, &[&millis(cutoff), &room])?);
            }
            tx.commit().map_err(backend)?;
            Ok(batch)
        })
        .await
    }

    pub(crate) async fn sql_forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        let cids: Vec<Vec<u8>> = cids.iter().map(Cid::to_bytes).collect();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            for cid in &cids {
                tx.execute("DELETE FROM content WHERE cid = ?1 AND deleting = 1", params![cid]).map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        // Leases are soft state: after a power failure every holder is gone anyway.
        self.with_unsynced(move |conn| {
            let now = SystemTime::now();
            let changed = conn
                .execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3 \
                     WHERE leases.holder = ?2 OR leases.expires_at <= ?4",
                    params![name, holder, millis(now + ttl), millis(now)],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    pub(crate) async fn sql_release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.with_unsynced(move |conn| {
            conn.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }
}

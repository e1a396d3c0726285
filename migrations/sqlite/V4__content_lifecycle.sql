-- The content lifecycle: every holder of content counts in `content.refcount` (visible committed versions, parts of
-- live multipart uploads, open claims of writes in progress). `zero_since` records when the count last reached zero;
-- garbage collection marks rows unreferenced for longer than its grace period (`deleting`), deletes their bytes and
-- then the row. A marked row is never claimed again. `leases` lets one collector (or other job) run at a time.

ALTER TABLE content ADD COLUMN zero_since INTEGER;
ALTER TABLE content ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;

CREATE TABLE content_claims (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cid         BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- Parts now hold references: content rows for part content stored before this migration.
INSERT OR IGNORE INTO content (cid, size, refcount) SELECT cid, MAX(size), 0 FROM multipart_parts GROUP BY cid;

CREATE TEMP TABLE held AS
    SELECT cid, COUNT(*) AS n FROM (
        SELECT cid FROM object_versions WHERE state = 1 AND retired = 0 AND cid IS NOT NULL
        UNION ALL SELECT cid FROM multipart_parts
    ) GROUP BY cid;
CREATE UNIQUE INDEX temp.held_cid ON held (cid);
UPDATE content SET refcount = COALESCE((SELECT n FROM held WHERE held.cid = content.cid), 0);
DROP TABLE held;

-- Content released before this migration was never freed: it becomes collectable now.
UPDATE content SET zero_since = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE refcount = 0;

CREATE INDEX content_collectable ON content (zero_since) WHERE refcount = 0;
CREATE INDEX content_deleting ON content (cid) WHERE deleting = 1;

-- Replicas and scalable listings. A pending version and a claim record the replica that made them, so cleanup frees
-- only those of replicas whose heartbeat (the `replica:<name>` lease) stopped. `retired_at` lets history pruning
-- find retired versions. `object_heads` holds one row per key: the last sequence number handed out (so numbers stay
-- unique even after the chain's newest rows are pruned) and the newest visible version, so ListObjects reads one
-- index row per key in key order.

ALTER TABLE object_versions ADD COLUMN replica TEXT;
ALTER TABLE object_versions ADD COLUMN retired_at INTEGER;
ALTER TABLE content_claims ADD COLUMN replica TEXT;

CREATE TABLE object_heads (
    bucket         TEXT    NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key            TEXT    NOT NULL,
    last_seq       INTEGER NOT NULL,
    latest_id      INTEGER,             -- the newest visible version (NULL: none)
    latest_object  INTEGER NOT NULL DEFAULT 0,  -- whether that version is an object (not a delete marker)
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

INSERT INTO object_heads (bucket, key, last_seq)
    SELECT bucket, key, MAX(seq) FROM object_versions GROUP BY bucket, key;
UPDATE object_heads SET latest_id = (
    SELECT id FROM object_versions v WHERE v.bucket = object_heads.bucket AND v.key = object_heads.key
        AND v.retired = 0 AND v.state IN (1, 2) ORDER BY v.seq DESC LIMIT 1);
UPDATE object_heads SET latest_object = COALESCE((SELECT state = 1 FROM object_versions WHERE id = latest_id), 0);
UPDATE object_versions SET retired_at = modified_at WHERE retired = 1;

CREATE INDEX object_heads_objects ON object_heads (bucket, key) WHERE latest_object = 1;
CREATE UNIQUE INDEX object_versions_seq ON object_versions (bucket, key, seq) WHERE seq > 0;
CREATE INDEX object_versions_retired ON object_versions (retired_at) WHERE retired = 1;
DROP INDEX object_versions_chain;

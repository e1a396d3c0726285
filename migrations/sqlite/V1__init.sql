-- Embedded metadata store: users, access keys, buckets, version chains and content references.
-- Times are Unix milliseconds. Keys compare in byte order (BINARY collation), as S3 lists them.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE access_keys (
    id       TEXT    PRIMARY KEY,
    secret   TEXT    NOT NULL,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE buckets (
    name        TEXT    PRIMARY KEY,
    owner       INTEGER NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    versioning  INTEGER NOT NULL DEFAULT 0   -- 0 unversioned, 1 enabled, 2 suspended
);

CREATE TABLE object_versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket        TEXT    NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    seq           INTEGER NOT NULL DEFAULT 0,  -- assigned at commit
    version_id    TEXT    NOT NULL,
    state         INTEGER NOT NULL,            -- 0 pending, 1 committed, 2 delete marker, 3 aborted
    retired       INTEGER NOT NULL DEFAULT 0,
    modified_at   INTEGER NOT NULL,
    cid           BLOB,
    size          INTEGER,
    etag          TEXT,
    md5           BLOB,
    crc32         INTEGER,
    crc32c        INTEGER,
    crc64nvme     INTEGER,
    sha1          BLOB,
    sha256        BLOB,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_meta     TEXT,                        -- JSON object
    CHECK ((state = 1) = (etag IS NOT NULL AND size IS NOT NULL))
);

CREATE INDEX object_versions_chain ON object_versions (bucket, key, seq);
CREATE INDEX object_versions_pending ON object_versions (state, modified_at);

CREATE TABLE content (
    cid       BLOB    PRIMARY KEY,
    size      INTEGER NOT NULL,
    refcount  INTEGER NOT NULL DEFAULT 0
);

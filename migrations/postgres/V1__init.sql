-- PostgreSQL metadata store: users, access keys, buckets, version chains, key heads, content references, claims,
-- leases and multipart uploads. The same model as the embedded store (migrations/sqlite), in one schema version.
-- Times are Unix milliseconds. Object keys are BYTEA (UTF-8): they compare as bytes, as S3 lists them, and may hold
-- any character, NUL included. Names use the "C" collation, which compares them as bytes too.

CREATE TABLE users (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id       TEXT   PRIMARY KEY,
    secret   TEXT   NOT NULL,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE buckets (
    name        TEXT COLLATE "C" PRIMARY KEY,
    owner       BIGINT   NOT NULL REFERENCES users (id),
    created_at  BIGINT   NOT NULL,
    versioning  SMALLINT NOT NULL DEFAULT 0   -- 0 unversioned, 1 enabled, 2 suspended
);
CREATE INDEX buckets_owner ON buckets (owner, name);

-- One row per key: the last sequence number handed out (the row lock serializes a key's commits) and the newest
-- visible version, so ListObjects reads one index entry per key in key order.
CREATE TABLE object_heads (
    bucket         TEXT COLLATE "C" NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key            BYTEA   NOT NULL,
    last_seq       BIGINT  NOT NULL,
    latest_id      BIGINT,
    latest_object  BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX object_heads_objects ON object_heads (bucket, key) WHERE latest_object;

CREATE TABLE object_versions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket        TEXT COLLATE "C" NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key           BYTEA    NOT NULL,
    seq           BIGINT   NOT NULL DEFAULT 0,  -- assigned at commit
    version_id    TEXT     NOT NULL,
    state         SMALLINT NOT NULL,            -- 0 pending, 1 committed, 2 delete marker, 3 aborted
    retired       BOOLEAN  NOT NULL DEFAULT FALSE,
    modified_at   BIGINT   NOT NULL,
    replica       TEXT,                         -- who began it (pending rows)
    retired_at    BIGINT,
    cid           BYTEA,
    size          BIGINT,
    etag          TEXT,
    md5           BYTEA,
    crc32         BIGINT,
    crc32c        BIGINT,
    crc64nvme     BIGINT,
    sha1          BYTEA,
    sha256        BYTEA,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_meta     TEXT,                         -- JSON object
    composite_checksum   BOOLEAN NOT NULL DEFAULT FALSE,
    part_sizes    BYTEA,
    CHECK ((state = 1) = (etag IS NOT NULL AND size IS NOT NULL))
);
CREATE UNIQUE INDEX object_versions_seq ON object_versions (bucket, key, seq DESC) WHERE seq > 0;
CREATE INDEX object_versions_pending ON object_versions (modified_at) WHERE state = 0;
CREATE INDEX object_versions_aborted ON object_versions (modified_at) WHERE state = 3;
CREATE INDEX object_versions_retired ON object_versions (retired_at) WHERE retired;

CREATE TABLE content (
    cid         BYTEA   PRIMARY KEY,
    size        BIGINT  NOT NULL,
    refcount    BIGINT  NOT NULL DEFAULT 0 CHECK (refcount >= 0),
    zero_since  BIGINT,
    deleting    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX content_collectable ON content (zero_since) WHERE refcount = 0;
CREATE INDEX content_deleting ON content (cid) WHERE deleting;

CREATE TABLE content_claims (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cid         BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    replica     TEXT   NOT NULL
);

CREATE TABLE leases (
    name        TEXT   PRIMARY KEY,
    holder      TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE multipart_uploads (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    bucket               TEXT COLLATE "C" NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key                  BYTEA  NOT NULL,
    initiated            BIGINT NOT NULL,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_meta            TEXT,
    checksum_algorithm   TEXT,
    checksum_type        TEXT
);
CREATE INDEX multipart_uploads_key ON multipart_uploads (bucket, key, id);
CREATE INDEX multipart_uploads_initiated ON multipart_uploads (initiated);

CREATE TABLE multipart_parts (
    upload_id    TEXT COLLATE "C" NOT NULL REFERENCES multipart_uploads (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL CHECK (number BETWEEN 1 AND 10000),
    size         BIGINT  NOT NULL,
    cid          BYTEA   NOT NULL,
    md5          BYTEA,
    crc32        BIGINT,
    crc32c       BIGINT,
    crc64nvme    BIGINT,
    sha1         BYTEA,
    sha256       BYTEA,
    leaves       BYTEA   NOT NULL,
    modified_at  BIGINT  NOT NULL,
    PRIMARY KEY (upload_id, number)
);
CREATE INDEX multipart_parts_cid ON multipart_parts (cid);

-- Multipart uploads and their parts. A part's bytes are content under `cid`; `leaves` lists its DAG leaves
-- (varint-framed CID, file size, DAG size) so aligned uploads assemble their CID without re-hashing.

CREATE TABLE multipart_uploads (
    id                   TEXT    PRIMARY KEY,
    bucket               TEXT    NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    key                  TEXT    NOT NULL,
    initiated            INTEGER NOT NULL,
    content_type         TEXT,
    content_encoding     TEXT,
    content_disposition  TEXT,
    content_language     TEXT,
    cache_control        TEXT,
    expires              TEXT,
    user_meta            TEXT
);

CREATE INDEX multipart_uploads_key ON multipart_uploads (bucket, key, id);
CREATE INDEX multipart_uploads_initiated ON multipart_uploads (initiated);

CREATE TABLE multipart_parts (
    upload_id    TEXT    NOT NULL REFERENCES multipart_uploads (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL CHECK (number BETWEEN 1 AND 10000),
    size         INTEGER NOT NULL,
    cid          BLOB    NOT NULL,
    md5          BLOB,
    crc32        INTEGER,
    crc32c       INTEGER,
    crc64nvme    INTEGER,
    sha1         BLOB,
    sha256       BLOB,
    leaves       BLOB    NOT NULL,
    modified_at  INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)
);

CREATE INDEX multipart_parts_cid ON multipart_parts (cid);

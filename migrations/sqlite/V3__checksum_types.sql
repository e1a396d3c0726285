-- The checksum a multipart upload was created with (x-amz-checksum-algorithm / -type, NULL when none); for a
-- stored object whether its checksum is COMPOSITE (the part count is that of part_sizes) and the sizes of the parts
-- of a multipart object (varints; NULL for an object written at once).

ALTER TABLE multipart_uploads ADD COLUMN checksum_algorithm TEXT;
ALTER TABLE multipart_uploads ADD COLUMN checksum_type TEXT;
ALTER TABLE object_versions ADD COLUMN composite_checksum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE object_versions ADD COLUMN part_sizes BLOB;

//! Object options a write may ask for that this gateway does not provide (object lock, encryption with the client's
//! or KMS keys) or that must name a value S3 knows (storage class, canned ACL). Silently ignoring them would promise
//! a client what it does not get (a WORM retention, an encryption key), so they are refused as AWS refuses them.

use s3s::{S3Result, s3_error};

/// What a PutObject, CopyObject or CreateMultipartUpload asks for besides the object itself.
pub struct ObjectOptions<'a> {
    /// `x-amz-object-lock-mode`, `-retain-until-date` or `-legal-hold` is present.
    pub object_lock: bool,
    /// `x-amz-server-side-encryption`.
    pub encryption: Option<&'a str>,
    /// `x-amz-server-side-encryption-customer-algorithm` (SSE-C) is present.
    pub customer_key: bool,
    /// `x-amz-storage-class`.
    pub storage_class: Option<&'a str>,
    /// `x-amz-acl`.
    pub acl: Option<&'a str>,
}

/// The [`ObjectOptions`] of any input that carries them (same field names in all three).
macro_rules! object_options {
    ($i:expr) => {
        $crate::options::ObjectOptions {
            object_lock: $i.object_lock_mode.is_some()
                || $i.object_lock_retain_until_date.is_some()
                || $i.object_lock_legal_hold_status.is_some(),
            encryption: $i.server_side_encryption.as_ref().map(|v| v.as_str()),
            customer_key: $i.sse_customer_algorithm.is_some(),
            storage_class: $i.storage_class.as_ref().map(|v| v.as_str()),
            acl: $i.acl.as_ref().map(|v| v.as_str()),
        }
    };
}
pub(crate) use object_options;

/// Storage classes S3 defines; every object here is stored alike, as STANDARD.
const STORAGE_CLASSES: [&str; 13] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
    "FSX_ONTAP",
];

/// Canned ACLs S3 defines (accepted; objects are always private to their bucket's owner).
const CANNED_ACLS: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

impl ObjectOptions<'_> {
    /// Refuses what cannot be honoured, with AWS's error for each.
    pub fn check(&self) -> S3Result<()> {
        if self.object_lock {
            return Err(s3_error!(InvalidRequest, "Bucket is missing Object Lock Configuration"));
        }
        if self.customer_key {
            return Err(s3_error!(
                NotImplemented,
                "Server-side encryption with customer-provided keys is not supported"
            ));
        }
        match self.encryption {
            None | Some("AES256") => {}
            Some("aws:kms" | "aws:kms:dsse") => {
                return Err(s3_error!(NotImplemented, "Server-side encryption with KMS keys is not supported"));
            }
            Some(_) => return Err(s3_error!(InvalidArgument, "The encryption method specified is not supported")),
        }
        if self.storage_class.is_some_and(|class| !STORAGE_CLASSES.contains(&class)) {
            return Err(s3_error!(InvalidStorageClass, "The storage class you specified is not valid"));
        }
        if self.acl.is_some_and(|acl| !CANNED_ACLS.contains(&acl)) {
            return Err(s3_error!(InvalidArgument, "Invalid canned ACL"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> ObjectOptions<'static> {
        ObjectOptions { object_lock: false, encryption: None, customer_key: false, storage_class: None, acl: None }
    }

    #[test]
    fn what_s3_defines_passes_and_the_rest_gets_aws_errors() {
        assert!(none().check().is_ok());
        let ok = ObjectOptions {
            encryption: Some("AES256"),
            storage_class: Some("STANDARD_IA"),
            acl: Some("private"),
            ..none()
        };
        assert!(ok.check().is_ok());
        let code = |o: ObjectOptions<'_>| o.check().err().map(|e| e.code().as_str().to_owned());
        assert_eq!(code(ObjectOptions { object_lock: true, ..none() }).as_deref(), Some("InvalidRequest"));
        assert_eq!(code(ObjectOptions { customer_key: true, ..none() }).as_deref(), Some("NotImplemented"));
        assert_eq!(code(ObjectOptions { encryption: Some("aws:kms"), ..none() }).as_deref(), Some("NotImplemented"));
        assert_eq!(code(ObjectOptions { encryption: Some("ROT13"), ..none() }).as_deref(), Some("InvalidArgument"));
        assert_eq!(
            code(ObjectOptions { storage_class: Some("FOO"), ..none() }).as_deref(),
            Some("InvalidStorageClass")
        );
        assert_eq!(code(ObjectOptions { acl: Some("evil"), ..none() }).as_deref(), Some("InvalidArgument"));
    }
}

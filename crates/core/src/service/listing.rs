//! Listings with S3's delimiter semantics: keys sharing a prefix up to the delimiter collapse into one common
//! prefix, which counts toward `max_keys` like a key does.

use crate::meta::common_prefix;
use crate::model::{MultipartUpload, ObjectVersion};
use crate::names::{BucketName, UserId, VersionId};

use super::{Gateway, ServiceError};

/// The most rows asked from the store at once while filling a listing.
const PAGE: usize = 1000;

/// How many rows to ask the store for next. After a common prefix, the rows below it are skipped with a new seek,
/// so the next read starts small (one index seek per common prefix, not a page of rows thrown away); each page used
/// to its end makes the next one larger.
#[derive(Debug, Clone, Copy)]
struct Batch(usize);

impl Batch {
    fn first(max_keys: usize) -> Self {
        Batch(max_keys.saturating_add(1).clamp(1, PAGE))
    }

    fn size(self) -> usize {
        self.0
    }

    /// The listing jumped past a common prefix.
    fn skipped(&mut self) {
        self.0 = 2;
    }

    /// The listing used a whole page.
    fn used(&mut self) {
        self.0 = self.0.saturating_mul(4).min(PAGE);
    }
}

/// A ListObjects(V2) request.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys up to the first occurrence of this after the prefix (`None` or empty: no grouping).
    pub delimiter: Option<String>,
    /// Start strictly after this key (marker, start-after or continuation token).
    pub after: Option<String>,
    /// Most keys plus common prefixes to return.
    pub max_keys: usize,
}

/// A ListObjects(V2) result.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects (latest versions), in key order.
    pub objects: Vec<ObjectVersion>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub next_after: Option<String>,
}

/// A ListObjectVersions request.
#[derive(Debug, Clone, Default)]
pub struct VersionsParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Grouping delimiter, as in [`ListParams`].
    pub delimiter: Option<String>,
    /// Start after this key (all its versions, unless `version_id_marker` is given).
    pub key_marker: Option<String>,
    /// With `key_marker`: start after this version of that key.
    pub version_id_marker: Option<VersionId>,
    /// Most versions, markers and common prefixes to return.
    pub max_keys: usize,
}

/// A ListObjectVersions result.
#[derive(Debug, Clone, Default)]
pub struct VersionListing {
    /// Versions and delete markers, by key then newest first, each with whether it is the key's latest.
    pub versions: Vec<(ObjectVersion, bool)>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// Key of the last entry returned.
    pub next_key_marker: Option<String>,
    /// Version id of the last version returned (absent when the page ended on a common prefix).
    pub next_version_id_marker: Option<VersionId>,
}

/// A ListMultipartUploads request.
#[derive(Debug, Clone, Default)]
pub struct UploadsParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Grouping delimiter, as in [`ListParams`].
    pub delimiter: Option<String>,
    /// Start after this key (all its uploads, unless `upload_id_marker` is given).
    pub key_marker: Option<String>,
    /// With `key_marker`: start after this upload of that key.
    pub upload_id_marker: Option<String>,
    /// Most uploads and common prefixes to return.
    pub max_uploads: usize,
}

/// A ListMultipartUploads result.
#[derive(Debug, Clone, Default)]
pub struct UploadListing {
    /// Uploads in progress, by key then upload id.
    pub uploads: Vec<MultipartUpload>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// Key (or common prefix) of the last entry returned.
    pub next_key_marker: Option<String>,
    /// Upload id of the last upload returned (absent when the page ended on a common prefix).
    pub next_upload_id_marker: Option<String>,
}

/// The common prefix `key` falls under, if a delimiter is given and occurs after `prefix`.
fn group_of<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    common_prefix(key, prefix, delimiter?)
}

/// Every key under `prefix` sorts before this (for any key we store), so listing can skip the whole group.
fn past_prefix(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

impl Gateway {
    /// Lists the latest objects of a bucket `user` owns.
    pub async fn list_objects(
        &self,
        user: UserId,
        bucket: &BucketName,
        params: &ListParams,
    ) -> Result<Listing, ServiceError> {
        let bucket = self.bucket_for(user, bucket).await?;
        let mut out = Listing::default();
        if params.max_keys == 0 {
            // Nothing is asked for: an empty page that is not truncated (a truncated one would name no next page).
            return Ok(out);
        }
        let delimiter = params.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut cursor = params.after.clone();
        loop {
            // One more than the page holds, to know whether it is truncated.
            let want = (params.max_keys - out.objects.len() - out.common_prefixes.len()).saturating_add(1).min(PAGE);
            let page = match delimiter {
                // The store returns one key per common prefix and seeks past each group itself.
                Some(delimiter) => {
                    let after = cursor.as_deref();
                    self.meta.list_latest_grouped(&bucket.name, &params.prefix, delimiter, after, want).await?
                }
                None => self.meta.list_latest(&bucket.name, &params.prefix, cursor.as_deref(), want).await?,
            };
            let full = page.len() == want;
            for version in page {
                if out.objects.len() + out.common_prefixes.len() == params.max_keys {
                    out.truncated = true;
                    return Ok(out);
                }
                let key = version.key.as_str();
                match delimiter.and_then(|d| common_prefix(key, &params.prefix, d)).map(str::to_owned) {
                    Some(cp) => {
                        out.next_after = Some(cp.clone());
                        out.common_prefixes.push(cp);
                    }
                    None => {
                        out.next_after = Some(key.to_owned());
                        out.objects.push(version);
                    }
                }
                cursor.clone_from(&out.next_after);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Lists versions and delete markers of a bucket `user` owns.
    pub async fn list_versions(
        &self,
        user: UserId,
        bucket: &BucketName,
        params: &VersionsParams,
    ) -> Result<VersionListing, ServiceError> {
        let bucket = self.bucket_for(user, bucket).await?;
        let mut cursor: Option<(String, u64)> = match (&params.key_marker, &params.version_id_marker) {
            (Some(key), Some(id)) => {
                let key_name =
                    crate::names::ObjectKey::parse(key).map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
                let marker = self.meta.find_version(&bucket.name, &key_name, id).await?;
                Some((key.clone(), marker.map_or(0, |v| v.seq)))
            }
            (Some(key), None) => Some((key.clone(), 0)),
            (None, _) => None,
        };
        let mut out = VersionListing::default();
        let mut latest_key: Option<String> = None;
        if let Some((key, seq)) = &cursor
            && *seq > 0
        {
            // Resuming inside a key: its latest version was on an earlier page.
            latest_key = Some(key.clone());
        }
        let delimiter = params.delimiter.as_deref();
        let mut batch = Batch::first(params.max_keys);
        'pages: loop {
            let after = cursor.as_ref().map(|(k, s)| (k.as_str(), *s));
            let page = self.meta.list_versions(&bucket.name, &params.prefix, after, batch.size()).await?;
            let Some(last) = page.last() else { break };
            cursor = Some((last.key.to_string(), last.seq));
            let full = page.len() == batch.size();
            for version in page {
                let key = version.key.to_string();
                let entry = group_of(&key, &params.prefix, delimiter).map(str::to_owned);
                if let Some(cp) = &entry
                    && params.key_marker.as_deref().is_some_and(|marker| cp.as_str() <= marker)
                {
                    cursor = Some((past_prefix(cp), 0));
                    batch.skipped();
                    continue 'pages;
                }
                if entry.is_some() && entry == out.common_prefixes.last().cloned() {
                    continue;
                }
                if out.versions.len() + out.common_prefixes.len() == params.max_keys {
                    out.truncated = true;
                    break 'pages;
                }
                if let Some(cp) = entry {
                    cursor = Some((past_prefix(&cp), 0));
                    out.next_key_marker = Some(cp.clone());
                    out.next_version_id_marker = None;
                    out.common_prefixes.push(cp);
                    batch.skipped();
                    continue 'pages;
                }
                let is_latest = latest_key.as_deref() != Some(key.as_str());
                latest_key = Some(key.clone());
                out.next_key_marker = Some(key);
                out.next_version_id_marker = Some(version.version_id.clone());
                out.versions.push((version, is_latest));
            }
            if !full {
                break;
            }
            batch.used();
        }
        Ok(out)
    }

    /// Lists the multipart uploads in progress in a bucket `user` owns.
    pub async fn list_multiparts(
        &self,
        user: UserId,
        bucket: &BucketName,
        params: &UploadsParams,
    ) -> Result<UploadListing, ServiceError> {
        let bucket = self.bucket_for(user, bucket).await?;
        // An upload id sorts before this, so without an id marker every upload of the marker key is skipped.
        let mut cursor: Option<(String, String)> = params.key_marker.clone().map(|key| {
            let id = params.upload_id_marker.clone().unwrap_or_else(|| "\u{10FFFF}".to_owned());
            (key, id)
        });
        let mut out = UploadListing::default();
        let delimiter = params.delimiter.as_deref();
        'pages: loop {
            let after = cursor.as_ref().map(|(k, id)| (k.as_str(), id.as_str()));
            let page = self.meta.multiparts(&bucket.name, &params.prefix, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = Some((last.key.to_string(), last.id.clone()));
            for upload in page {
                let entry = group_of(upload.key.as_str(), &params.prefix, delimiter).map(str::to_owned);
                if let Some(cp) = &entry
                    && params.key_marker.as_deref().is_some_and(|marker| cp.as_str() <= marker)
                {
                    cursor = Some((past_prefix(cp), String::new()));
                    continue 'pages;
                }
                if out.uploads.len() + out.common_prefixes.len() == params.max_uploads {
                    out.truncated = true;
                    break 'pages;
                }
                if let Some(cp) = entry {
                    cursor = Some((past_prefix(&cp), String::new()));
                    out.next_key_marker = Some(cp.clone());
                    out.next_upload_id_marker = None;
                    out.common_prefixes.push(cp);
                    continue 'pages;
                }
                out.next_key_marker = Some(upload.key.to_string());
                out.next_upload_id_marker = Some(upload.id.clone());
                out.uploads.push(upload);
            }
        }
        Ok(out)
    }
}

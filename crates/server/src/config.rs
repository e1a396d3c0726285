//! The gateway's configuration: one typed tree with sections for the server, the metadata store, content, cache and
//! background jobs. Each setting comes from, in rising precedence: its default, the TOML file (`--config FILE` or
//! `S3IPFS_CONFIG`), its environment variable, its flag. [`Config::check`] refuses a bad configuration with a message
//! naming the setting; [`Config::masked`] hides secrets wherever the configuration is printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use s3ipfs_cid::Profile;
use serde::{Deserialize, Serialize};

/// A secret value (a key, a password, a URL carrying one): never shown by `Debug` or a masked configuration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The S3 listener, its limits and the first user.
    pub server: ServerConfig,
    /// Where metadata lives.
    pub meta: MetaConfig,
    /// Where object bytes live.
    pub content: ContentConfig,
    /// Caching in front of the stores.
    pub cache: CacheConfig,
    /// Background jobs.
    pub jobs: JobsConfig,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory of the embedded metadata database and the local content store.
    pub data_dir: PathBuf,
    /// Region reported to clients and expected in signatures.
    pub region: String,
    /// Base domains for virtual-hosted-style requests (`bucket.DOMAIN`).
    pub domains: Vec<String>,
    /// Accept SigV2 presigned URLs.
    pub allow_sigv2: bool,
    /// PEM certificate chain: serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers (and a TLS handshake).
    pub header_timeout_secs: u64,
    /// Seconds a connection stays open with no request in flight.
    pub idle_timeout_secs: u64,
    /// Seconds a request body may send nothing, or a response wait for the client to read.
    pub stall_timeout_secs: u64,
    /// Connections served at once; 0 derives it from the open-file limit.
    pub max_connections: usize,
    /// Email of the first user, created on first start.
    pub root_email: String,
    /// Access key id of the first user (generated and printed once when not given).
    pub root_access_key: Option<String>,
    /// Secret key of the first user.
    pub root_secret_key: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            data_dir: PathBuf::from("./data"),
            region: "us-east-1".into(),
            domains: Vec::new(),
            allow_sigv2: false,
            tls_cert: None,
            tls_key: None,
            header_timeout_secs: 20,
            idle_timeout_secs: 30,
            stall_timeout_secs: 30,
            max_connections: 0,
            root_email: "admin@localhost".into(),
            root_access_key: None,
            root_secret_key: None,
        }
    }
}

/// Which metadata store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MetaBackend {
    /// SQLite in the data directory: one server process.
    Embedded,
    /// PostgreSQL at `meta.url`: any number of replicas.
    Postgres,
}

/// `[meta]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// The store; unset: PostgreSQL when `url` is set, the embedded store otherwise.
    pub backend: Option<MetaBackend>,
    /// PostgreSQL URL (`DATABASE_URL`).
    pub url: Option<Secret>,
    /// Most PostgreSQL connections per process.
    pub pool_size: usize,
    /// Seconds opening a connection may take.
    pub connect_timeout_secs: u64,
    /// Seconds one statement may run.
    pub statement_timeout_secs: u64,
    /// Seconds a request waits for a free connection.
    pub acquire_timeout_secs: u64,
    /// Apply pending schema migrations at start (`serve`).
    pub migrate: bool,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            backend: None,
            url: None,
            pool_size: 16,
            connect_timeout_secs: 5,
            statement_timeout_secs: 30,
            acquire_timeout_secs: 10,
            migrate: true,
        }
    }
}

impl MetaConfig {
    /// The store this configuration selects.
    pub fn selected(&self) -> MetaBackend {
        self.backend.unwrap_or(if self.url.is_some() { MetaBackend::Postgres } else { MetaBackend::Embedded })
    }

    /// The PostgreSQL settings, when PostgreSQL is selected.
    pub fn postgres(&self) -> Option<s3ipfs_meta::PgSettings> {
        let url = self.url.as_ref().filter(|_| self.selected() == MetaBackend::Postgres)?;
        Some(s3ipfs_meta::PgSettings {
            url: url.expose().to_owned(),
            pool_size: self.pool_size,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            acquire_timeout: Duration::from_secs(self.acquire_timeout_secs),
        })
    }
}

/// Where object bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ContentBackend {
    /// The local CID store under the data directory.
    #[default]
    Local,
    /// Filebase's S3 API: every object pinned on IPFS, its CID checked against the gateway's.
    Filebase,
    /// Any S3 server (AWS, MinIO, Garage, Ceph): the gateway's CID is authoritative.
    S3,
}

/// `[content.filebase]` and `[content.s3]`: where a remote backend is and how to sign for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteEndpoint {
    /// The endpoint URL; unset: `https://s3.filebase.com` for Filebase (required for a generic S3 server).
    pub endpoint: Option<String>,
    /// The region to sign for.
    pub region: String,
    /// The bucket holding the content (objects are named by CID).
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Option<Secret>,
    /// Address buckets in the path (`endpoint/bucket/key`) rather than the host name.
    pub path_style: bool,
}

impl Default for RemoteEndpoint {
    fn default() -> Self {
        RemoteEndpoint {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            access_key: String::new(),
            secret_key: None,
            path_style: true,
        }
    }
}

/// Filebase's S3 endpoint.
pub const FILEBASE_ENDPOINT: &str = "https://s3.filebase.com";

/// `[content]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentConfig {
    /// The content store.
    pub backend: ContentBackend,
    /// CID profile of new objects: kubo-v1, kubo-v0 or unixfs-v1-2025; unset: kubo-v0 on Filebase (its own
    /// CIDs, no CAR import needed), kubo-v1 otherwise.
    pub cid_profile: Option<String>,
    /// The Filebase backend.
    pub filebase: RemoteEndpoint,
    /// The generic S3 backend.
    pub s3: RemoteEndpoint,
    /// Where remote writes are spooled while they are hashed [default: DATA/spool].
    pub spool_dir: Option<PathBuf>,
    /// Where multipart parts wait for Complete with a remote backend [default: DATA/staging]. Replicas must share
    /// it (a shared volume), or route each upload's requests to one replica.
    pub staging_dir: Option<PathBuf>,
    /// Objects above this many MiB go up as multipart uploads of parts this size.
    pub part_size_mib: u64,
    /// Parts of one upload sent at once.
    pub upload_concurrency: usize,
    /// Seconds one backend call may take (uploads get one more second per MiB).
    pub timeout_secs: u64,
    /// Seconds opening a connection to the backend may take.
    pub connect_timeout_secs: u64,
    /// Backend calls in flight at once, across all requests.
    pub max_in_flight: usize,
    /// Backend calls per second (Filebase documents about 100).
    pub requests_per_second: usize,
    /// Retries of an idempotent backend call after a transient error.
    pub retries: usize,
    /// Seconds the circuit breaker stays open before it probes the backend again.
    pub breaker_open_secs: u64,
}

impl Default for ContentConfig {
    fn default() -> Self {
        ContentConfig {
            backend: ContentBackend::Local,
            cid_profile: None,
            filebase: RemoteEndpoint::default(),
            s3: RemoteEndpoint::default(),
            spool_dir: None,
            staging_dir: None,
            part_size_mib: 16,
            upload_concurrency: 4,
            timeout_secs: 30,
            connect_timeout_secs: 5,
            max_in_flight: 64,
            requests_per_second: 100,
            retries: 3,
            breaker_open_secs: 5,
        }
    }
}

impl ContentConfig {
    /// The remote endpoint the backend selects, if it is remote, with its endpoint URL.
    pub fn remote(&self) -> Option<(&RemoteEndpoint, &str)> {
        match self.backend {
            ContentBackend::Local => None,
            ContentBackend::Filebase => {
                Some((&self.filebase, self.filebase.endpoint.as_deref().unwrap_or(FILEBASE_ENDPOINT)))
            }
            ContentBackend::S3 => Some((&self.s3, self.s3.endpoint.as_deref().unwrap_or_default())),
        }
    }
}

/// Which caches run in front of the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// Every lookup goes to the stores.
    Off,
    /// In-process caches (and the disk cache of a remote content backend).
    Memory,
    /// In-process caches and Redis at `cache.redis_url`, shared and invalidated across replicas.
    Redis,
}

/// `[cache]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// The caches; unset: Redis when `redis_url` is set, in-process otherwise.
    pub backend: Option<CacheBackend>,
    /// Redis URL (`REDIS_URL`): `redis://`, `rediss://` (TLS), `redis-sentinel://…?sentinelServiceName=…` or
    /// `redis-cluster://`.
    pub redis_url: Option<Secret>,
    /// Prepended to every Redis key and channel.
    pub redis_prefix: String,
    /// Milliseconds one Redis command may take before the request goes to the source.
    pub redis_timeout_ms: u64,
    /// Seconds the Redis breaker stays open before a probe.
    pub redis_breaker_open_secs: u64,
    /// The key that seals access keys' secrets in Redis (the same on every replica); unset: access keys are cached
    /// in process only.
    pub redis_seal_key: Option<Secret>,
    /// Objects up to this many KiB are cached in memory and in Redis.
    pub max_object_kib: u64,
    /// The in-process content cache's budget, in MiB.
    pub memory_mib: u64,
    /// Seconds a cached object stays in Redis.
    pub content_ttl_secs: u64,
    /// Where larger objects are cached on disk with a remote content backend [default: DATA/cache].
    pub disk_dir: Option<PathBuf>,
    /// The disk cache's budget in MiB (0: no disk cache).
    pub disk_mib: u64,
    /// Objects up to this many MiB are cached on disk.
    pub max_disk_object_mib: u64,
    /// Seconds an access key or bucket is cached: how long another replica's change can go unseen when its
    /// invalidation message is lost.
    pub meta_ttl_secs: u64,
    /// Milliseconds a replica reuses a key's write token read from Redis. 0 (the default): every GET asks Redis,
    /// and a PUT acknowledged by any replica is what the next GET on any replica returns. Above 0: another
    /// replica's write can go unseen for up to this long, and hot GETs skip a Redis round trip.
    pub head_token_reuse_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: None,
            redis_url: None,
            redis_prefix: "s3ipfs:".into(),
            redis_timeout_ms: 100,
            redis_breaker_open_secs: 2,
            redis_seal_key: None,
            max_object_kib: 1024,
            memory_mib: 256,
            content_ttl_secs: 24 * 3600,
            disk_dir: None,
            disk_mib: 4096,
            max_disk_object_mib: 256,
            meta_ttl_secs: 5,
            head_token_reuse_ms: 0,
        }
    }
}

impl CacheConfig {
    /// The caches this configuration selects.
    pub fn selected(&self) -> CacheBackend {
        self.backend.unwrap_or(if self.redis_url.is_some() { CacheBackend::Redis } else { CacheBackend::Memory })
    }
}

/// `[jobs]`: background work, each job run by one replica at a time under a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Multipart uploads older than this many seconds are aborted and their parts freed.
    pub multipart_expiry_secs: u64,
    /// Content unreferenced for this many seconds is deleted by garbage collection.
    pub gc_grace_secs: u64,
    /// Seconds between garbage collections.
    pub gc_interval_secs: u64,
    /// Seconds between a replica's heartbeats; a replica silent for three is gone, and its uploads in progress
    /// are aborted.
    pub heartbeat_secs: u64,
    /// Uploads in progress older than this many seconds are aborted whatever their replica.
    pub pending_max_age_secs: u64,
    /// Aborted and replaced versions are deleted from the history after this many seconds.
    pub history_retention_secs: u64,
    /// Seconds between cleanups (abandoned uploads, history).
    pub cleanup_interval_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            multipart_expiry_secs: 7 * 24 * 3600,
            gc_grace_secs: 900,
            gc_interval_secs: 300,
            heartbeat_secs: 10,
            pending_max_age_secs: 24 * 3600,
            history_retention_secs: 24 * 3600,
            cleanup_interval_secs: 60,
        }
    }
}

/// A setting that is missing, malformed or contradicts another.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("reading the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for this tree (the message names the key).
    #[error("configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, and where.
        message: String,
    },
    /// One setting is invalid.
    #[error("invalid setting {setting}: {message}")]
    Invalid {
        /// The setting, as `section.name`.
        setting: &'static str,
        /// Why.
        message: String,
    },
}

/// Seconds in a day: the bound of timeouts and periods (larger values overflow the clocks they are added to).
const DAY: u64 = 24 * 3600;

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, message: message.into() }
}

impl Config {
    /// The defaults overlaid with the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: shown, message: e.to_string() })
    }

    /// Refuses settings that cannot work, naming the first bad one.
    pub fn check(&self) -> Result<(), ConfigError> {
        let (s, m, j) = (&self.server, &self.meta, &self.jobs);
        if s.region.trim().is_empty() {
            return Err(invalid("server.region", "must not be empty"));
        }
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err(invalid("server.tls_cert", "tls_cert and tls_key must be set together"));
        }
        if s.root_access_key.is_some() != s.root_secret_key.is_some() {
            return Err(invalid("server.root_access_key", "root_access_key and root_secret_key must be set together"));
        }
        if let Some(domain) = s.domains.iter().find(|d| d.is_empty() || d.contains('/') || d.contains(':')) {
            return Err(invalid("server.domains", format!("{domain:?} is not a host name")));
        }
        for (setting, value) in [
            ("server.header_timeout_secs", s.header_timeout_secs),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            ("server.stall_timeout_secs", s.stall_timeout_secs),
            ("meta.connect_timeout_secs", m.connect_timeout_secs),
            ("meta.statement_timeout_secs", m.statement_timeout_secs),
            ("meta.acquire_timeout_secs", m.acquire_timeout_secs),
            ("jobs.gc_interval_secs", j.gc_interval_secs),
            ("jobs.heartbeat_secs", j.heartbeat_secs),
            ("jobs.cleanup_interval_secs", j.cleanup_interval_secs),
            ("content.timeout_secs", self.content.timeout_secs),
            ("content.connect_timeout_secs", self.content.connect_timeout_secs),
            ("content.breaker_open_secs", self.content.breaker_open_secs),
            ("content.upload_concurrency", self.content.upload_concurrency as u64),
            ("content.max_in_flight", self.content.max_in_flight as u64),
            ("content.requests_per_second", self.content.requests_per_second as u64),
            ("cache.redis_timeout_ms", self.cache.redis_timeout_ms),
            ("cache.redis_breaker_open_secs", self.cache.redis_breaker_open_secs),
            ("cache.content_ttl_secs", self.cache.content_ttl_secs),
            ("cache.meta_ttl_secs", self.cache.meta_ttl_secs),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1"));
            }
        }
        for (setting, value, most) in [
            ("server.header_timeout_secs", s.header_timeout_secs, DAY),
            ("server.idle_timeout_secs", s.idle_timeout_secs, DAY),
            ("server.stall_timeout_secs", s.stall_timeout_secs, DAY),
            ("meta.connect_timeout_secs", m.connect_timeout_secs, DAY),
            ("meta.statement_timeout_secs", m.statement_timeout_secs, DAY),
            ("meta.acquire_timeout_secs", m.acquire_timeout_secs, DAY),
            ("jobs.heartbeat_secs", j.heartbeat_secs, DAY),
            ("jobs.cleanup_interval_secs", j.cleanup_interval_secs, DAY),
            ("jobs.gc_interval_secs", j.gc_interval_secs, 30 * DAY),
            ("jobs.gc_grace_secs", j.gc_grace_secs, 3650 * DAY),
            ("jobs.multipart_expiry_secs", j.multipart_expiry_secs, 3650 * DAY),
            ("jobs.pending_max_age_secs", j.pending_max_age_secs, 3650 * DAY),
            ("jobs.history_retention_secs", j.history_retention_secs, 3650 * DAY),
            ("content.timeout_secs", self.content.timeout_secs, DAY),
            ("content.connect_timeout_secs", self.content.connect_timeout_secs, DAY),
            ("content.breaker_open_secs", self.content.breaker_open_secs, DAY),
            ("content.upload_concurrency", self.content.upload_concurrency as u64, 1000),
            ("content.max_in_flight", self.content.max_in_flight as u64, 100_000),
            ("content.requests_per_second", self.content.requests_per_second as u64, 1_000_000),
            ("content.retries", self.content.retries as u64, 100),
            ("cache.redis_timeout_ms", self.cache.redis_timeout_ms, 60_000),
            ("cache.redis_breaker_open_secs", self.cache.redis_breaker_open_secs, DAY),
            ("cache.content_ttl_secs", self.cache.content_ttl_secs, 365 * DAY),
            ("cache.meta_ttl_secs", self.cache.meta_ttl_secs, DAY),
            ("cache.head_token_reuse_ms", self.cache.head_token_reuse_ms, 60_000),
            ("cache.max_object_kib", self.cache.max_object_kib, 512 * 1024),
            ("cache.memory_mib", self.cache.memory_mib, 1024 * 1024),
            ("cache.disk_mib", self.cache.disk_mib, 1024 * 1024 * 1024),
            ("cache.max_disk_object_mib", self.cache.max_disk_object_mib, 1024 * 1024),
        ] {
            if value > most {
                return Err(invalid(setting, format!("must be at most {most}")));
            }
        }
        if m.pool_size == 0 || m.pool_size > 10_000 {
            return Err(invalid("meta.pool_size", "must be 1 to 10000"));
        }
        if j.pending_max_age_secs < j.heartbeat_secs.saturating_mul(3) {
            return Err(invalid("jobs.pending_max_age_secs", "must be at least three heartbeats"));
        }
        self.cid_profile()?;
        self.check_content()?;
        match (self.cache.selected(), &self.cache.redis_url) {
            (CacheBackend::Redis, None) => return Err(invalid("cache.redis_url", "Redis needs a URL (REDIS_URL)")),
            (CacheBackend::Redis, Some(url)) => {
                let scheme = url.expose().split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
                if !["redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster"]
                    .contains(&scheme)
                {
                    return Err(invalid(
                        "cache.redis_url",
                        "must be a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL",
                    ));
                }
            }
            _ => {}
        }
        match (m.selected(), &m.url) {
            (MetaBackend::Postgres, None) => return Err(invalid("meta.url", "PostgreSQL needs a URL (DATABASE_URL)")),
            (MetaBackend::Postgres, Some(url)) => {
                url.expose()
                    .parse::<s3ipfs_meta::PgConfig>()
                    .map_err(|e| invalid("meta.url", format!("not a PostgreSQL URL: {e}")))?;
            }
            (MetaBackend::Embedded, Some(_)) => {
                return Err(invalid("meta.url", "set, but meta.backend is embedded: remove one of them"));
            }
            (MetaBackend::Embedded, None) => {}
        }
        Ok(())
    }

    fn check_content(&self) -> Result<(), ConfigError> {
        let c = &self.content;
        if !(5..=5 * 1024).contains(&c.part_size_mib) {
            return Err(invalid("content.part_size_mib", "must be 5 to 5120 (S3's part size limits)"));
        }
        let Some((remote, endpoint)) = c.remote() else { return Ok(()) };
        let section = if c.backend == ContentBackend::Filebase { "filebase" } else { "s3" };
        let named = |field: &'static str| -> &'static str {
            match (section, field) {
                ("filebase", "endpoint") => "content.filebase.endpoint",
                ("filebase", "region") => "content.filebase.region",
                ("filebase", "bucket") => "content.filebase.bucket",
                ("filebase", "access_key") => "content.filebase.access_key",
                ("filebase", _) => "content.filebase.secret_key",
                (_, "endpoint") => "content.s3.endpoint",
                (_, "region") => "content.s3.region",
                (_, "bucket") => "content.s3.bucket",
                (_, "access_key") => "content.s3.access_key",
                _ => "content.s3.secret_key",
            }
        };
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(invalid(named("endpoint"), "must be an http:// or https:// URL"));
        }
        for (field, value) in
            [("region", &remote.region), ("bucket", &remote.bucket), ("access_key", &remote.access_key)]
        {
            if value.trim().is_empty() {
                return Err(invalid(named(field), "must be set for this content backend"));
            }
        }
        if remote.secret_key.as_ref().is_none_or(|k| k.expose().is_empty()) {
            return Err(invalid(named("secret_key"), "must be set for this content backend"));
        }
        Ok(())
    }

    /// The CID profile of new objects: the configured one, or the backend's default.
    pub fn cid_profile(&self) -> Result<Profile, ConfigError> {
        match &self.content.cid_profile {
            Some(name) => name.parse().map_err(|e| invalid("content.cid_profile", format!("{e}"))),
            None if self.content.backend == ContentBackend::Filebase => Ok(Profile::KUBO_V0),
            None => Ok(Profile::KUBO_V1),
        }
    }

    /// This configuration with every secret replaced by `********` (and a URL's password only), for printing.
    pub fn masked(&self) -> Config {
        let mut masked = self.clone();
        if let Some(secret) = &mut masked.server.root_secret_key {
            *secret = Secret::new("********");
        }
        if let Some(url) = &mut masked.meta.url {
            *url = Secret::new(mask_password(url.expose()));
        }
        if let Some(url) = &mut masked.cache.redis_url {
            *url = Secret::new(mask_password(url.expose()));
        }
        if let Some(key) = &mut masked.cache.redis_seal_key {
            *key = Secret::new("********");
        }
        for remote in [&mut masked.content.filebase, &mut masked.content.s3] {
            if let Some(secret) = &mut remote.secret_key {
                *secret = Secret::new("********");
            }
        }
        masked
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// `url` with its password replaced: `postgres://user:********@host/db`, and a `password` query parameter. A
/// key=value connection string that names a password is masked whole: its quoting rules are libpq's, and a partial
/// mask that misreads them would print the secret.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.to_ascii_lowercase().contains("password") { "********".to_owned() } else { url.to_owned() };
    };
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:********@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    let query = query
        .map(|q| {
            let pairs: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=********"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("?{}", pairs.join("&"))
        })
        .unwrap_or_default();
    format!("{scheme}://{authority}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_masked_and_the_rest_kept() {
        assert_eq!(mask_password("postgres://u:p%40ss@db:5432/s3"), "postgres://u:********@db:5432/s3");
        assert_eq!(
            mask_password("postgres://u@db/s3?password=x&sslmode=disable"),
            "postgres://u@db/s3?password=********&sslmode=disable"
        );
        assert_eq!(mask_password("postgres://u@db?password=x"), "postgres://u@db?password=********");
        assert_eq!(mask_password("host=db user=u password = 'a b'"), "********");
        assert_eq!(mask_password("host=db user=u"), "host=db user=u");
        assert_eq!(mask_password("postgres://db/s3"), "postgres://db/s3");
    }

    #[test]
    fn the_defaults_are_valid_and_select_the_embedded_store() {
        let config = Config::default();
        config.check().expect("valid");
        assert_eq!(config.meta.selected(), MetaBackend::Embedded);
    }

    #[test]
    fn a_file_overrides_the_defaults_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s3ipfs.toml");
        std::fs::write(&path, "[server]\nregion = \"eu-west-1\"\n[meta]\nurl = \"postgres://u:pw@db/s3\"\n")
            .expect("write");
        let config = Config::from_file(&path).expect("parses");
        assert_eq!(config.server.region, "eu-west-1");
        assert_eq!(config.meta.selected(), MetaBackend::Postgres);
        assert!(config.masked().to_toml().contains("postgres://u:********@db/s3"));
        assert!(!config.masked().to_toml().contains("pw"));
        std::fs::write(&path, "[server]\nregoin = \"x\"\n").expect("write");
        let err = Config::from_file(&path).expect_err("unknown key");
        assert!(err.to_string().contains("regoin"), "{err}");
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let mut config = Config::default();
        config.meta.backend = Some(MetaBackend::Postgres);
        assert!(config.check().expect_err("no url").to_string().contains("meta.url"));
        config.meta.url = Some(Secret::new("postgres://db:notaport/x"));
        assert!(config.check().expect_err("bad url").to_string().contains("meta.url"));
        let mut config = Config::default();
        config.content.cid_profile = Some("kubo-v9".into());
        assert!(config.check().expect_err("profile").to_string().contains("content.cid_profile"));
        let mut config = Config::default();
        config.meta.pool_size = 0;
        assert!(config.check().expect_err("pool").to_string().contains("meta.pool_size"));
        let mut config = Config::default();
        config.jobs.heartbeat_secs = u64::MAX;
        assert!(config.check().expect_err("huge").to_string().contains("jobs.heartbeat_secs"));
        let mut config = Config::default();
        config.content.backend = ContentBackend::Filebase;
        assert!(config.check().expect_err("no bucket").to_string().contains("content.filebase.bucket"));
        config.content.filebase.bucket = "b".into();
        config.content.filebase.access_key = "k".into();
        assert!(config.check().expect_err("no secret").to_string().contains("content.filebase.secret_key"));
        config.content.filebase.secret_key = Some(Secret::new("s3cr3t"));
        config.check().expect("complete");
        assert_eq!(config.cid_profile().expect("profile"), Profile::KUBO_V0, "Filebase's own profile by default");
        assert!(!config.masked().to_toml().contains("s3cr3t"));
        config.content.backend = ContentBackend::S3;
        assert!(config.check().expect_err("no endpoint").to_string().contains("content.s3.endpoint"));
        let mut config = Config::default();
        config.content.part_size_mib = 1;
        assert!(config.check().expect_err("small parts").to_string().contains("content.part_size_mib"));
    }
}

//! Command-line interface: the subcommands, and a flag and environment variable for every setting of the
//! configuration tree (listed in `.env.example`). A flag or variable overrides the configuration file, which
//! overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use s3ipfs_cid::Profile;

use crate::config::{CacheBackend, Config, ConfigError, ContentBackend, MetaBackend, Secret};

/// S3-compatible gateway that stores every object on IPFS.
#[derive(Debug, clap::Parser)]
#[command(name = "s3ipfs", version, about)]
pub struct Cli {
    /// TOML configuration file (sections server, meta, content, cache, jobs).
    #[arg(long = "config", env = "S3IPFS_CONFIG", global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Settings over the file.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the S3 gateway.
    Serve,
    /// Manage users and their access keys.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the IPFS CID of a file (what `ipfs add` prints), optionally writing its DAG as a CAR.
    Cid(CidArgs),
    /// Delete stored content that nothing has referenced for the grace period (a running server does this itself
    /// every jobs.gc_interval_secs; this command is safe to run beside it).
    Gc(GcCommandArgs),
    /// Apply the metadata store's pending schema migrations, then exit.
    Migrate,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `s3ipfs config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets masked); exit non-zero naming the first bad setting.
    Check,
}

/// Arguments of `s3ipfs gc`.
#[derive(Debug, Clone, clap::Args)]
pub struct GcCommandArgs {
    /// Only report what would be deleted, and how many bytes.
    #[arg(long)]
    pub dry_run: bool,
}

/// `s3ipfs user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Register a user and print a new access key pair.
    Create {
        /// The user's email address.
        #[arg(long)]
        email: String,
    },
    /// Revoke an access key: it signs nothing from now on, on every replica.
    RevokeKey {
        /// The access key id.
        access_key: String,
    },
}

/// Arguments of `s3ipfs cid`.
#[derive(Debug, clap::Args)]
pub struct CidArgs {
    /// Import profile: kubo-v1 (`ipfs add --cid-version=1`), kubo-v0 (plain `ipfs add`) or unixfs-v1-2025.
    #[arg(long, default_value = "kubo-v1")]
    pub profile: Profile,
    /// Also write the file's DAG as a CAR v1 file to this path.
    #[arg(long, value_name = "OUT")]
    pub car: Option<PathBuf>,
    /// The file to import, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: PathBuf,
}

/// Every setting as a flag and an environment variable; unset ones keep the file's value or the default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Settings {
    /// server.listen: address to listen on (port 0 picks a free port) [default: 127.0.0.1:9000].
    #[arg(long, env = "S3IPFS_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// server.data_dir: directory of the embedded metadata database and the local content store [default: ./data].
    #[arg(long, env = "S3IPFS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// server.region: region reported to clients and expected in signatures [default: us-east-1].
    #[arg(long, env = "S3IPFS_REGION", global = true)]
    pub region: Option<String>,
    /// server.domains: base domains for virtual-hosted-style requests, comma-separated.
    #[arg(long = "domain", env = "S3IPFS_DOMAINS", value_delimiter = ',', global = true)]
    pub domains: Option<Vec<String>>,
    /// server.allow_sigv2 = true: accept SigV2 presigned URLs.
    #[arg(long, env = "S3IPFS_ALLOW_SIGV2", global = true)]
    pub allow_sigv2: bool,
    /// server.tls_cert: PEM certificate chain; serve HTTPS.
    #[arg(long, env = "S3IPFS_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// server.tls_key: PEM private key of the certificate.
    #[arg(long, env = "S3IPFS_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// server.header_timeout_secs [default: 20].
    #[arg(long, env = "S3IPFS_HEADER_TIMEOUT_SECS", global = true)]
    pub header_timeout_secs: Option<u64>,
    /// server.idle_timeout_secs [default: 30].
    #[arg(long, env = "S3IPFS_IDLE_TIMEOUT_SECS", global = true)]
    pub idle_timeout_secs: Option<u64>,
    /// server.stall_timeout_secs [default: 30].
    #[arg(long, env = "S3IPFS_STALL_TIMEOUT_SECS", global = true)]
    pub stall_timeout_secs: Option<u64>,
    /// server.max_connections: 0 derives it from the open-file limit [default: 0].
    #[arg(long, env = "S3IPFS_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// server.root_email: the first user [default: admin@localhost].
    #[arg(long, env = "S3IPFS_ROOT_EMAIL", global = true)]
    pub root_email: Option<String>,
    /// server.root_access_key: the first user's access key id (generated when unset).
    #[arg(long, env = "S3IPFS_ROOT_ACCESS_KEY", global = true)]
    pub root_access_key: Option<String>,
    /// server.root_secret_key: the first user's secret key.
    #[arg(long, env = "S3IPFS_ROOT_SECRET_KEY", hide_env_values = true, global = true)]
    pub root_secret_key: Option<String>,
    /// meta.backend: embedded or postgres [default: postgres when a URL is set].
    #[arg(long = "meta-backend", env = "S3IPFS_META_BACKEND", global = true)]
    pub meta_backend: Option<MetaBackend>,
    /// meta.url: PostgreSQL URL; selects PostgreSQL.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// meta.pool_size [default: 16].
    #[arg(long = "database-pool-size", env = "S3IPFS_DATABASE_POOL_SIZE", global = true)]
    pub database_pool_size: Option<usize>,
    /// meta.connect_timeout_secs [default: 5].
    #[arg(long = "database-connect-timeout-secs", env = "S3IPFS_DATABASE_CONNECT_TIMEOUT_SECS", global = true)]
    pub database_connect_timeout_secs: Option<u64>,
    /// meta.statement_timeout_secs [default: 30].
    #[arg(long = "database-statement-timeout-secs", env = "S3IPFS_DATABASE_STATEMENT_TIMEOUT_SECS", global = true)]
    pub database_statement_timeout_secs: Option<u64>,
    /// meta.acquire_timeout_secs [default: 10].
    #[arg(long = "database-acquire-timeout-secs", env = "S3IPFS_DATABASE_ACQUIRE_TIMEOUT_SECS", global = true)]
    pub database_acquire_timeout_secs: Option<u64>,
    /// meta.migrate = false: `serve` does not apply migrations (run `s3ipfs migrate` first).
    #[arg(long = "no-migrate", env = "S3IPFS_NO_MIGRATE", global = true)]
    pub no_migrate: bool,
    /// content.backend: local, filebase or s3 [default: local].
    #[arg(long = "content-backend", env = "S3IPFS_CONTENT_BACKEND", global = true)]
    pub content_backend: Option<ContentBackend>,
    /// content.cid_profile: kubo-v1, kubo-v0 or unixfs-v1-2025 [default: kubo-v0 on filebase, kubo-v1 otherwise].
    #[arg(long, env = "S3IPFS_CID_PROFILE", global = true)]
    pub cid_profile: Option<String>,
    /// content.filebase.endpoint [default: https://s3.filebase.com].
    #[arg(long, env = "FILEBASE_ENDPOINT", global = true)]
    pub filebase_endpoint: Option<String>,
    /// content.filebase.region [default: us-east-1].
    #[arg(long, env = "FILEBASE_REGION", global = true)]
    pub filebase_region: Option<String>,
    /// content.filebase.bucket: the IPFS bucket holding the content.
    #[arg(long, env = "FILEBASE_BUCKET", global = true)]
    pub filebase_bucket: Option<String>,
    /// content.filebase.access_key.
    #[arg(long, env = "FILEBASE_ACCESS_KEY", global = true)]
    pub filebase_access_key: Option<String>,
    /// content.filebase.secret_key.
    #[arg(long, env = "FILEBASE_SECRET_KEY", hide_env_values = true, global = true)]
    pub filebase_secret_key: Option<String>,
    /// content.s3.endpoint: the S3 server's URL.
    #[arg(long = "s3-backend-endpoint", env = "S3_BACKEND_ENDPOINT", global = true)]
    pub s3_backend_endpoint: Option<String>,
    /// content.s3.region [default: us-east-1].
    #[arg(long = "s3-backend-region", env = "S3_BACKEND_REGION", global = true)]
    pub s3_backend_region: Option<String>,
    /// content.s3.bucket: the bucket holding the content.
    #[arg(long = "s3-backend-bucket", env = "S3_BACKEND_BUCKET", global = true)]
    pub s3_backend_bucket: Option<String>,
    /// content.s3.access_key.
    #[arg(long = "s3-backend-access-key", env = "S3_BACKEND_ACCESS_KEY", global = true)]
    pub s3_backend_access_key: Option<String>,
    /// content.s3.secret_key.
    #[arg(long = "s3-backend-secret-key", env = "S3_BACKEND_SECRET_KEY", hide_env_values = true, global = true)]
    pub s3_backend_secret_key: Option<String>,
    /// content.s3.path_style: address buckets in the path [default: true].
    #[arg(long = "s3-backend-path-style", env = "S3_BACKEND_PATH_STYLE", global = true)]
    pub s3_backend_path_style: Option<bool>,
    /// content.spool_dir: where remote writes are spooled [default: DATA/spool].
    #[arg(long, env = "S3IPFS_SPOOL_DIR", global = true)]
    pub spool_dir: Option<PathBuf>,
    /// content.staging_dir: where multipart parts wait for Complete with a remote backend [default: DATA/staging].
    #[arg(long, env = "S3IPFS_STAGING_DIR", global = true)]
    pub staging_dir: Option<PathBuf>,
    /// content.part_size_mib [default: 16].
    #[arg(long = "content-part-size-mib", env = "S3IPFS_CONTENT_PART_SIZE_MIB", global = true)]
    pub content_part_size_mib: Option<u64>,
    /// content.upload_concurrency: parts of one upload sent at once [default: 4].
    #[arg(long = "content-upload-concurrency", env = "S3IPFS_CONTENT_UPLOAD_CONCURRENCY", global = true)]
    pub content_upload_concurrency: Option<usize>,
    /// content.timeout_secs: one backend call [default: 30].
    #[arg(long = "content-timeout-secs", env = "S3IPFS_CONTENT_TIMEOUT_SECS", global = true)]
    pub content_timeout_secs: Option<u64>,
    /// content.connect_timeout_secs [default: 5].
    #[arg(long = "content-connect-timeout-secs", env = "S3IPFS_CONTENT_CONNECT_TIMEOUT_SECS", global = true)]
    pub content_connect_timeout_secs: Option<u64>,
    /// content.max_in_flight: backend calls at once [default: 64].
    #[arg(long = "content-max-in-flight", env = "S3IPFS_CONTENT_MAX_IN_FLIGHT", global = true)]
    pub content_max_in_flight: Option<usize>,
    /// content.requests_per_second: backend calls per second [default: 100].
    #[arg(long = "content-requests-per-second", env = "S3IPFS_CONTENT_REQUESTS_PER_SECOND", global = true)]
    pub content_requests_per_second: Option<usize>,
    /// content.retries: of an idempotent backend call [default: 3].
    #[arg(long = "content-retries", env = "S3IPFS_CONTENT_RETRIES", global = true)]
    pub content_retries: Option<usize>,
    /// content.breaker_open_secs: before the breaker probes again [default: 5].
    #[arg(long = "content-breaker-open-secs", env = "S3IPFS_CONTENT_BREAKER_OPEN_SECS", global = true)]
    pub content_breaker_open_secs: Option<u64>,
    /// cache.backend: off, memory or redis [default: redis when REDIS_URL is set, memory otherwise].
    #[arg(long = "cache-backend", env = "S3IPFS_CACHE_BACKEND", global = true)]
    pub cache_backend: Option<CacheBackend>,
    /// cache.redis_url: Redis for the shared cache.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// cache.redis_prefix: prepended to every Redis key [default: s3ipfs:].
    #[arg(long = "redis-prefix", env = "S3IPFS_REDIS_PREFIX", global = true)]
    pub redis_prefix: Option<String>,
    /// cache.redis_timeout_ms: one Redis command [default: 100].
    #[arg(long = "redis-timeout-ms", env = "S3IPFS_REDIS_TIMEOUT_MS", global = true)]
    pub redis_timeout_ms: Option<u64>,
    /// cache.redis_breaker_open_secs [default: 2].
    #[arg(long = "redis-breaker-open-secs", env = "S3IPFS_REDIS_BREAKER_OPEN_SECS", global = true)]
    pub redis_breaker_open_secs: Option<u64>,
    /// cache.redis_seal_key: seals access keys' secrets in Redis (unset: keys are cached in process only).
    #[arg(long = "redis-seal-key", env = "S3IPFS_REDIS_SEAL_KEY", hide_env_values = true, global = true)]
    pub redis_seal_key: Option<String>,
    /// cache.max_object_kib: objects cached in memory and Redis [default: 1024].
    #[arg(long = "cache-max-object-kib", env = "S3IPFS_CACHE_MAX_OBJECT_KIB", global = true)]
    pub cache_max_object_kib: Option<u64>,
    /// cache.memory_mib: the in-process content cache [default: 256].
    #[arg(long = "cache-memory-mib", env = "S3IPFS_CACHE_MEMORY_MIB", global = true)]
    pub cache_memory_mib: Option<u64>,
    /// cache.content_ttl_secs: an object's life in Redis [default: 86400].
    #[arg(long = "cache-content-ttl-secs", env = "S3IPFS_CACHE_CONTENT_TTL_SECS", global = true)]
    pub cache_content_ttl_secs: Option<u64>,
    /// cache.disk_dir: the disk cache of a remote backend [default: DATA/cache].
    #[arg(long = "cache-disk-dir", env = "S3IPFS_CACHE_DISK_DIR", global = true)]
    pub cache_disk_dir: Option<PathBuf>,
    /// cache.disk_mib: the disk cache's budget, 0 for none [default: 4096].
    #[arg(long = "cache-disk-mib", env = "S3IPFS_CACHE_DISK_MIB", global = true)]
    pub cache_disk_mib: Option<u64>,
    /// cache.max_disk_object_mib: objects cached on disk [default: 256].
    #[arg(long = "cache-max-disk-object-mib", env = "S3IPFS_CACHE_MAX_DISK_OBJECT_MIB", global = true)]
    pub cache_max_disk_object_mib: Option<u64>,
    /// cache.meta_ttl_secs: access keys and buckets in process [default: 5].
    #[arg(long = "cache-meta-ttl-secs", env = "S3IPFS_CACHE_META_TTL_SECS", global = true)]
    pub cache_meta_ttl_secs: Option<u64>,
    /// cache.head_token_reuse_ms: 0 keeps read-after-write exact across replicas [default: 0].
    #[arg(long = "cache-head-token-reuse-ms", env = "S3IPFS_CACHE_HEAD_TOKEN_REUSE_MS", global = true)]
    pub cache_head_token_reuse_ms: Option<u64>,
    /// jobs.multipart_expiry_secs [default: 604800].
    #[arg(long, env = "S3IPFS_MULTIPART_EXPIRY_SECS", global = true)]
    pub multipart_expiry_secs: Option<u64>,
    /// jobs.gc_grace_secs [default: 900].
    #[arg(long, env = "S3IPFS_GC_GRACE_SECS", global = true)]
    pub gc_grace_secs: Option<u64>,
    /// jobs.gc_interval_secs [default: 300].
    #[arg(long, env = "S3IPFS_GC_INTERVAL_SECS", global = true)]
    pub gc_interval_secs: Option<u64>,
    /// jobs.heartbeat_secs [default: 10].
    #[arg(long, env = "S3IPFS_HEARTBEAT_SECS", global = true)]
    pub heartbeat_secs: Option<u64>,
    /// jobs.pending_max_age_secs [default: 86400].
    #[arg(long, env = "S3IPFS_PENDING_MAX_AGE_SECS", global = true)]
    pub pending_max_age_secs: Option<u64>,
    /// jobs.history_retention_secs [default: 86400].
    #[arg(long, env = "S3IPFS_HISTORY_RETENTION_SECS", global = true)]
    pub history_retention_secs: Option<u64>,
    /// jobs.cleanup_interval_secs [default: 60].
    #[arg(long, env = "S3IPFS_CLEANUP_INTERVAL_SECS", global = true)]
    pub cleanup_interval_secs: Option<u64>,
}

/// A string setting, unless it is empty (an empty variable, as `.env.example` has, leaves the default).
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Sets `target` to `value` when it is given.
fn over<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

impl Settings {
    /// Overlays the given settings on `config`.
    pub fn apply(self, config: &mut Config) {
        let (s, m, c, j) = (&mut config.server, &mut config.meta, &mut config.content, &mut config.jobs);
        over(&mut s.listen, self.listen);
        over(&mut s.data_dir, self.data_dir);
        over(&mut s.region, self.region);
        over(&mut s.domains, self.domains.map(|d| d.into_iter().filter(|d| !d.is_empty()).collect()));
        over(&mut s.allow_sigv2, self.allow_sigv2.then_some(true));
        over(&mut s.tls_cert, self.tls_cert.map(Some));
        over(&mut s.tls_key, self.tls_key.map(Some));
        over(&mut s.header_timeout_secs, self.header_timeout_secs);
        over(&mut s.idle_timeout_secs, self.idle_timeout_secs);
        over(&mut s.stall_timeout_secs, self.stall_timeout_secs);
        over(&mut s.max_connections, self.max_connections);
        over(&mut s.root_email, self.root_email);
        over(&mut s.root_access_key, self.root_access_key.map(Some));
        over(&mut s.root_secret_key, self.root_secret_key.map(|k| Some(Secret::new(k))));
        over(&mut m.backend, self.meta_backend.map(Some));
        over(&mut m.url, self.database_url.filter(|u| !u.is_empty()).map(|u| Some(Secret::new(u))));
        over(&mut m.pool_size, self.database_pool_size);
        over(&mut m.connect_timeout_secs, self.database_connect_timeout_secs);
        over(&mut m.statement_timeout_secs, self.database_statement_timeout_secs);
        over(&mut m.acquire_timeout_secs, self.database_acquire_timeout_secs);
        over(&mut m.migrate, self.no_migrate.then_some(false));
        over(&mut c.backend, self.content_backend);
        over(&mut c.cid_profile, given(self.cid_profile).map(Some));
        let fb = &mut c.filebase;
        over(&mut fb.endpoint, given(self.filebase_endpoint).map(Some));
        over(&mut fb.region, given(self.filebase_region));
        over(&mut fb.bucket, given(self.filebase_bucket));
        over(&mut fb.access_key, given(self.filebase_access_key));
        over(&mut fb.secret_key, given(self.filebase_secret_key).map(|k| Some(Secret::new(k))));
        let s3 = &mut c.s3;
        over(&mut s3.endpoint, given(self.s3_backend_endpoint).map(Some));
        over(&mut s3.region, given(self.s3_backend_region));
        over(&mut s3.bucket, given(self.s3_backend_bucket));
        over(&mut s3.access_key, given(self.s3_backend_access_key));
        over(&mut s3.secret_key, given(self.s3_backend_secret_key).map(|k| Some(Secret::new(k))));
        over(&mut s3.path_style, self.s3_backend_path_style);
        over(&mut c.spool_dir, self.spool_dir.filter(|p| !p.as_os_str().is_empty()).map(Some));
        over(&mut c.staging_dir, self.staging_dir.filter(|p| !p.as_os_str().is_empty()).map(Some));
        over(&mut c.part_size_mib, self.content_part_size_mib);
        over(&mut c.upload_concurrency, self.content_upload_concurrency);
        over(&mut c.timeout_secs, self.content_timeout_secs);
        over(&mut c.connect_timeout_secs, self.content_connect_timeout_secs);
        over(&mut c.max_in_flight, self.content_max_in_flight);
        over(&mut c.requests_per_second, self.content_requests_per_second);
        over(&mut c.retries, self.content_retries);
        over(&mut c.breaker_open_secs, self.content_breaker_open_secs);
        let k = &mut config.cache;
        over(&mut k.backend, self.cache_backend.map(Some));
        over(&mut k.redis_url, given(self.redis_url).map(|u| Some(Secret::new(u))));
        over(&mut k.redis_prefix, self.redis_prefix);
        over(&mut k.redis_timeout_ms, self.redis_timeout_ms);
        over(&mut k.redis_breaker_open_secs, self.redis_breaker_open_secs);
        over(&mut k.redis_seal_key, given(self.redis_seal_key).map(|k| Some(Secret::new(k))));
        over(&mut k.max_object_kib, self.cache_max_object_kib);
        over(&mut k.memory_mib, self.cache_memory_mib);
        over(&mut k.content_ttl_secs, self.cache_content_ttl_secs);
        over(&mut k.disk_dir, self.cache_disk_dir.filter(|p| !p.as_os_str().is_empty()).map(Some));
        over(&mut k.disk_mib, self.cache_disk_mib);
        over(&mut k.max_disk_object_mib, self.cache_max_disk_object_mib);
        over(&mut k.meta_ttl_secs, self.cache_meta_ttl_secs);
        over(&mut k.head_token_reuse_ms, self.cache_head_token_reuse_ms);
        over(&mut j.multipart_expiry_secs, self.multipart_expiry_secs);
        over(&mut j.gc_grace_secs, self.gc_grace_secs);
        over(&mut j.gc_interval_secs, self.gc_interval_secs);
        over(&mut j.heartbeat_secs, self.heartbeat_secs);
        over(&mut j.pending_max_age_secs, self.pending_max_age_secs);
        over(&mut j.history_retention_secs, self.history_retention_secs);
        over(&mut j.cleanup_interval_secs, self.cleanup_interval_secs);
    }
}

impl Cli {
    /// The effective configuration: defaults, then the file, then environment and flags; checked.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config_file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.settings.clone().apply(&mut config);
        config.check()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_environment_variable_is_listed_in_env_example() {
        let example = include_str!("../../../.env.example");
        let command = Cli::command();
        let missing: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .filter(|env| !example.lines().any(|line| line.starts_with(&format!("{env}="))))
            .collect();
        assert!(missing.is_empty(), ".env.example lacks {missing:?}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s3ipfs.toml");
        std::fs::write(&path, "[server]\nregion = \"eu-west-1\"\nroot_email = \"file@example.com\"\n").expect("write");
        let cli = <Cli as clap::Parser>::try_parse_from([
            "s3ipfs",
            "--config",
            path.to_str().expect("utf-8"),
            "serve",
            "--region",
            "ap-south-1",
            "--no-migrate",
        ])
        .expect("parses");
        let config = cli.config().expect("valid");
        assert_eq!(config.server.region, "ap-south-1", "the flag wins over the file");
        assert_eq!(config.server.root_email, "file@example.com", "the file wins over the default");
        assert_eq!(config.server.listen, Config::default().server.listen, "the default stays");
        assert!(!config.meta.migrate);
    }
}

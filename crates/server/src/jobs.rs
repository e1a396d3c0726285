//! Background jobs of a running gateway: the replica heartbeat (every replica), and multipart expiry, cleanup of
//! abandoned uploads and history, and garbage collection, each run by one replica at a time under a lease in the
//! metadata store (the process itself when the store is embedded).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use s3ipfs_core::{Gateway, MetaStore};

use crate::config::JobsConfig;
use crate::stores::ContentStores;

/// How many history rows one pruning statement deletes.
const PRUNE_BATCH: usize = 1000;

/// Tells the jobs to stop: a flag they check while they work, and a wake-up while they wait.
#[derive(Debug, Default)]
pub struct StopSignal {
    stopped: AtomicBool,
    wake: tokio::sync::Notify,
}

impl StopSignal {
    /// Stops every job at its next check.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Waits `period`; `false` when stopped meanwhile.
    async fn sleep(&self, period: Duration) -> bool {
        let woken = self.wake.notified();
        tokio::pin!(woken);
        // Registered before the flag is read: a stop in between still wakes this wait.
        woken.as_mut().enable();
        if self.is_stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(period) => !self.is_stopped(),
            () = woken => false,
        }
    }
}

/// What the jobs work on.
#[derive(Clone)]
pub struct Jobs {
    /// The use cases (expiry, garbage collection).
    pub gateway: Gateway,
    /// The metadata store (heartbeat, cleanup, leases).
    pub meta: Arc<dyn MetaStore>,
    /// The content stores (abandoned temp and spool files).
    pub content: ContentStores,
    /// Their settings.
    pub config: JobsConfig,
    /// How long a temp file may see no write before it is an abandoned upload's: well past the stall timeout (a
    /// live upload writes at least that often) and the longest wait of a finishing upload.
    pub tmp_idle: Duration,
    /// Stops them.
    pub stop: Arc<StopSignal>,
}

/// How long a replica's heartbeat lasts: three periods, so one late beat does not orphan its uploads.
pub fn heartbeat_ttl(config: &JobsConfig) -> Duration {
    Duration::from_secs(config.heartbeat_secs.saturating_mul(3))
}

impl Jobs {
    /// Starts every job; they run until [`StopSignal::stop`].
    pub fn spawn(self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().heartbeat()),
            tokio::spawn(self.clone().under_lease(
                "multipart-expiry",
                self.config.multipart_expiry_secs / 2,
                Self::expire,
            )),
            tokio::spawn(self.clone().under_lease("cleanup", self.config.cleanup_interval_secs, Self::cleanup)),
            tokio::spawn(self.clone().collect_garbage()),
        ]
    }

    async fn heartbeat(self) {
        let period = Duration::from_secs(self.config.heartbeat_secs);
        while self.stop.sleep(period).await {
            if let Err(err) = self.meta.heartbeat(heartbeat_ttl(&self.config)).await {
                tracing::warn!(error = %err, "heartbeat failed: this replica's uploads may be aborted by another");
            }
        }
    }

    /// Every `period_secs` (1 to 600), runs `job` if this replica holds (or takes) the lease `name`. The lease
    /// outlives two periods, so the replica that has it keeps it while it lives and no other runs the job.
    async fn under_lease<F, Fut>(self, name: &'static str, period_secs: u64, job: F)
    where
        F: Fn(Jobs) -> Fut,
        Fut: Future<Output = ()>,
    {
        let period = Duration::from_secs(period_secs.clamp(1, 600));
        while self.stop.sleep(period).await {
            match self.meta.acquire_lease(name, self.meta.replica(), period * 2 + Duration::from_secs(5)).await {
                Ok(true) => job(self.clone()).await,
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, job = name, "taking the job's lease failed"),
            }
        }
    }

    async fn expire(self) {
        let expiry = Duration::from_secs(self.config.multipart_expiry_secs);
        let Some(cutoff) = SystemTime::now().checked_sub(expiry) else { return };
        match self.gateway.expire_multiparts(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "expired abandoned multipart uploads"),
            Err(err) => tracing::warn!(error = %err, "multipart expiry failed"),
        }
    }

    /// Aborts uploads whose replica stopped (or older than the bound), deletes temp files nothing writes to, and
    /// prunes history past its retention.
    async fn cleanup(self) {
        let max_age = Duration::from_secs(self.config.pending_max_age_secs);
        let now = SystemTime::now();
        match self.meta.abort_orphans(now.checked_sub(max_age).unwrap_or(SystemTime::UNIX_EPOCH)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "aborted uploads whose replica stopped"),
            Err(err) => tracing::warn!(error = %err, "aborting abandoned uploads failed"),
        }
        if let Err(err) = self.content.local.clear_uploads_idle_for(self.tmp_idle).await {
            tracing::warn!(error = %err, "clearing abandoned temp files failed");
        }
        if let Some(remote) = &self.content.remote
            && let Err(err) = remote.clear_spool_idle_for(self.tmp_idle).await
        {
            tracing::warn!(error = %err, "clearing abandoned spool files failed");
        }
        let retention = Duration::from_secs(self.config.history_retention_secs);
        let before = now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut pruned = 0;
        while !self.stop.is_stopped() {
            match self.meta.prune_history(before, PRUNE_BATCH).await {
                Ok(n) => {
                    pruned += n;
                    if n < PRUNE_BATCH as u64 {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "pruning history failed");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(versions = pruned, "pruned aborted and replaced versions");
        }
    }

    /// Every `gc_interval_secs`, deletes content unreferenced for longer than `gc_grace_secs` (the collection takes
    /// its own lease, renewed before every deletion).
    async fn collect_garbage(self) {
        let grace = Duration::from_secs(self.config.gc_grace_secs);
        while self.stop.sleep(Duration::from_secs(self.config.gc_interval_secs)).await {
            match self.gateway.collect_garbage(grace, &self.stop.stopped).await {
                Ok(Some(report)) if report.objects > 0 || report.failed > 0 => tracing::info!(
                    objects = report.objects,
                    bytes = report.bytes,
                    failed = report.failed,
                    "garbage collected"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "garbage collection failed"),
            }
        }
    }
}

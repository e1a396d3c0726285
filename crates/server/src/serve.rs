//! `s3ipfs serve`, `user`, `gc`, `migrate` and `config check`: the commands that use the configuration.

use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::app::{self, Application};
use crate::caches::Caches;
use crate::cli::{GcCommandArgs, UserCommand};
use crate::config::{Config, MetaBackend};
use crate::{stores, users};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("starting the runtime: {e}"))
}

/// The log filter: `RUST_LOG`, or `info`. s3s logs every client error at ERROR, with the request, so it is silenced
/// unless `RUST_LOG` names it: the gateway logs each request itself, client errors at debug. tokio-postgres's debug
/// lines carry statement parameters (secrets among them), so they stay off unless named too.
fn log_filter() -> EnvFilter {
    let configured = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let mut filter =
        configured.as_deref().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    if !configured.as_ref().is_some_and(|v| v.contains("s3s"))
        && let Ok(directive) = "s3s=off".parse()
    {
        filter = filter.add_directive(directive);
    }
    // tokio-postgres logs every statement's parameters at debug: access keys, secrets. Never, unless named.
    if !configured.as_ref().is_some_and(|v| v.contains("tokio_postgres"))
        && let Ok(directive) = "tokio_postgres=info".parse()
    {
        filter = filter.add_directive(directive);
    }
    filter
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run_serve(config: &Config) -> Result<(), String> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(log_filter()).with_writer(std::io::stderr).with_ansi(ansi).init();
    runtime()?.block_on(async {
        let app = Application::build(config).await.map_err(|e| e.to_string())?;
        let addr = app.local_addr().map_err(|e| e.to_string())?;
        let endpoint = app.endpoint().map_err(|e| e.to_string())?;
        match &app.root {
            users::RootUser::Generated(key) => {
                println!(
                    "Created the first user {} with this access key (the secret is shown once):",
                    config.server.root_email
                );
                println!("  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}", key.id, key.secret);
                println!("Try it:");
                println!("  aws --endpoint-url {endpoint} --region {} s3 mb s3://my-bucket", config.server.region);
            }
            users::RootUser::Configured => {
                println!("Created the first user {} with the configured access key.", config.server.root_email);
            }
            users::RootUser::Existing => {}
        }
        // Tests and scripts read this line to find the port.
        let metadata = match config.meta.selected() {
            MetaBackend::Postgres => "metadata in PostgreSQL",
            MetaBackend::Embedded => "metadata embedded",
        };
        println!("s3ipfs listening on {endpoint} (data in {}, {metadata})", config.server.data_dir.display());
        tracing::info!(%addr, "gateway started");
        app.run_until_stopped(app::shutdown_signal()).await;
        Ok(())
    })
}

/// Runs a `s3ipfs user` subcommand. It opens only the metadata store, which running servers share safely.
pub fn run_user(config: &Config, command: UserCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        // Through the metadata cache: a revoked key is dropped from Redis and every replica's cache.
        let mut caches = Caches::connect(config).await.map_err(|e| e.to_string())?;
        let meta = caches.meta(config, stores::open_meta(config, false).await.map_err(|e| e.to_string())?, false);
        match command {
            UserCommand::Create { email } => {
                let key = users::create_user(meta.as_ref(), &email).await.map_err(|e| format!("{email}: {e}"))?;
                println!("AWS_ACCESS_KEY_ID={}", key.id);
                println!("AWS_SECRET_ACCESS_KEY={}", key.secret);
                Ok(())
            }
            UserCommand::RevokeKey { access_key } => match meta.remove_access_key(&access_key).await {
                Ok(true) => {
                    if config.cache.selected() == crate::config::CacheBackend::Redis {
                        // The invalidation is sent again a second later (for a replica that was reading the key
                        // meanwhile): stay for it.
                        tokio::time::sleep(Duration::from_millis(1_300)).await;
                    }
                    println!("revoked {access_key}");
                    Ok(())
                }
                Ok(false) => Err(format!("no access key {access_key}")),
                Err(err) => Err(err.to_string()),
            },
        }
    })
}

/// Runs `s3ipfs gc`: reports (with `--dry-run`) or deletes content unreferenced for the grace period.
pub fn run_gc(config: &Config, args: &GcCommandArgs) -> Result<(), String> {
    runtime()?.block_on(async {
        let mut caches = Caches::connect(config).await.map_err(|e| e.to_string())?;
        let meta = stores::open_meta(config, false).await.map_err(|e| e.to_string())?;
        // Through the content cache: what GC deletes leaves Redis too.
        let content = caches
            .content(config, stores::open_content(config).await.map_err(|e| e.to_string())?, false)
            .map_err(|e| e.to_string())?;
        let gateway = content.gateway(meta, config.cid_profile().map_err(|e| e.to_string())?);
        let grace = Duration::from_secs(config.jobs.gc_grace_secs);
        if args.dry_run {
            let found = gateway.collectable(grace).await.map_err(|e| e.to_string())?;
            for content in &found {
                println!("{} {}", content.cid, content.size);
            }
            let bytes: u64 = found.iter().map(|c| c.size).sum();
            println!("would delete {} content objects, {bytes} bytes", found.len());
            return Ok(());
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        match gateway.collect_garbage(grace, &stop).await.map_err(|e| e.to_string())? {
            Some(report) if report.failed > 0 => Err(format!(
                "deleted {} content objects, {} bytes; {} could not be deleted (the next collection retries them)",
                report.objects, report.bytes, report.failed
            )),
            Some(report) => {
                println!("deleted {} content objects, {} bytes", report.objects, report.bytes);
                Ok(())
            }
            None => Err("another garbage collection is running (a server's, or another s3ipfs gc); try later".into()),
        }
    })
}

/// Runs `s3ipfs migrate`: applies the metadata store's pending migrations (safe beside running servers: they take
/// turns under a lock), then exits.
pub fn run_migrate(config: &Config) -> Result<(), String> {
    runtime()?.block_on(async {
        stores::open_meta(config, true).await.map_err(|e| e.to_string())?;
        println!("the metadata schema is up to date");
        Ok(())
    })
}

/// Runs `s3ipfs config check`: prints the effective configuration, secrets masked (the caller has checked it).
pub fn run_config_check(config: &Config) {
    print!("{}", config.masked().to_toml());
}

//! `s3ipfs serve` and `s3ipfs user`: the async commands.

use tracing_subscriber::EnvFilter;

use crate::app::{self, Application};
use crate::cli::{ServeArgs, UserCommand};
use crate::{stores, users};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("starting the runtime: {e}"))
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run_serve(args: &ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    runtime()?.block_on(async {
        let app = Application::build(args).await.map_err(|e| e.to_string())?;
        let addr = app.local_addr().map_err(|e| e.to_string())?;
        let endpoint = app.endpoint().map_err(|e| e.to_string())?;
        if let users::RootUser::Created(key) = &app.root {
            println!("Created the first user {} with this access key (shown once):", args.root_email);
            println!("  AWS_ACCESS_KEY_ID={}", key.id);
            println!("  AWS_SECRET_ACCESS_KEY={}", key.secret);
            println!("Try it:");
            println!(
                "  AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {endpoint} --region {} s3 mb s3://my-bucket",
                key.id, key.secret, args.region
            );
        }
        // Tests and scripts read this line to find the port.
        println!("s3ipfs listening on {endpoint} (data in {})", args.data.data_dir.display());
        tracing::info!(%addr, "gateway started");
        app.run_until_stopped(app::shutdown_signal()).await;
        Ok(())
    })
}

/// Runs a `s3ipfs user` subcommand.
pub fn run_user(command: UserCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        match command {
            UserCommand::Create { email, data } => {
                let (meta, _) = stores::open(&data.data_dir).await.map_err(|e| e.to_string())?;
                let key = users::create_user(meta.as_ref(), &email).await.map_err(|e| format!("{email}: {e}"))?;
                println!("AWS_ACCESS_KEY_ID={}", key.id);
                println!("AWS_SECRET_ACCESS_KEY={}", key.secret);
                Ok(())
            }
        }
    })
}

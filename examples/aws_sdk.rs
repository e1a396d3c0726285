//! aws-sdk-s3 (Rust) against the gateway: `cargo run --release --ignore-rust-version -p s3ipfs-s3 --example aws_sdk`
//! with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `S3IPFS_ENDPOINT` (default
//! `http://127.0.0.1:9000`) set.

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("S3IPFS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    let credentials = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID")?,
        std::env::var("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "env",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);

    match s3.create_bucket().bucket("rust-example").send().await {
        Ok(_) => println!("created bucket rust-example"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
        Err(err) => return Err(err.into()),
    }
    s3.put_object()
        .bucket("rust-example")
        .key("hello.txt")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await?;
    let head = s3.head_object().bucket("rust-example").key("hello.txt").send().await?;
    let cid = head.metadata().and_then(|m| m.get("cid")).cloned().unwrap_or_default();
    println!("hello.txt: {} bytes, ETag {}, CID {cid}", head.content_length().unwrap_or(0), head.e_tag().unwrap_or(""));
    Ok(())
}

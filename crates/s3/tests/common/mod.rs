//! The in-process test environment: two users on memory stores, each with an aws-sdk-s3 client that calls the
//! service without sockets.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use s3ipfs_cid::Profile;
use s3ipfs_core::{AccessKey, Gateway, MemoryContent, MemoryMeta, MetaStore as _};
use s3ipfs_s3::{ApiOptions, build_service};

/// Two users' clients on one in-process service.
pub struct Env {
    pub alice: Client,
    pub bob: Client,
    pub service: s3s::service::S3Service,
}

pub fn client(service: &s3s::service::S3Service, id: &str, secret: &str) -> Client {
    client_at(service, id, secret, "http://localhost:8014", true)
}

pub fn client_at(
    service: &s3s::service::S3Service,
    id: &str,
    secret: &str,
    endpoint: &str,
    path_style: bool,
) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .http_client(s3s_aws::Client::from(service.clone()))
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}

pub async fn env() -> Env {
    env_with(ApiOptions::default()).await
}

pub async fn env_with(options: ApiOptions) -> Env {
    let meta = Arc::new(MemoryMeta::new());
    for (email, id) in [("alice@example.com", "AKALICE0000000000001"), ("bob@example.com", "AKBOB000000000000001")] {
        let user = meta.create_user(email).await.expect("user");
        meta.add_access_key(&AccessKey { id: id.into(), secret: format!("{id}-secret"), user: user.id })
            .await
            .expect("key");
    }
    let gateway = Gateway::new(meta, Arc::new(MemoryContent::new()), Profile::KUBO_V1);
    let service = build_service(gateway, &options).expect("service");
    Env {
        alice: client(&service, "AKALICE0000000000001", "AKALICE0000000000001-secret"),
        bob: client(&service, "AKBOB000000000000001", "AKBOB000000000000001-secret"),
        service,
    }
}

pub fn code<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    err.as_service_error().and_then(|e| e.code()).map(str::to_owned).unwrap_or_else(|| format!("{err:?}"))
}

pub fn status<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

pub async fn body_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.expect("body").into_bytes().to_vec()
}

"""Native TLS: clients over HTTPS, where the SDKs stream bodies with checksum trailers."""
import base64
import hashlib
import subprocess
import zlib

import boto3
from botocore.config import Config
from conftest import ACCESS_KEY, SECRET_KEY, binary, client_env, require, self_signed_certificate


def https_client(gateway, **config):
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        verify=gateway.ca_bundle,
        config=Config(s3={"addressing_style": "path"}, **config),
    )


def test_boto3_over_https_uses_checksum_trailers_that_the_gateway_verifies(gateway_tls):
    assert gateway_tls.endpoint.startswith("https://")
    s3 = https_client(gateway_tls)
    s3.create_bucket(Bucket="secure")
    data = hashlib.sha256(b"tls").digest() * 50_000
    out = s3.put_object(Bucket="secure", Key="blob", Body=data)
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert out["ChecksumCRC32"] == crc32, "the trailer's CRC32 was computed, compared and echoed"
    head = s3.head_object(Bucket="secure", Key="blob", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32 and "ContentEncoding" not in head
    assert s3.get_object(Bucket="secure", Key="blob")["Body"].read() == data
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="secure")
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == ["blob"]


def test_boto3_presigned_get_and_put_over_https(gateway_tls):
    import ssl
    import urllib.request

    s3 = https_client(gateway_tls, signature_version="s3v4")
    s3.create_bucket(Bucket="presigned-tls")
    context = ssl.create_default_context(cafile=gateway_tls.ca_bundle)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "presigned-tls", "Key": "p"}, ExpiresIn=300)
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"presigned over tls", method="PUT"), context=context)
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned-tls", "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(get_url, context=context).read() == b"presigned over tls"


def test_aws_cli_over_https_with_a_ca_bundle(gateway_tls, tmp_path):
    env = client_env(tmp_path)
    aws = [require("aws"), "--endpoint-url", gateway_tls.endpoint, "--ca-bundle", gateway_tls.ca_bundle]
    (tmp_path / "f.txt").write_bytes(b"over tls")
    for args in (["s3", "mb", "s3://clitls"], ["s3", "cp", str(tmp_path / "f.txt"), "s3://clitls/f.txt"]):
        subprocess.run([*aws, *args], env=env, check=True, capture_output=True)
    listing = subprocess.run([*aws, "s3", "ls", "s3://clitls/"], env=env, check=True, capture_output=True, text=True)
    assert "f.txt" in listing.stdout


def test_an_unusable_certificate_stops_the_start_with_a_message(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    key.write_text("not a key")
    result = subprocess.run(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(cert), "--tls-key", str(key)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0 and "key.pem" in result.stderr

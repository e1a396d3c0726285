"""boto3 with its default settings (CRC32 checksums) against the real binary."""
import hashlib
import io
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY


def s3_client(gateway, **config):
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        verify=False,
        config=Config(**config) if config else None,
    )


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_every_shared_vector_put_returns_its_kubo_v1_cid(gateway, vector_inputs):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="vectors")
    checked = 0
    for path, size, profile, cid in vector_inputs:
        if not profile.startswith("kubo --cid-version=1"):
            continue
        with open(path, "rb") as body:
            out = s3.put_object(Bucket="vectors", Key=path.name, Body=body)
        assert out["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"] == cid, path.name
        head = s3.head_object(Bucket="vectors", Key=path.name)
        assert head["Metadata"]["cid"] == cid and head["ContentLength"] == size
        checked += 1
    assert checked == 14


def test_upload_download_list_copy_and_delete(gateway, tmp_path):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="boto")
    data = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB, below the multipart threshold
    s3.upload_fileobj(io.BytesIO(data), "boto", "big/blob.bin")
    out = io.BytesIO()
    s3.download_fileobj("boto", "big/blob.bin", out)
    assert out.getvalue() == data
    for i in range(25):
        s3.put_object(Bucket="boto", Key=f"many/{i:03}", Body=b"x" * i)
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="boto", Prefix="many/", PaginationConfig={"PageSize": 10}))
    assert [len(p["Contents"]) for p in pages] == [10, 10, 5]
    s3.copy_object(Bucket="boto", Key="copy.bin", CopySource={"Bucket": "boto", "Key": "big/blob.bin"})
    assert s3.get_object(Bucket="boto", Key="copy.bin")["Body"].read() == data
    deleted = s3.delete_objects(Bucket="boto", Delete={"Objects": [{"Key": f"many/{i:03}"} for i in range(25)]})
    assert len(deleted["Deleted"]) == 25
    assert s3.list_objects_v2(Bucket="boto", Prefix="many/")["KeyCount"] == 0


def test_wrong_checksums_are_bad_digest_and_leave_nothing(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="digest")
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket="digest", Key="k", Body=b"data", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert error_code(bad) == "BadDigest"
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket="digest", Key="k", Body=b"data", ChecksumCRC32="AAAAAA==")
    assert error_code(bad) == "BadDigest"
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket="digest", Key="k")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    ok = s3.put_object(Bucket="digest", Key="k", Body=b"hello world")
    assert ok["ChecksumCRC32"] == "DUoRhQ==", "boto3's default CRC32 is verified and echoed"


def test_ranges_conditions_and_tenancy(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="ranges")
    s3.put_object(Bucket="ranges", Key="r", Body=bytes(range(256)) * 4)
    part = s3.get_object(Bucket="ranges", Key="r", Range="bytes=10-19")
    assert part["ContentRange"] == "bytes 10-19/1024" and part["Body"].read() == bytes(range(10, 20))
    with pytest.raises(ClientError) as invalid:
        s3.get_object(Bucket="ranges", Key="r", Range="bytes=5000-")
    assert error_code(invalid) == "InvalidRange"
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket="ranges", Key="r", IfMatch='"0000"')
    assert error_code(failed) == "PreconditionFailed"
    anonymous = urllib.request.Request(f"{gateway.endpoint}/ranges/r")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(anonymous)
    assert denied.value.code == 403


def test_presigned_get_and_put_with_sigv4(gateway):
    s3 = s3_client(gateway, signature_version="s3v4")
    s3.create_bucket(Bucket="presigned")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "presigned", "Key": "p"}, ExpiresIn=300)
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"via presigned put", method="PUT"))
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(get_url).read() == b"via presigned put"


def test_presigned_get_with_boto3_defaults_when_sigv2_is_allowed(gateway_sigv2):
    s3 = s3_client(gateway_sigv2)
    s3.create_bucket(Bucket="legacy")
    s3.put_object(Bucket="legacy", Key="p", Body=b"legacy presign")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "legacy", "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"legacy presign"

"""Multipart uploads through real clients: aws-cli v1/v2, boto3 (HTTP and HTTPS), rclone, s3cmd; restarts, expiry, 5 GiB."""
import base64
import hashlib
import io
import os
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import urlparse

import botocore.exceptions
import pytest
from conftest import ACCESS_KEY, SECRET_KEY, Gateway, client_env, content_objects, require
from test_boto3 import s3_client
from test_tls import https_client

MIB = 1024 * 1024


def write_random(path, size):
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for i in range(size // MIB):
            chunk = block[i % 13 :] + block[: i % 13]
            out.write(chunk)
            digest.update(chunk)
        tail = block[: size % MIB]
        out.write(tail)
        digest.update(tail)
    return digest.hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cid_of(s3, bucket, key):
    return s3.head_object(Bucket=bucket, Key=key)["Metadata"]["cid"]


@pytest.mark.parametrize("aws_exe", ["aws", "/usr/bin/aws"], ids=["aws-cli-v1", "aws-cli-v2"])
def test_aws_cli_cp_of_40_mib_is_multipart_and_round_trips(gateway, tmp_path, aws_exe):
    exe = require(aws_exe)
    env = client_env(tmp_path)
    src = tmp_path / "big.bin"
    digest = write_random(src, 40 * MIB)
    aws = [exe, "--endpoint-url", gateway.endpoint]
    subprocess.run([*aws, "s3", "mb", "s3://mpart"], env=env, check=True, capture_output=True)
    subprocess.run([*aws, "s3", "cp", str(src), "s3://mpart/big.bin"], env=env, check=True, capture_output=True)
    s3 = s3_client(gateway)
    assert s3.head_object(Bucket="mpart", Key="big.bin")["ETag"].endswith('-5"'), "8 MiB parts: 5 of them"
    subprocess.run([*aws, "s3api", "put-object", "--bucket", "mpart", "--key", "single.bin", "--body", str(src)], env=env, check=True, capture_output=True)
    assert cid_of(s3, "mpart", "big.bin") == cid_of(s3, "mpart", "single.bin"), "multipart CID = single-PUT CID"
    back = tmp_path / "back.bin"
    subprocess.run([*aws, "s3", "cp", "s3://mpart/big.bin", str(back)], env=env, check=True, capture_output=True)
    assert sha256_file(back) == digest


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_boto3_upload_fileobj_of_50_mib(request, secure):
    gateway = request.getfixturevalue("gateway_tls" if secure else "gateway")
    s3 = https_client(gateway) if secure else s3_client(gateway)
    s3.create_bucket(Bucket="boto-mp")
    data = os.urandom(MIB) * 50
    s3.upload_fileobj(io.BytesIO(data), "boto-mp", "fifty.bin")
    head = s3.head_object(Bucket="boto-mp", Key="fifty.bin")
    assert head["ContentLength"] == 50 * MIB and head["ETag"].endswith('-7"')
    out = io.BytesIO()
    s3.download_fileobj("boto-mp", "fifty.bin", out)
    assert out.getvalue() == data
    s3.put_object(Bucket="boto-mp", Key="single.bin", Body=data)
    assert cid_of(s3, "boto-mp", "fifty.bin") == cid_of(s3, "boto-mp", "single.bin")
    # boto3 names CRC32 at CreateMultipartUpload: the object's checksum is S3's composite of the 8 MiB parts' CRCs.
    part_crcs = b"".join(crc32_bytes(data[i : i + 8 * MIB]) for i in range(0, len(data), 8 * MIB))
    head = s3.head_object(Bucket="boto-mp", Key="fifty.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64(crc32_bytes(part_crcs)) + "-7"
    assert head["ChecksumType"] == "COMPOSITE"
    # Parts stay addressable: the last of the seven is the 2 MiB tail.
    part = s3.get_object(Bucket="boto-mp", Key="fifty.bin", PartNumber=7)
    assert (part["PartsCount"], part["ContentLength"], part["ResponseMetadata"]["HTTPStatusCode"]) == (7, 2 * MIB, 206)
    assert part["Body"].read() == data[48 * MIB :]


def crc32_bytes(data):
    return zlib.crc32(data).to_bytes(4, "big")


def b64(raw):
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_boto3_full_object_checksum_is_verified_and_kept(request, secure):
    gateway = request.getfixturevalue("gateway_tls" if secure else "gateway")
    s3 = https_client(gateway) if secure else s3_client(gateway)
    s3.create_bucket(Bucket="boto-full")
    data = os.urandom(MIB) * 12
    whole = b64(crc32_bytes(data))
    # A caller-supplied checksum makes s3transfer ask for FULL_OBJECT and send it with CompleteMultipartUpload.
    with pytest.raises(botocore.exceptions.ClientError, match="BadDigest"):
        s3.upload_fileobj(io.BytesIO(data), "boto-full", "bad.bin", ExtraArgs={"ChecksumCRC32": b64(b"\0\0\0\0")})
    assert "Contents" not in s3.list_objects_v2(Bucket="boto-full"), "a refused Complete leaves nothing visible"
    s3.upload_fileobj(io.BytesIO(data), "boto-full", "good.bin", ExtraArgs={"ChecksumCRC32": whole})
    head = s3.head_object(Bucket="boto-full", Key="good.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"], head["ETag"][-3:]) == (whole, "FULL_OBJECT", '-2"')
    # botocore checks a full-object CRC32 against the body it reads.
    got = s3.get_object(Bucket="boto-full", Key="good.bin", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == whole and got["Body"].read() == data


def test_rclone_above_the_upload_cutoff_with_server_side_copy_and_move(gateway, tmp_path):
    exe = require("rclone")
    env = client_env(tmp_path)
    env.update(
        RCLONE_CONFIG_GW_TYPE="s3", RCLONE_CONFIG_GW_PROVIDER="Other", RCLONE_CONFIG_GW_ENDPOINT=gateway.endpoint,
        RCLONE_CONFIG_GW_ACCESS_KEY_ID=ACCESS_KEY, RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_GW_REGION="us-east-1", RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
    )
    src = tmp_path / "src"
    src.mkdir()
    write_random(src / "large.bin", 23 * MIB)
    run = lambda *args: subprocess.run([exe, *args], env=env, check=True, capture_output=True, text=True)
    run("mkdir", "gw:rc-mp")
    run("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(src), "gw:rc-mp/in")
    run("check", str(src), "gw:rc-mp/in")
    run("copyto", "gw:rc-mp/in/large.bin", "gw:rc-mp/copied.bin")
    run("moveto", "gw:rc-mp/copied.bin", "gw:rc-mp/moved.bin")
    names = run("lsf", "-R", "gw:rc-mp").stdout.split()
    assert "moved.bin" in names and "copied.bin" not in names
    back = tmp_path / "back"
    run("copyto", "gw:rc-mp/moved.bin", str(back / "large.bin"))
    assert sha256_file(back / "large.bin") == sha256_file(src / "large.bin")
    run("purge", "gw:rc-mp")


def test_s3cmd_multipart_put(gateway, tmp_path):
    exe = require("s3cmd")
    host = urlparse(gateway.endpoint).netloc
    config = tmp_path / "s3cfg"
    config.write_text(
        f"[default]\naccess_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\nhost_base = {host}\nhost_bucket = {host}\n"
        "bucket_location = us-east-1\nuse_https = False\nsignature_v2 = False\n"
    )
    env = client_env(tmp_path)
    run = lambda *args: subprocess.run([exe, "-c", str(config), *args], env=env, check=True, capture_output=True, text=True)
    src = tmp_path / "twelve.bin"
    digest = write_random(src, 12 * MIB)
    run("mb", "s3://s3cmd-mp")
    run("put", "--multipart-chunk-size-mb=5", str(src), "s3://s3cmd-mp/twelve.bin")
    back = tmp_path / "back.bin"
    run("get", "s3://s3cmd-mp/twelve.bin", str(back))
    assert sha256_file(back) == digest
    etag = s3_client(gateway).head_object(Bucket="s3cmd-mp", Key="twelve.bin")["ETag"]
    assert etag.endswith('-3"')


def test_a_restart_mid_upload_loses_no_part(tmp_path):
    data_dir = tmp_path / "data"
    first = Gateway(data_dir)
    s3 = s3_client(first)
    s3.create_bucket(Bucket="restart")
    upload = s3.create_multipart_upload(Bucket="restart", Key="k")["UploadId"]
    part1 = os.urandom(5 * MIB)
    etag1 = s3.upload_part(Bucket="restart", Key="k", UploadId=upload, PartNumber=1, Body=part1)["ETag"]
    first.proc.kill()
    first.proc.wait()
    second = Gateway(data_dir)
    try:
        s3 = s3_client(second)
        assert [p["PartNumber"] for p in s3.list_parts(Bucket="restart", Key="k", UploadId=upload)["Parts"]] == [1]
        part2 = b"tail"
        etag2 = s3.upload_part(Bucket="restart", Key="k", UploadId=upload, PartNumber=2, Body=part2)["ETag"]
        s3.complete_multipart_upload(
            Bucket="restart", Key="k", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]},
        )
        assert s3.get_object(Bucket="restart", Key="k")["Body"].read() == part1 + part2
    finally:
        second.stop()


def test_abandoned_uploads_expire_and_free_their_parts(tmp_path):
    # Garbage collection frees the parts' content once unreferenced for its grace period (0 here).
    gateway = Gateway(tmp_path / "data", ["--multipart-expiry-secs", "2", "--gc-grace-secs", "0", "--gc-interval-secs", "1"])
    try:
        s3 = s3_client(gateway)
        s3.create_bucket(Bucket="expiry")
        upload = s3.create_multipart_upload(Bucket="expiry", Key="k")["UploadId"]
        s3.upload_part(Bucket="expiry", Key="k", UploadId=upload, PartNumber=1, Body=os.urandom(MIB))
        objects = content_objects(tmp_path / "data")
        assert any(p.is_file() for p in objects.rglob("*")), "the part is stored"
        deadline = time.time() + 15
        while s3.list_multipart_uploads(Bucket="expiry").get("Uploads") and time.time() < deadline:
            time.sleep(0.5)
        assert not s3.list_multipart_uploads(Bucket="expiry").get("Uploads")
        while any(p.is_file() for p in objects.rglob("*")) and time.time() < deadline + 5:
            time.sleep(0.2)
        assert not any(p.is_file() for p in objects.rglob("*")), "the expired part's content is freed"
    finally:
        gateway.stop()


def test_a_5_gib_multipart_upload_through_aws_cli_stays_under_256_mib_rss(gateway, tmp_path):
    exe = require("aws")
    env = client_env(tmp_path)
    src = tmp_path / "five.bin"
    digest = write_random(src, 5 * 1024 * MIB)
    aws = [exe, "--endpoint-url", gateway.endpoint]
    subprocess.run([*aws, "s3", "mb", "s3://huge"], env=env, check=True, capture_output=True)
    subprocess.run([*aws, "s3", "cp", str(src), "s3://huge/five.bin"], env=env, check=True, capture_output=True)
    src.unlink()
    peak = gateway.peak_rss_kib()
    s3 = s3_client(gateway)
    head = s3.head_object(Bucket="huge", Key="five.bin")
    assert head["ContentLength"] == 5 * 1024 * MIB
    body = s3.get_object(Bucket="huge", Key="five.bin")["Body"]
    back = hashlib.sha256()
    for chunk in body.iter_chunks(MIB):
        back.update(chunk)
    assert back.hexdigest() == digest
    print(f"gateway peak RSS over a 5 GiB multipart upload: {peak / 1024:.1f} MiB")
    assert 0 < peak < 256 * 1024

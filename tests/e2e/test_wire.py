"""Wire formats the SDKs and backup tools use, built by hand: aws-chunked with checksum trailers and signed chunks;
and a second user made with `s3ipfs user create`."""
import base64
import hashlib
import hmac
import http.client
import subprocess
import zlib
from urllib.parse import urlparse

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import SECRET_KEY, binary, sign
from test_boto3 import s3_client

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def send(endpoint, key, headers, body):
    """Signs `headers` for PUT /wire/key with SigV4 and sends `body` as is; returns (status, response body, auth)."""
    url = f"{endpoint}/wire/{key}"
    request = sign(AWSRequest(method="PUT", url=url, headers=headers), headers["x-amz-content-sha256"])
    target = urlparse(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    conn.request("PUT", target.path, body=body, headers={**dict(request.headers.items()), "Content-Length": str(len(body))})
    response = conn.getresponse()
    return response.status, response.read().decode(), request.headers


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def trailer_body(data, checksum):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()


def trailer_headers(data):
    return {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }


def test_an_unsigned_payload_with_a_checksum_trailer_is_verified(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="wire")
    data = b"streamed with a trailer " * 1000
    status, body, _ = send(gateway.endpoint, "good", trailer_headers(data), trailer_body(data, crc32_b64(data)))
    assert status == 200, body
    head = s3.head_object(Bucket="wire", Key="good", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data) and head["ChecksumCRC32"] == crc32_b64(data)
    assert "ContentEncoding" not in head, "aws-chunked is a transfer detail, not stored"
    assert s3.get_object(Bucket="wire", Key="good")["Body"].read() == data

    status, body, _ = send(gateway.endpoint, "bad", trailer_headers(data), trailer_body(data, crc32_b64(b"other")))
    assert status == 400 and "BadDigest" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket="wire", Key="bad")


def signing_key(date):
    key = hmac.new(f"AWS4{SECRET_KEY}".encode(), date.encode(), hashlib.sha256).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_chunks(data, auth_headers, chunk_size, tamper=False):
    """The STREAMING-AWS4-HMAC-SHA256-PAYLOAD body: every chunk signed, chained from the request's signature."""
    amz_date = auth_headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    previous = auth_headers["Authorization"].rsplit("Signature=", 1)[1]
    key = signing_key(amz_date[:8])
    out = b""
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256, hashlib.sha256(piece).hexdigest()]
        )
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if tamper and piece:
            signature = "0" * 64
        out += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + piece + b"\r\n"
        previous = signature
    return out


def chunked_size(data, chunk_size):
    sizes = [len(data[i : i + chunk_size]) for i in range(0, len(data), chunk_size)] + [0]
    return sum(len(f"{n:x};chunk-signature=") + 64 + 2 + n + 2 for n in sizes)


@pytest.mark.parametrize("tamper", [False, True])
def test_signed_aws_chunked_uploads_like_restic_sends(gateway, tamper):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="wire")
    data = bytes(range(256)) * 300
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "Content-Length": str(chunked_size(data, 32 * 1024)),
    }
    request = sign(AWSRequest(method="PUT", url=f"{gateway.endpoint}/wire/signed", headers=headers), headers["x-amz-content-sha256"])
    body = signed_chunks(data, request.headers, 32 * 1024, tamper=tamper)
    target = urlparse(gateway.endpoint)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    conn.request("PUT", "/wire/signed", body=body, headers=dict(request.headers.items()))
    response = conn.getresponse()
    text = response.read().decode()
    if tamper:
        assert response.status == 403 and "SignatureDoesNotMatch" in text, text
        with pytest.raises(ClientError):
            s3.head_object(Bucket="wire", Key="signed")
    else:
        assert response.status == 200, text
        assert s3.get_object(Bucket="wire", Key="signed")["Body"].read() == data


def test_user_create_makes_a_second_tenant(gateway):
    alice = s3_client(gateway)
    alice.create_bucket(Bucket="alices")
    alice.put_object(Bucket="alices", Key="secret.txt", Body=b"alice only")
    out = subprocess.run(
        [binary(), "user", "create", "--email", "bob@example.com", "--data-dir", str(gateway.data_dir)],
        env=gateway.admin_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    keys = dict(line.split("=", 1) for line in out.stdout.split())
    bob = s3_client(gateway)
    bob._request_signer._credentials = Credentials(keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])
    assert bob.list_buckets()["Buckets"] == []
    for call in (lambda: bob.get_object(Bucket="alices", Key="secret.txt"), lambda: bob.list_objects_v2(Bucket="alices")):
        with pytest.raises(ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    bob.create_bucket(Bucket="bobs")
    assert [b["Name"] for b in bob.list_buckets()["Buckets"]] == ["bobs"]
    again = subprocess.run(
        [binary(), "user", "create", "--email", "bob@example.com", "--data-dir", str(gateway.data_dir)],
        env=gateway.admin_env(), capture_output=True, text=True
    )
    assert again.returncode != 0 and "already registered" in again.stderr


def test_a_body_that_does_not_match_its_declared_sha256_is_refused(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="wire")
    declared = hashlib.sha256(b"what was signed").hexdigest()
    status, body, _ = send(gateway.endpoint, "swapped", {"x-amz-content-sha256": declared}, b"what was sent")
    assert status == 400 and "XAmzContentSHA256Mismatch" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket="wire", Key="swapped")

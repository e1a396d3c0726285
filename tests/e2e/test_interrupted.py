"""Interrupted uploads leave nothing visible: a client that disconnects, and a gateway killed mid-upload."""
import socket
import time
from urllib.parse import urlparse

import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from conftest import Gateway, sign
from test_boto3 import s3_client

DECLARED = 10 * 1024 * 1024


def start_partial_put(endpoint, bucket, key):
    """Sends a signed PUT declaring 10 MiB and only 1 MiB of body; returns the open socket."""
    url = f"{endpoint}/{bucket}/{key}"
    request = AWSRequest(method="PUT", url=url, headers={"Content-Length": str(DECLARED)})
    sign(request, "UNSIGNED-PAYLOAD")
    target = urlparse(url)
    sock = socket.create_connection((target.hostname, target.port))
    head = f"PUT {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items() if name.lower() != "host")
    sock.sendall(head.encode() + b"\r\n" + b"x" * (1024 * 1024))
    return sock


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def temp_files(gateway):
    return [p for p in (gateway.data_dir / "content" / "tmp").iterdir()]


def test_a_client_that_disconnects_mid_upload_leaves_nothing(gateway):
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="drops")
    sock = start_partial_put(gateway.endpoint, "drops", "half")
    time.sleep(0.5)
    sock.close()
    deadline = time.time() + 10
    while temp_files(gateway) and time.time() < deadline:
        time.sleep(0.1)
    assert temp_files(gateway) == [], "the partial upload's temp file is removed"
    assert_absent(s3, "drops", "half")
    s3.put_object(Bucket="drops", Key="after", Body=b"still works")
    assert s3.get_object(Bucket="drops", Key="after")["Body"].read() == b"still works"


def test_a_crash_mid_upload_leaves_nothing_after_restart(tmp_path):
    data_dir = tmp_path / "data"
    # A restart clears the crash's temp files at once only on the embedded store, which one process owns.
    first = Gateway(data_dir, embedded=True)
    s3 = s3_client(first)
    s3.create_bucket(Bucket="crash")
    s3.put_object(Bucket="crash", Key="kept", Body=b"acknowledged before the crash")
    sock = start_partial_put(first.endpoint, "crash", "torn")
    time.sleep(0.5)
    first.proc.kill()
    first.proc.wait()
    sock.close()
    assert temp_files(first), "the crash left a partial upload on disk"

    second = Gateway(data_dir, embedded=True)
    try:
        s3 = s3_client(second)
        with pytest.raises(ClientError):
            s3.head_object(Bucket="crash", Key="torn")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="crash")["Contents"]]
        assert keys == ["kept"]
        assert s3.get_object(Bucket="crash", Key="kept")["Body"].read() == b"acknowledged before the crash"
        assert temp_files(second) == [], "restart clears what the crash left"
    finally:
        second.stop()

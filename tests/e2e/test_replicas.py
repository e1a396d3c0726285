"""Several gateway processes on one PostgreSQL (and one content directory), used at once, as replicas behind a load
balancer are: every guarantee must hold across processes, not only inside one."""
import os
import signal
import socket
import subprocess
import threading
import time
from urllib.parse import urlparse

import boto3
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Gateway, binary, fresh_database_url, psql, redis_env, sign

FAST_JOBS = {"S3IPFS_HEARTBEAT_SECS": "1", "S3IPFS_CLEANUP_INTERVAL_SECS": "1"}


def client(gw):
    return boto3.client(
        "s3", endpoint_url=gw.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


@pytest.fixture
def replicas(tmp_path):
    """Two gateways on one fresh database and one Redis, sharing a data directory (the content store)."""
    url = fresh_database_url()
    env = {**FAST_JOBS, **redis_env(url)}
    first = Gateway(tmp_path / "data", database_url=url, env=env)
    second = Gateway(tmp_path / "data", database_url=url, env=env)
    yield first, second, url
    for gw in (first, second):
        if gw.proc.poll() is None:
            assert gw.stop() == 0


def test_concurrent_puts_and_deletes_through_both_keep_every_version_in_order(replicas):
    first, second, url = replicas
    client(first).create_bucket(Bucket="shared")
    client(first).put_bucket_versioning(Bucket="shared", VersioningConfiguration={"Status": "Enabled"})
    acknowledged = {}  # (worker) -> [(key, version id, is delete marker)] in acknowledgement order
    errors = []

    def worker(name, gw):
        s3, done = client(gw), []
        for i in range(12):
            key = f"k{i % 3}"
            try:
                if i % 4 == 3:
                    response = s3.delete_object(Bucket="shared", Key=key)
                    done.append((key, response["VersionId"], True))
                else:
                    response = s3.put_object(Bucket="shared", Key=key, Body=f"{name}-{i}".encode())
                    done.append((key, response["VersionId"], False))
            except Exception as err:  # noqa: BLE001 (reported below)
                errors.append(err)
        acknowledged[name] = done

    threads = [threading.Thread(target=worker, args=(f"w{n}", (first, second)[n % 2])) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    listed = client(second).list_object_versions(Bucket="shared")
    entries = [(v["Key"], v["VersionId"], False) for v in listed.get("Versions", [])]
    entries += [(m["Key"], m["VersionId"], True) for m in listed.get("DeleteMarkers", [])]
    assert len(entries) == 8 * 12
    assert set(entries) == {entry for done in acknowledged.values() for entry in done}, \
        "every acknowledged version is present, and nothing else"
    # The chain's order is its sequence numbers (s3s lists versions and delete markers in two runs, so the XML
    # cannot show it): unique per key, and each writer's versions in the order they were acknowledged.
    seq = {(key, vid): int(n) for key, vid, n in psql(url, "SELECT convert_from(key, 'UTF8'), version_id, seq FROM object_versions "
                                                            "WHERE state IN (1, 2)")}
    for key in ("k0", "k1", "k2"):
        numbers = [n for (k, _), n in seq.items() if k == key]
        assert len(numbers) == len(set(numbers)), f"{key}: sequence numbers are unique"
        for done in acknowledged.values():
            mine = [seq[(k, vid)] for k, vid, _ in done if k == key]
            assert mine == sorted(mine), f"{key}: a writer's versions are ordered as acknowledged"
    latest = {v["Key"]: v["VersionId"] for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])
              if v["IsLatest"]}
    for key, vid in latest.items():
        assert seq[(key, vid)] == max(n for (k, _), n in seq.items() if k == key), f"{key}: the latest is the newest"


def test_an_if_none_match_race_across_replicas_has_one_winner(replicas):
    first, second, _ = replicas
    client(first).create_bucket(Bucket="race")
    outcomes = []

    def put(gw, n):
        try:
            client(gw).put_object(Bucket="race", Key="once", Body=f"writer {n}".encode(), IfNoneMatch="*")
            outcomes.append(200)
        except ClientError as err:
            outcomes.append(err.response["ResponseMetadata"]["HTTPStatusCode"])

    threads = [threading.Thread(target=put, args=((first, second)[n % 2], n)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(200) == 1, outcomes
    assert set(outcomes) <= {200, 409, 412}, outcomes


class SlowPut:
    """A signed PUT on a raw socket whose body trickles in a byte every 0.2 s until `finish` sends the rest."""

    def __init__(self, gw, bucket, key, size=64):
        self.body = os.urandom(size)
        self.sent = 0
        self.stop = threading.Event()
        request = AWSRequest(method="PUT", url=f"{gw.endpoint}/{bucket}/{key}", headers={"Content-Length": str(size)})
        sign(request, "UNSIGNED-PAYLOAD")
        target = urlparse(gw.endpoint)
        self.sock = socket.create_connection((target.hostname, target.port), timeout=30)
        head = f"PUT /{bucket}/{key} HTTP/1.1\r\nHost: {target.hostname}:{target.port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
        self.sock.sendall((head + "\r\n").encode())
        self.thread = threading.Thread(target=self._trickle)
        self.thread.start()

    def _trickle(self):
        while not self.stop.is_set() and self.sent < len(self.body) - 1:
            try:
                self.sock.sendall(self.body[self.sent:self.sent + 1])
            except OSError:
                return
            self.sent += 1
            time.sleep(0.2)

    def finish(self):
        """Sends the rest of the body; returns the response's status line."""
        self.stop.set()
        self.thread.join()
        self.sock.sendall(self.body[self.sent:])
        status = self.sock.makefile("rb").readline().decode()
        self.sock.close()
        return status

    def abandon(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def states(url, key):
    """States of the rows of `key` (0 pending, 1 committed, 3 aborted)."""
    return [row[0] for row in psql(url, f"SELECT state FROM object_versions WHERE key = '{key}' ORDER BY id")]


def wait_until(predicate, seconds):
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.1)
    return predicate()


def test_killing_one_replica_mid_upload_aborts_only_its_own_uploads(replicas, tmp_path):
    first, second, url = replicas
    client(first).create_bucket(Bucket="uploads")
    survivor = SlowPut(second, "uploads", "survivor")
    orphan = SlowPut(first, "uploads", "orphan")
    assert wait_until(lambda: states(url, "survivor") == ["0"] and states(url, "orphan") == ["0"], 10), \
        "both uploads began"
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    orphan.abandon()
    # A replica that starts now must not touch the live upload either.
    third = Gateway(tmp_path / "data", database_url=url, env={**FAST_JOBS, **redis_env(url)})
    try:
        assert wait_until(lambda: states(url, "orphan") == ["3"], 15), \
            "the dead replica's upload is aborted once its heartbeat stops"
        assert states(url, "survivor") == ["0"], "the live replica's upload is untouched"
        assert " 200 " in survivor.finish(), "the live upload completes"
        assert client(third).get_object(Bucket="uploads", Key="survivor")["Body"].read() == survivor.body
    finally:
        assert third.stop() == 0


def test_a_client_that_disconnects_aborts_its_pending_version_at_once(replicas):
    first, _, url = replicas
    client(first).create_bucket(Bucket="gone")
    upload = SlowPut(first, "gone", "half")
    assert wait_until(lambda: states(url, "half") == ["0"], 10), "the upload began"
    upload.abandon()
    assert wait_until(lambda: states(url, "half") == ["3"], 5), "aborted when the client went away, not at a restart"


def test_admin_commands_work_against_a_live_postgres_deployment(replicas, tmp_path):
    first, _, url = replicas
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3IPFS_")}
    env["DATABASE_URL"] = url
    env["S3IPFS_DATA_DIR"] = str(tmp_path / "data")
    created = subprocess.run([binary(), "user", "create", "--email", "ops@example.com"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    keys = dict(line.split("=", 1) for line in created.stdout.split())
    s3 = boto3.client("s3", endpoint_url=first.endpoint, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    s3.create_bucket(Bucket="ops")
    migrated = subprocess.run([binary(), "migrate"], env=env, capture_output=True, text=True, timeout=30)
    assert migrated.returncode == 0 and "up to date" in migrated.stdout, migrated.stderr
    gc = subprocess.run([binary(), "gc", "--dry-run"], env=env, capture_output=True, text=True, timeout=30)
    assert gc.returncode == 0 and "would delete 0 content objects" in gc.stdout, gc.stdout + gc.stderr
    checked = subprocess.run([binary(), "config", "check"], env=env, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert url in checked.stdout, "the effective configuration names the database"
    env["S3IPFS_DATABASE_POOL_SIZE"] = "0"
    refused = subprocess.run([binary(), "config", "check"], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "meta.pool_size" in refused.stderr, refused.stderr

"""The caches end to end: a hot object fetched from the content backend once however many ask at once and then
served from memory or disk (even with the backend down), two replicas on one PostgreSQL and one Redis reading each
other's writes at once and seeing a revoked key and a versioning switch within the bound, and Redis killed under a
mixed load failing no request."""
import hashlib
import os
import shutil
import statistics
import subprocess
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, ROOT, SECRET_KEY, FilebaseStandIn, Gateway, binary, fresh_database_url, redis_env


def client(gw, key=ACCESS_KEY, secret=SECRET_KEY):
    return boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, read_timeout=60,
                                                               max_pool_connections=32))


class RedisServer:
    """A Redis of this test's own (tests/services/redis-server.sh), which it can kill and bring back on its port."""

    def __init__(self, port=None):
        env = {**os.environ, **({"REDIS_PORT": str(port)} if port else {})}
        self.proc = subprocess.Popen(["bash", str(ROOT / "tests" / "services" / "redis-server.sh")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("redis://"):
            pytest.fail("Redis did not start")
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


@pytest.fixture
def standin(tmp_path):
    stand_in = FilebaseStandIn(tmp_path / "standin", proxy=True)
    yield stand_in
    stand_in.stop()
    shutil.rmtree(stand_in.data_dir, ignore_errors=True)


def test_a_hot_object_reaches_the_backend_once_and_is_then_served_from_memory_and_disk(standin, tmp_path):
    gw = Gateway(tmp_path / "data", env={**standin.gateway_env(), "S3IPFS_CACHE_BACKEND": "memory"})
    try:
        s3 = client(gw)
        s3.create_bucket(Bucket="hot")
        small, large = os.urandom(4096), os.urandom(10 * 1024 * 1024)
        s3.put_object(Bucket="hot", Key="small", Body=small)
        s3.put_object(Bucket="hot", Key="large", Body=large)
        for key, body in (("small", small), ("large", large)):
            standin.proxy.reset()
            results = []

            def get(key=key):
                results.append(hashlib.sha256(s3.get_object(Bucket="hot", Key=key)["Body"].read()).hexdigest())

            threads = [threading.Thread(target=get) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert results == [hashlib.sha256(body).hexdigest()] * 16
            for _ in range(5):
                assert s3.get_object(Bucket="hot", Key=key)["Body"].read() == body
            assert standin.proxy.methods["GET"] == 1, f"{key}: 21 GETs, {standin.proxy.methods['GET']} backend reads"
        ranged = s3.get_object(Bucket="hot", Key="large", Range="bytes=5000000-5000099")["Body"].read()
        assert ranged == large[5_000_000:5_000_100]
        cached = [p.name for p in (gw.data_dir / "cache").glob("*/*") if p.name != "lock"]
        assert len(cached) == 1 and not cached[0].startswith("tmp-"), f"the large object is in the disk cache: {cached}"
        # With the backend gone, hot objects are still served.
        standin.gateway.stop()
        assert s3.get_object(Bucket="hot", Key="small")["Body"].read() == small
        assert s3.get_object(Bucket="hot", Key="large")["Body"].read() == large
        standin.start()
    finally:
        gw.stop()


@pytest.fixture
def pair(tmp_path):
    """Two replicas on one fresh database and one Redis of the test's own, sharing the content directory."""
    redis = RedisServer()
    url = fresh_database_url()
    env = {**redis_env(url, redis.url), "S3IPFS_CACHE_META_TTL_SECS": "5"}
    one = Gateway(tmp_path / "data", database_url=url, env=env)
    two = Gateway(tmp_path / "data", database_url=url, env=env)
    yield one, two, redis
    for gw in (one, two):
        gw.stop()
    if redis.proc.poll() is None:
        redis.stop()


def test_replicas_read_each_others_writes_at_once_and_see_revocations_within_the_bound(pair, tmp_path):
    one, two, _ = pair
    a, b = client(one), client(two)
    a.create_bucket(Bucket="rwtest")
    for i in range(100):
        body = f"version {i}".encode()
        (a if i % 2 else b).put_object(Bucket="rwtest", Key="k", Body=body)
        assert (b if i % 2 else a).get_object(Bucket="rwtest", Key="k")["Body"].read() == body, f"round {i}"
        assert (b if i % 2 else a).head_object(Bucket="rwtest", Key="k")["ContentLength"] == len(body)

    created = subprocess.run([binary(), "user", "create", "--email", "cache@example.com"], env=one.admin_env(),
                             capture_output=True, text=True, check=True).stdout
    pairs = dict(line.split("=", 1) for line in created.split())
    key, secret = pairs["AWS_ACCESS_KEY_ID"], pairs["AWS_SECRET_ACCESS_KEY"]
    user_on_two = client(two, key, secret)
    user_on_two.create_bucket(Bucket="mine")
    user_on_two.list_objects_v2(Bucket="mine")  # the key is now cached on `two`
    subprocess.run([binary(), "user", "revoke-key", key], env=one.admin_env(), check=True, capture_output=True)
    start = time.monotonic()
    while True:
        try:
            user_on_two.list_objects_v2(Bucket="mine")
        except ClientError as err:
            assert err.response["Error"]["Code"] == "InvalidAccessKeyId"
            break
        assert time.monotonic() - start < 5, "the revoked key still signs after the 5 s bound"
        time.sleep(0.01)
    print(f"revoked key refused by the other replica after {time.monotonic() - start:.3f} s")

    b.put_object(Bucket="rwtest", Key="v", Body=b"before")  # the bucket is cached on `two`, unversioned
    a.put_bucket_versioning(Bucket="rwtest", VersioningConfiguration={"Status": "Enabled"})
    start = time.monotonic()
    while b.put_object(Bucket="rwtest", Key="v", Body=b"after").get("VersionId") in (None, "null"):
        assert time.monotonic() - start < 5, "versioning still off on the other replica after the 5 s bound"
        time.sleep(0.01)
    print(f"versioning switched on the other replica after {time.monotonic() - start:.3f} s")


def test_redis_killed_under_a_mixed_load_fails_no_request(pair):
    one, two, redis = pair
    a, b = client(one), client(two)
    a.create_bucket(Bucket="mixed")
    a.put_object(Bucket="mixed", Key="hot", Body=b"h" * 4096)
    errors, latencies, stop = [], [], threading.Event()

    def worker(n):
        writer, reader = (a, b) if n % 2 else (b, a)
        i = 0
        while not stop.is_set():
            key, body = f"w{n}-{i % 3}", f"{n}-{i}".encode()
            try:
                writer.put_object(Bucket="mixed", Key=key, Body=body)
                got = reader.get_object(Bucket="mixed", Key=key)["Body"].read()
                if got != body:
                    errors.append(f"{key}: read {got!r} after writing {body!r} at {time.monotonic():.3f}")
                started = time.monotonic()
                reader.get_object(Bucket="mixed", Key="hot")["Body"].read()
                latencies.append((started, time.monotonic() - started))
            except Exception as err:  # noqa: BLE001 (every failure is the test's failure)
                errors.append(repr(err))
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    killed_at = time.monotonic()
    subprocess.run(["pkill", "-9", "-f", f"redis-server 127.0.0.1:{redis.port}"], check=False)
    time.sleep(2)
    back_at = time.monotonic()
    back = RedisServer(redis.port)
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    back.stop()
    assert not errors, (f"killed at {killed_at:.3f}, back at {back_at:.3f}", errors[:5])

    def median_ms(lo, hi):
        window = [d for t, d in latencies if lo <= t < hi]
        return statistics.median(window) * 1000, len(window)

    before, down, after = median_ms(0, killed_at), median_ms(killed_at, back_at), median_ms(back_at + 1, 1e18)
    print(f"hot GET median: before {before[0]:.2f} ms ({before[1]}), Redis down {down[0]:.2f} ms ({down[1]}), "
          f"back {after[0]:.2f} ms ({after[1]})")
    assert down[1] > 0 and after[1] > 0, "requests ran while Redis was down and after it came back"
    assert after[0] < before[0] * 2 + 5, "latency returned to the cached level"


@pytest.mark.parametrize("setup", ["embedded", "replicas on redis"])
def test_concurrent_overwrites_never_read_older_than_the_last_acknowledged_put(setup, tmp_path):
    """Writers overwrite one key while readers GET it; every read must return the newest version acknowledged before
    the read began, or a newer one (the chain's order, from ListObjectVersions, decides what is newer)."""
    redis, gateways = None, []
    if setup == "embedded":
        gateways = [Gateway(tmp_path / "data", embedded=True)]
    else:
        redis = RedisServer()
        url = fresh_database_url()
        env = redis_env(url, redis.url)
        gateways = [Gateway(tmp_path / "data", database_url=url, env=env) for _ in range(2)]
    try:
        clients = [client(gw) for gw in gateways]
        clients[0].create_bucket(Bucket="race")
        clients[0].put_bucket_versioning(Bucket="race", VersioningConfiguration={"Status": "Enabled"})
        lock, acked, reads, errors, stop = threading.Lock(), [], [], [], threading.Event()

        def writer(n):
            s3, i = clients[n % len(clients)], 0
            while not stop.is_set():
                try:
                    version = s3.put_object(Bucket="race", Key="k", Body=f"{n}-{i}".encode())["VersionId"]
                    with lock:
                        acked.append((time.monotonic(), version))
                except Exception as err:  # noqa: BLE001
                    errors.append(repr(err))
                i += 1

        def reader(n):
            s3 = clients[(n + 1) % len(clients)]
            while not stop.is_set():
                started = time.monotonic()
                try:
                    reads.append((started, s3.get_object(Bucket="race", Key="k")["VersionId"]))
                except ClientError as err:
                    if err.response["Error"]["Code"] != "NoSuchKey":
                        errors.append(repr(err))
                except Exception as err:  # noqa: BLE001
                    errors.append(repr(err))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=reader, args=(n,)) for n in range(5)]
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
        order = {}
        paginator = clients[0].get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket="race"):
            for v in page.get("Versions", []):
                order[v["VersionId"]] = len(order)  # 0 is the newest
        assert len(order) == len(acked)
        acked.sort()
        stale, j, newest = 0, 0, None
        for started, got in sorted(reads):
            while j < len(acked) and acked[j][0] < started:
                if newest is None or order[acked[j][1]] < order[newest]:
                    newest = acked[j][1]
                j += 1
            if newest is not None and order[got] > order[newest]:
                stale += 1
        print(f"{setup}: {len(acked)} writes, {len(reads)} reads, {stale} older than the last acknowledged write")
        assert len(reads) > 100 and len(acked) > 50
        assert stale == 0
    finally:
        for gw in gateways:
            gw.stop()
        if redis:
            redis.stop()

"""The Filebase content backend against its stand-in (a second `s3ipfs serve` with the `kubo-v0` profile) behind a
proxy that counts what crosses to it and injects faults: CIDs checked, uploads once per CID, multipart without
triple traffic, an outage turned into fast 503s and recovered from, a slow backend that does not slow metadata
requests, and garbage collection that deletes from the backend without ever losing a committed version's bytes.
"""
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, FilebaseStandIn, Gateway, binary, client_env, require


def s3(gateway, retries=1):
    return boto3.client("s3", endpoint_url=gateway.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(retries={"total_max_attempts": retries, "mode": "standard"},
                                      read_timeout=300))


@pytest.fixture
def standin(tmp_path):
    stand_in = FilebaseStandIn(tmp_path / "standin", proxy=True)
    yield stand_in
    stand_in.stop()
    shutil.rmtree(stand_in.data_dir, ignore_errors=True)


def on_filebase(standin, tmp_path, **settings):
    env = {**standin.gateway_env(), **{k: str(v) for k, v in settings.items()}}
    return Gateway(tmp_path / "data", env=env)


def cid_of(path, profile="kubo-v0"):
    out = subprocess.run([binary(), "cid", "--profile", profile, str(path)], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()[0]


def status_of(err):
    return err.response["ResponseMetadata"]["HTTPStatusCode"]


def spool_files(gateway):
    spool = gateway.data_dir / "spool"
    return [p for p in spool.iterdir()] if spool.exists() else []


@pytest.mark.parametrize("profile", ["kubo-v0", "kubo-v1"])
def test_objects_round_trip_under_the_cid_filebase_reports(standin, tmp_path, profile):
    gw = on_filebase(standin, tmp_path, S3IPFS_CID_PROFILE=profile)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="data")
        for size in (0, 1, 262_144, 3_000_000, 21_000_000):
            body = os.urandom(size)
            (tmp_path / "f").write_bytes(body)
            out = client.put_object(Bucket="data", Key=f"k{size}", Body=body)
            cid = out["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
            assert cid == cid_of(tmp_path / "f", profile)
            head = standin.client().head_object(Bucket="pins", Key=cid)
            assert head["Metadata"]["cid"] == cid, "Filebase's CID is the gateway's"
            assert client.get_object(Bucket="data", Key=f"k{size}")["Body"].read() == body
            if size > 10:
                part = client.get_object(Bucket="data", Key=f"k{size}", Range="bytes=3-9")["Body"].read()
                assert part == body[3:10]
        # A multipart upload: parts are staged locally, only the whole object crosses to the backend.
        body = os.urandom(17 * 1024 * 1024 + 5)
        (tmp_path / "mp").write_bytes(body)
        standin.proxy.reset()
        client.upload_file(str(tmp_path / "mp"), "data", "mp", Config=boto3.s3.transfer.TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
        cid = client.head_object(Bucket="data", Key="mp")["Metadata"]["cid"]
        assert cid == cid_of(tmp_path / "mp", profile), "a multipart object has a single PUT's CID"
        assert client.get_object(Bucket="data", Key="mp")["Body"].read() == body
        if profile == "kubo-v0":
            assert standin.proxy.put_bytes == len(body), "each byte crossed to the backend once"
        # HEAD answers from metadata: it works with the backend gone.
        standin.gateway.stop()
        assert client.head_object(Bucket="data", Key="mp")["ContentLength"] == len(body)
        assert not spool_files(gw), "no spool file is left behind"
    finally:
        gw.stop()


def test_a_client_car_imported_through_aws_cli_is_pinned_under_its_root(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        content = os.urandom(3_000_000)
        (tmp_path / "file").write_bytes(content)
        car = tmp_path / "file.car"
        out = subprocess.run([binary(), "cid", "--profile", "kubo-v1", "--car", str(car), str(tmp_path / "file")],
                             capture_output=True, text=True, check=True)
        root = out.stdout.split()[0]
        s3(gw).create_bucket(Bucket="cars")
        subprocess.run([require("aws"), "--endpoint-url", gw.endpoint, "s3", "cp", str(car), "s3://cars/file",
                        "--metadata", "import=car"], check=True, env=client_env(tmp_path), capture_output=True)
        head = s3(gw).head_object(Bucket="cars", Key="file")
        assert head["Metadata"]["cid"] == root and head["ContentLength"] == len(content)
        assert standin.client().head_object(Bucket="pins", Key=root)["Metadata"]["cid"] == root
        assert s3(gw).get_object(Bucket="cars", Key="file")["Body"].read() == content
    finally:
        gw.stop()


def test_identical_content_under_100_keys_is_uploaded_once(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="dup")
        body = os.urandom(300_000)
        cids = {client.put_object(Bucket="dup", Key=f"k{i}", Body=body)["ResponseMetadata"]["HTTPHeaders"]
                ["x-amz-meta-cid"] for i in range(100)}
        assert len(cids) == 1
        (cid,) = cids
        assert standin.proxy.puts[f"/pins/{cid}"] == 1, standin.proxy.puts
        assert sum(standin.proxy.puts.values()) == 1
    finally:
        gw.stop()


def test_a_backend_reporting_a_wrong_cid_fails_the_put_and_leaves_nothing(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="wrong")
        body = os.urandom(200_000)
        (tmp_path / "f").write_bytes(body)
        standin.proxy.wrong_cid = True
        with pytest.raises(ClientError) as err:
            client.put_object(Bucket="wrong", Key="k", Body=body)
        assert status_of(err.value) == 500 and err.value.response["Error"]["Code"] == "InternalError"
        standin.proxy.wrong_cid = False
        with pytest.raises(ClientError) as missing:
            client.head_object(Bucket="wrong", Key="k")
        assert status_of(missing.value) == 404, "nothing was committed"
        assert not standin.has(cid_of(tmp_path / "f")), "nothing was left on the backend"
        assert not spool_files(gw)
        assert client.list_objects_v2(Bucket="wrong")["KeyCount"] == 0
    finally:
        gw.stop()


def test_an_outage_is_503_within_a_second_and_service_recovers_by_itself(standin, tmp_path):
    gw = on_filebase(standin, tmp_path, S3IPFS_CONTENT_BREAKER_OPEN_SECS=2, S3IPFS_CONTENT_TIMEOUT_SECS=5)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="outage")
        acknowledged = {}
        outcomes = []

        def put(i):
            body = os.urandom(50_000) + i.to_bytes(4, "big")
            started = time.monotonic()
            try:
                client.put_object(Bucket="outage", Key=f"k{i}", Body=body)
                acknowledged[f"k{i}"] = body
                outcomes.append((time.monotonic(), "ok", time.monotonic() - started, None))
            except ClientError as err:
                retry_after = err.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after")
                outcomes.append((time.monotonic(), status_of(err), time.monotonic() - started, retry_after))

        for i in range(10):
            put(i)
        standin.gateway.stop()
        down_at = time.monotonic()
        i = 10
        while time.monotonic() - down_at < 6:
            put(i)
            i += 1
        during = [o for o in outcomes if o[0] > down_at]
        assert during and all(o[1] == 503 for o in during), during
        # Once the breaker is open, every request is refused at once, with Retry-After.
        settled = [o for o in during if o[0] > down_at + 2]
        assert settled and all(o[2] < 1.0 for o in settled), settled
        assert all(o[3] is not None for o in settled)
        print(f"outage: first 503 after {during[0][2]:.3f} s, then at most {max(o[2] for o in settled):.3f} s")
        standin.start()
        back_at = time.monotonic()
        while True:
            put(i)
            i += 1
            if outcomes[-1][1] == "ok":
                break
            assert time.monotonic() - back_at < 30, "service did not recover within 30 s"
            time.sleep(0.2)
        print(f"outage: recovered {time.monotonic() - back_at:.1f} s after the stand-in came back")
        # No committed version lacks its content, and no acknowledged PUT is lost.
        listed = {o["Key"] for o in client.list_objects_v2(Bucket="outage", MaxKeys=1000).get("Contents", [])}
        assert listed == set(acknowledged)
        for key, body in acknowledged.items():
            assert client.get_object(Bucket="outage", Key=key)["Body"].read() == body
    finally:
        gw.stop()


def test_a_slow_backend_does_not_slow_head_or_listings(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="slow")
        for i in range(20):
            client.put_object(Bucket="slow", Key=f"k{i}", Body=os.urandom(1000))
        standin.proxy.delay = 2.0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            slow_puts = [pool.submit(s3(gw).put_object, Bucket="slow", Key=f"new{i}", Body=os.urandom(5000))
                         for i in range(8)]
            time.sleep(0.5)
            latencies = []
            for i in range(20):
                started = time.monotonic()
                client.head_object(Bucket="slow", Key=f"k{i}")
                client.list_objects_v2(Bucket="slow")
                latencies.append(time.monotonic() - started)
            assert not all(f.done() for f in slow_puts), "the backend really was slow"
            assert max(latencies) < 0.5, latencies
            for f in slow_puts:
                f.result()
    finally:
        standin.proxy.delay = 0
        gw.stop()


def gc_now(gateway):
    result = subprocess.run([binary(), "gc", "--data-dir", str(gateway.data_dir)], capture_output=True, text=True,
                            timeout=120, env={**gateway.admin_env(), "S3IPFS_GC_GRACE_SECS": "0"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gc_deletes_the_content_of_deleted_versions_from_the_backend(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        client = s3(gw)
        client.create_bucket(Bucket="gcb")
        body = os.urandom(400_000)
        cid = client.put_object(Bucket="gcb", Key="k", Body=body)["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
        client.put_object(Bucket="gcb", Key="other", Body=b"kept")
        assert standin.has(cid)
        gc_now(gw)
        assert standin.has(cid), "referenced content stays"
        client.delete_object(Bucket="gcb", Key="k")
        assert "deleted 1 content objects" in gc_now(gw)
        assert not standin.has(cid), "unreferenced content is deleted (unpinned) on the backend"
        assert client.get_object(Bucket="gcb", Key="other")["Body"].read() == b"kept"
        # The same bytes again: uploaded again.
        client.put_object(Bucket="gcb", Key="k", Body=body)
        assert standin.has(cid)
    finally:
        gw.stop()


def test_puts_and_deletes_of_the_same_bytes_while_gc_runs_never_lose_a_version(standin, tmp_path):
    gw = on_filebase(standin, tmp_path, S3IPFS_GC_GRACE_SECS=0, S3IPFS_GC_INTERVAL_SECS=1)
    try:
        client = s3(gw, retries=3)
        client.create_bucket(Bucket="race")
        client.put_bucket_versioning(Bucket="race", VersioningConfiguration={"Status": "Enabled"})
        payloads = [os.urandom(100_000) for _ in range(2)]
        stop = time.monotonic() + 15
        errors, lost = [], []

        def hammer(worker):
            # Each version of the shared bytes is read back, then deleted: the bytes' references keep dropping to
            # zero, collections delete them from the backend, and the next PUT of the same bytes races that.
            c = s3(gw, retries=3)
            n = 0
            while time.monotonic() < stop:
                key, body = f"w{worker}", payloads[(n // 2) % 2]
                try:
                    version = c.put_object(Bucket="race", Key=key, Body=body)["VersionId"]
                    got = c.get_object(Bucket="race", Key=key, VersionId=version)["Body"].read()
                    if got != body:
                        lost.append((key, version))
                    c.delete_object(Bucket="race", Key=key, VersionId=version)
                except ClientError as err:
                    errors.append(err.response["Error"]["Code"])
                n += 1
            c.put_object(Bucket="race", Key=key, Body=payloads[worker % 2])

        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and not lost, (errors, lost)
        # Collections deleted content from the backend while writers uploaded the same bytes again.
        assert standin.proxy.methods["DELETE"] > 0 and sum(standin.proxy.puts.values()) > len(payloads), \
            standin.proxy.methods
        versions = client.list_object_versions(Bucket="race").get("Versions", [])
        assert len(versions) == 4
        for v in versions:
            body = client.get_object(Bucket="race", Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            assert body in payloads, v
    finally:
        gw.stop()


def test_a_5_gib_multipart_upload_through_aws_cli_crosses_once_in_bounded_memory(standin, tmp_path):
    gw = on_filebase(standin, tmp_path)
    try:
        big = tmp_path / "big"
        with open(big, "wb") as out:
            block = os.urandom(1 << 20)
            for i in range(5 * 1024):
                out.write(i.to_bytes(8, "big") + block[8:])
        s3(gw).create_bucket(Bucket="big")
        standin.proxy.reset()
        env = client_env(tmp_path)
        # aws-cli's defaults (60 s read timeout): the Complete, which uploads 5 GiB, answers with keep-alive spaces.
        subprocess.run([require("aws"), "--endpoint-url", gw.endpoint, "s3", "cp", str(big), "s3://big/file"],
                       check=True, env=env, capture_output=True, timeout=1800)
        head = s3(gw).head_object(Bucket="big", Key="file")
        assert head["ContentLength"] == 5 << 30
        assert head["Metadata"]["cid"] == cid_of(big)
        assert standin.proxy.put_bytes == 5 << 30, "each byte crossed to the backend once"
        peak = gw.peak_rss_kib()
        assert peak < 256 * 1024, f"peak RSS {peak} KiB"
        print(f"5 GiB multipart: gateway peak RSS {peak / 1024:.1f} MiB")
    finally:
        gw.stop()
        # Gigabytes: the source, the staged parts.
        big.unlink(missing_ok=True)
        shutil.rmtree(gw.data_dir, ignore_errors=True)


def test_two_replicas_writing_the_same_new_bytes_at_once_both_commit_readable_content(standin, tmp_path):
    from conftest import fresh_database_url
    url = fresh_database_url()
    env = {**standin.gateway_env()}
    one = Gateway(tmp_path / "one", env=env, database_url=url)
    two = Gateway(tmp_path / "two", env=env, database_url=url)
    try:
        s3(one).create_bucket(Bucket="shared")
        body = os.urandom(2_000_000)
        clients = [s3(one), s3(two)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            outs = list(pool.map(lambda i: clients[i % 2].put_object(Bucket="shared", Key=f"k{i}", Body=body),
                                 range(8)))
        cids = {o["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"] for o in outs}
        assert len(cids) == 1
        (cid,) = cids
        assert standin.client().head_object(Bucket="pins", Key=cid)["Metadata"]["cid"] == cid
        for i in range(8):
            assert clients[(i + 1) % 2].get_object(Bucket="shared", Key=f"k{i}")["Body"].read() == body
    finally:
        one.stop()
        two.stop()

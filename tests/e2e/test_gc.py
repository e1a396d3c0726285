"""Garbage collection through the real binary: deleted data leaves the disk after the grace period, `s3ipfs gc`
reports and deletes beside a running server, and acknowledged PUTs survive uploads of the same bytes being aborted
while the collector runs every second."""
import io
import os
from pathlib import Path
import subprocess
import threading
import time

from boto3.s3.transfer import TransferConfig
from conftest import Gateway, binary
from test_boto3 import s3_client

MIB = 1024 * 1024


def stored(gateway):
    """(CIDs of stored data files, total bytes of every file) under the content store."""
    objects = gateway.data_dir / "content" / "objects"
    sizes = {}
    # os.walk skips directories that vanish under it: GC removes files and emptied shard directories meanwhile.
    for root, _dirs, files in os.walk(objects):
        for name in files:
            try:
                sizes[Path(root) / name] = (Path(root) / name).stat().st_size
            except FileNotFoundError:  # collected while we looked
                pass
    return {p.name for p in sizes if not p.name.endswith(".nodes")}, sum(sizes.values())


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.2)
    return predicate()


def test_disk_usage_returns_to_its_baseline_after_everything_is_deleted(tmp_path):
    gw = Gateway(tmp_path / "data", ["--gc-grace-secs", "2", "--gc-interval-secs", "1"])
    try:
        s3 = s3_client(gw)
        baseline = stored(gw)
        assert baseline == (set(), 0)
        s3.create_bucket(Bucket="plain")
        s3.create_bucket(Bucket="versioned")
        s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
        small = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
        for bucket in ["plain", "versioned"]:
            for i in range(3):
                s3.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(300_000 + i))
                s3.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(100_000 + i))  # overwrite
            s3.upload_fileobj(io.BytesIO(os.urandom(12 * MIB)), bucket, "multi", Config=small)
            s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/k0")
        upload = s3.create_multipart_upload(Bucket="plain", Key="abandoned")["UploadId"]
        s3.upload_part(Bucket="plain", Key="abandoned", UploadId=upload, PartNumber=1, Body=os.urandom(MIB))
        s3.abort_multipart_upload(Bucket="plain", Key="abandoned", UploadId=upload)
        assert stored(gw)[1] > 24 * MIB

        for bucket in ["plain", "versioned"]:
            listed = s3.list_object_versions(Bucket=bucket)
            for entry in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
            s3.delete_bucket(Bucket=bucket)
        assert wait_for(lambda: stored(gw) == baseline, 2 + 1 + 10), f"left on disk: {stored(gw)}"
        content = gw.data_dir / "content"
        assert [p.name for p in (content / "objects").iterdir()] == [], "no emptied shard directory is left"
        assert sorted(p.name for p in content.iterdir()) == ["objects", "tmp"]
    finally:
        assert gw.stop() == 0


def gc_command(gateway, *args):
    result = subprocess.run([binary(), "gc", "--data-dir", str(gateway.data_dir), *args],
                            capture_output=True, text=True, timeout=60, env=gateway.admin_env())
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gc_dry_run_reports_and_gc_deletes_beside_a_running_server(tmp_path):
    gw = Gateway(tmp_path / "data")  # the server's own collector waits the default grace period
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="collect")
        data = os.urandom(700_000)
        cid = s3.put_object(Bucket="collect", Key="gone", Body=data)["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
        s3.put_object(Bucket="collect", Key="kept", Body=b"kept")
        s3.delete_object(Bucket="collect", Key="gone")

        assert gc_command(gw, "--dry-run").strip().splitlines()[-1] == "would delete 0 content objects, 0 bytes"
        report = gc_command(gw, "--dry-run", "--gc-grace-secs", "0").strip().splitlines()
        assert report == [f"{cid} {len(data)}", f"would delete 1 content objects, {len(data)} bytes"]
        assert cid in stored(gw)[0], "a dry run deletes nothing"

        assert gc_command(gw, "--gc-grace-secs", "0").strip() == f"deleted 1 content objects, {len(data)} bytes"
        assert cid not in stored(gw)[0]
        assert s3.get_object(Bucket="collect", Key="kept")["Body"].read() == b"kept"
        s3.put_object(Bucket="collect", Key="again", Body=data)
        assert s3.get_object(Bucket="collect", Key="again")["Body"].read() == data, "the same bytes stored anew"
    finally:
        assert gw.stop() == 0


def test_acknowledged_puts_survive_aborted_uploads_of_the_same_bytes_while_gc_runs(tmp_path):
    gw = Gateway(tmp_path / "data", ["--gc-grace-secs", "0", "--gc-interval-secs", "1"])
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="mine")
        s3.create_bucket(Bucket="theirs")
        acknowledged, errors = {}, []

        def put(key, data):
            try:
                s3_client(gw).put_object(Bucket="mine", Key=key, Body=data)
                acknowledged[key] = data
            except Exception as err:  # noqa: BLE001 (any failure is reported below)
                errors.append(err)

        def abort(key, data):
            client = s3_client(gw)
            upload = client.create_multipart_upload(Bucket="theirs", Key=key)["UploadId"]
            client.upload_part(Bucket="theirs", Key=key, UploadId=upload, PartNumber=1, Body=data)
            client.abort_multipart_upload(Bucket="theirs", Key=key, UploadId=upload)

        for n in range(25):
            data = n.to_bytes(4, "big") + os.urandom(300_000)
            threads = [threading.Thread(target=abort, args=(f"a{n}-{i}", data)) for i in range(3)]
            threads += [threading.Thread(target=put, args=(f"k{n}-{i}", data)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(0.05 * (n % 4))
        assert not errors, errors
        time.sleep(1.5)  # at least one more collection
        for key, data in acknowledged.items():
            assert s3.get_object(Bucket="mine", Key=key)["Body"].read() == data, key
        named = {s3.head_object(Bucket="mine", Key=k)["Metadata"]["cid"] for k in acknowledged}
        assert wait_for(lambda: stored(gw)[0] == named, 5), "GC freed exactly what no object names"
    finally:
        assert gw.stop() == 0

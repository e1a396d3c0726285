"""aws-cli v2 (Debian package `awscli`, /usr/bin/aws) against the real binary."""
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import client_env, require

AWS_V2 = "/usr/bin/aws"


@pytest.fixture
def aws2(gateway, tmp_path):
    require("curl")
    if not Path(AWS_V2).is_file():
        pytest.fail("aws-cli v2 is not installed: run `make test-deps` (Debian package awscli)")
    version = subprocess.run([AWS_V2, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("aws-cli/2."), version
    env = client_env(tmp_path)

    def run(*args):
        result = subprocess.run([AWS_V2, "--endpoint-url", gateway.endpoint, *args], env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        return result.stdout

    return run


def test_sync_download_presign_and_versioning_with_v2(aws2, tmp_path):
    src = tmp_path / "tree"
    for i in range(40):
        path = src / f"d{i % 5}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (i * 997 + 3))
    aws2("s3", "mb", "s3://v2bucket")
    aws2("s3", "sync", str(src), "s3://v2bucket/tree")
    assert aws2("s3", "sync", str(src), "s3://v2bucket/tree").strip() == "", "re-sync is a no-op"
    dst = tmp_path / "down"
    aws2("s3", "sync", "s3://v2bucket/tree", str(dst))
    digest = lambda root: {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    assert digest(dst) == digest(src)

    url = aws2("s3", "presign", "s3://v2bucket/tree/d0/f0.bin", "--expires-in", "300").strip()
    assert "X-Amz-Signature" in url, "aws-cli v2 presigns with SigV4"
    fetched = subprocess.run(["curl", "-sf", url], capture_output=True)
    assert fetched.returncode == 0 and fetched.stdout == (src / "d0" / "f0.bin").read_bytes()

    aws2("s3api", "put-bucket-versioning", "--bucket", "v2bucket", "--versioning-configuration", "Status=Enabled")
    aws2("s3", "rm", "s3://v2bucket/tree/d0/f0.bin")
    versions = json.loads(aws2("s3api", "list-object-versions", "--bucket", "v2bucket", "--prefix", "tree/d0/f0.bin"))
    assert versions["DeleteMarkers"][0]["IsLatest"] is True
    assert [v["VersionId"] for v in versions["Versions"]] == ["null"], "the object written before versioning is the null version"

"""aws-cli v2 (Debian package `awscli`, /usr/bin/aws) against the real binary."""
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import client_env, require
from test_awscli import make_tree

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
    files = make_tree(src, 200)
    aws2("s3", "mb", "s3://v2bucket")
    aws2("s3", "sync", str(src), "s3://v2bucket/tree")
    assert aws2("s3", "sync", str(src), "s3://v2bucket/tree").strip() == "", "re-sync is a no-op"
    assert len(aws2("s3", "ls", "--recursive", "s3://v2bucket/tree/").strip().splitlines()) == 200
    dst = tmp_path / "down"
    aws2("s3", "sync", "s3://v2bucket/tree", str(dst))
    got = {str(p.relative_to(dst)): hashlib.sha256(p.read_bytes()).hexdigest() for p in dst.rglob("*") if p.is_file()}
    assert got == files

    first = "d0/sub0/file 0+x.txt"
    url = aws2("s3", "presign", f"s3://v2bucket/tree/{first}", "--expires-in", "300").strip()
    assert "X-Amz-Signature" in url, "aws-cli v2 presigns with SigV4"
    fetched = subprocess.run(["curl", "-sf", url], capture_output=True)
    assert fetched.returncode == 0 and fetched.stdout == (src / first).read_bytes()

    aws2("s3api", "put-bucket-versioning", "--bucket", "v2bucket", "--versioning-configuration", "Status=Enabled")
    aws2("s3", "rm", f"s3://v2bucket/tree/{first}")
    versions = json.loads(aws2("s3api", "list-object-versions", "--bucket", "v2bucket", "--prefix", f"tree/{first}"))
    assert versions["DeleteMarkers"][0]["IsLatest"] is True
    assert [v["VersionId"] for v in versions["Versions"]] == ["null"], "the object written before versioning is the null version"

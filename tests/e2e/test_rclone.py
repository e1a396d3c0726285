"""rclone (Debian package) against the real binary: copy, sync, check, lsf, delete."""
import subprocess

import pytest
from conftest import ACCESS_KEY, SECRET_KEY, client_env, require


@pytest.fixture
def rclone(any_gateway, tmp_path):
    gateway = any_gateway
    exe = require("rclone")
    env = client_env(tmp_path)
    env.update(
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_GW_TYPE="s3",
        RCLONE_CONFIG_GW_PROVIDER="Other",
        RCLONE_CONFIG_GW_ENDPOINT=gateway.endpoint,
        RCLONE_CONFIG_GW_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_GW_REGION="us-east-1",
    )

    ca = ["--ca-cert", gateway.ca_bundle] if gateway.ca_bundle else []

    def run(*args, check=True):
        result = subprocess.run([exe, *ca, *args], env=env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"rclone {' '.join(args)} failed: {result.stderr}")
        return result

    return run


def test_copy_sync_check_lsf_and_delete_a_nested_tree(rclone, tmp_path):
    src = tmp_path / "src"
    for i in range(30):
        path = src / f"level{i % 3}" / f"deep{i % 2}" / f"f{i}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (i * 1000 + 1))
    rclone("mkdir", "gw:rclone")
    rclone("copy", str(src), "gw:rclone/tree")
    rclone("check", str(src), "gw:rclone/tree")
    listed = rclone("lsf", "-R", "--files-only", "gw:rclone/tree").stdout.split()
    assert len(listed) == 30
    (src / "level0" / "deep0" / "f0.dat").unlink()
    (src / "new.dat").write_bytes(b"new file")
    rclone("sync", str(src), "gw:rclone/tree")
    rclone("check", str(src), "gw:rclone/tree")
    assert len(rclone("lsf", "-R", "--files-only", "gw:rclone/tree").stdout.split()) == 30
    back = tmp_path / "back"
    rclone("copy", "gw:rclone/tree", str(back))
    rclone("check", str(src), str(back))
    rclone("delete", "gw:rclone/tree/level1")
    assert all(not name.startswith("level1/") for name in rclone("lsf", "-R", "--files-only", "gw:rclone/tree").stdout.split())
    rclone("purge", "gw:rclone")
    assert "rclone" not in rclone("lsd", "gw:").stdout

"""restic (Debian package): init, backup twice, snapshots, check --read-data, restore, forget --prune."""
import filecmp
import os
import subprocess

import pytest
from conftest import ACCESS_KEY, SECRET_KEY, client_env, require


def same_tree(left, right):
    cmp = filecmp.dircmp(left, right)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(left / d, right / d) for d in cmp.common_dirs)


@pytest.fixture
def restic(any_gateway, tmp_path):
    gateway = any_gateway
    exe = require("restic")
    env = client_env(tmp_path)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        RESTIC_REPOSITORY=f"s3:{gateway.endpoint}/restic",
        RESTIC_PASSWORD="e2e-repository-password",
        RESTIC_CACHE_DIR=str(tmp_path / "cache"),
    )

    ca = ["--cacert", gateway.ca_bundle] if gateway.ca_bundle else []

    def run(*args):
        result = subprocess.run([exe, *ca, *args], env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"restic {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    return run


def test_backup_check_restore_and_prune(restic, tmp_path):
    src = tmp_path / "source"
    for i in range(20):
        path = src / f"dir{i % 4}" / f"file{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(50_000 + i * 10_000))
    restic("init")
    restic("backup", str(src))
    (src / "dir0" / "file0.bin").write_bytes(os.urandom(123_456))
    (src / "new.txt").write_text("second snapshot")
    restic("backup", str(src))
    assert restic("snapshots", "--json").count('"id"') == 2
    assert "no errors were found" in restic("check", "--read-data")
    restic("restore", "latest", "--target", str(tmp_path / "restored"))
    assert same_tree(src, tmp_path / "restored" / src.relative_to("/"))
    restic("forget", "--keep-last", "1", "--prune")
    assert restic("snapshots", "--json").count('"id"') == 1
    assert "no errors were found" in restic("check")

"""s3cmd (Debian package) with the configuration the README gives: mb, put, ls, get, del, rb."""
import subprocess
from urllib.parse import urlparse

import pytest
from conftest import ACCESS_KEY, SECRET_KEY, client_env, require


@pytest.fixture
def s3cmd(any_gateway, tmp_path):
    gateway = any_gateway
    exe = require("s3cmd")
    host = urlparse(gateway.endpoint).netloc
    config = tmp_path / "s3cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "bucket_location = us-east-1\nsignature_v2 = False\n"
        + (f"use_https = True\nca_certs_file = {gateway.ca_bundle}\n" if gateway.ca_bundle else "use_https = False\n")
    )
    env = client_env(tmp_path)

    def run(*args, check=True):
        result = subprocess.run([exe, "-c", str(config), *args], env=env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"s3cmd {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    return run


def test_mb_put_ls_get_del_rb(s3cmd, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_bytes(b"s3cmd was here\n" * 1000)
    s3cmd("mb", "s3://s3cmd-bucket")
    s3cmd("put", str(source), "s3://s3cmd-bucket/dir/notes.txt")
    assert "s3://s3cmd-bucket/dir/notes.txt" in s3cmd("ls", "-r", "s3://s3cmd-bucket").stdout
    back = tmp_path / "back.txt"
    s3cmd("get", "s3://s3cmd-bucket/dir/notes.txt", str(back))
    assert back.read_bytes() == source.read_bytes()
    info = s3cmd("info", "s3://s3cmd-bucket/dir/notes.txt").stdout
    assert "x-amz-meta-cid" in info or "cid" in info.lower()
    refused = s3cmd("rb", "s3://s3cmd-bucket", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stdout + refused.stderr
    s3cmd("del", "s3://s3cmd-bucket/dir/notes.txt")
    s3cmd("rb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" not in s3cmd("ls").stdout

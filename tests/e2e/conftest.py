"""End-to-end fixtures: the real `s3ipfs` binary on port 0, and real clients configured for it.

A missing client or binary fails the run (it is never skipped): `make test` installs everything first.

`S3IPFS_E2E_META=postgres` runs every gateway on PostgreSQL, each with a fresh database on the cluster that
`S3IPFS_TEST_PG_URL` names, or on a throwaway cluster this session starts (tests/services/pg-cluster.sh).

`S3IPFS_E2E_CONTENT=filebase` runs every gateway on the Filebase content backend, against its own Filebase stand-in
(a second `s3ipfs serve` with the `kubo-v0` profile, which reports CIDs and imports CARs as Filebase does).

`S3IPFS_E2E_CACHE=redis` puts every gateway's caches on Redis (`S3IPFS_TEST_REDIS_URL`, or a throwaway server this
session starts with tests/services/redis-server.sh), each database or data directory with its own key prefix, so
replicas of one share theirs; `off` turns the caches off; unset, they are in process (the default).
"""
import atexit
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ACCESS_KEY = "GKE2ETESTKEY00000001"
SECRET_KEY = "e2e-secret-key-0123456789abcdefghijklmnop"
ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("S3IPFS_CID_VECTORS", ROOT.parent / "shared" / "cid-vectors"))


def binary():
    path = os.environ.get("S3IPFS_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("S3IPFS_BIN must point at the built s3ipfs binary (make test sets it)")
    return path


_SERVICES = {}


def service_url(script, scheme):
    """The URL a tests/services script prints once its server is up (started on first use, stopped when pytest
    exits: the script ends when its standard input closes)."""
    if script not in _SERVICES:
        proc = subprocess.Popen(["bash", str(ROOT / "tests" / "services" / script)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        url = proc.stdout.readline().strip()
        if not url.startswith(scheme):
            pytest.fail(f"tests/services/{script} did not start its server")
        _SERVICES[script] = (url, proc)
    return _SERVICES[script][0]


def pg_cluster_url():
    """The admin URL of the test PostgreSQL cluster: `S3IPFS_TEST_PG_URL`, or a throwaway one."""
    return os.environ.get("S3IPFS_TEST_PG_URL") or service_url("pg-cluster.sh", "postgres://")


def redis_url():
    """The URL of the test Redis: `S3IPFS_TEST_REDIS_URL`, or a throwaway one."""
    return os.environ.get("S3IPFS_TEST_REDIS_URL") or service_url("redis-server.sh", "redis://")


SEAL_KEY = "e2e-seal-key"


def redis_env(scope, url=None):
    """Settings that put a gateway's caches on Redis (`url`, or the test Redis), with a key prefix of its own for
    `scope` (a database URL or data directory: the replicas of one share it)."""
    import hashlib
    prefix = "e2e-" + hashlib.sha256(str(scope).encode()).hexdigest()[:12] + ":"
    return {"REDIS_URL": url or redis_url(), "S3IPFS_REDIS_PREFIX": prefix, "S3IPFS_REDIS_SEAL_KEY": SEAL_KEY}


_DATABASES = {}


def database_for(data_dir):
    """The database of the gateway with `data_dir`: a fresh one the first time, the same one on a restart."""
    key = str(Path(data_dir).resolve())
    if key not in _DATABASES:
        _DATABASES[key] = fresh_database_url()
    return _DATABASES[key]


def fresh_database_url():
    """A new, empty database on the test cluster."""
    admin = pg_cluster_url()
    name = "e2e_" + os.urandom(8).hex()
    subprocess.run([require("psql"), admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return admin.rsplit("/", 1)[0] + "/" + name


def psql(url, sql):
    """Rows of `sql` on `url`, as lists of strings."""
    out = subprocess.run([require("psql"), url, "-At", "-F", "\t", "-c", sql], check=True, capture_output=True,
                         text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def require(tool):
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed: run `make test-deps`")
    return found


def sign(request, payload_hash):
    """SigV4-signs a botocore AWSRequest declaring `payload_hash` (UNSIGNED-PAYLOAD, STREAMING-…) as its payload."""
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials

    class DeclaredPayload(S3SigV4Auth):
        # botocore would replace x-amz-content-sha256 with a hash of the (absent) body.
        def payload(self, request):
            return payload_hash

    DeclaredPayload(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    return request


def signed_request(gateway, method, path, headers=None, body=b"", region="us-east-1", declared_length=None,
                   timeout=30):
    """Sends `method path` (raw, as it goes on the wire) SigV4-signed with UNSIGNED-PAYLOAD for `region`; returns
    (status, headers as a dict of lowercased names, body bytes). `declared_length` overrides Content-Length."""
    from urllib.parse import urlparse

    from botocore.awsrequest import AWSRequest
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials

    class Unsigned(S3SigV4Auth):
        def payload(self, request):
            return "UNSIGNED-PAYLOAD"

    request = AWSRequest(method=method, url=gateway.endpoint + path, headers=dict(headers or {}))
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    Unsigned(Credentials(ACCESS_KEY, SECRET_KEY), "s3", region).add_auth(request)
    target = urlparse(gateway.endpoint)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    sent = dict(request.headers.items())
    sent["Content-Length"] = str(len(body) if declared_length is None else declared_length)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in sent.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        if body:
            conn.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered before reading it all
    response = conn.getresponse()
    result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    conn.close()
    return result


def error_code_of(body):
    """The <Code> of an S3 error body."""
    match = re.search(rb"<Code>([^<]*)</Code>", body)
    return match.group(1).decode() if match else None


class Gateway:
    """A running gateway process with its endpoint and data directory.

    `env` overrides the environment (a value of None removes the variable); with `log`, the gateway's standard
    error goes to that file instead of the test's; `preexec_fn` runs in the child before it starts (resource limits).
    `database_url` runs it on that PostgreSQL database; `embedded` on the embedded store whatever S3IPFS_E2E_META
    says (tests of what only the embedded store does: the data directory's lock, its admin commands, its files).
    """

    def __init__(self, data_dir, extra_args=(), env=None, log=None, preexec_fn=None, database_url=None,
                 embedded=False):
        self.data_dir = Path(data_dir)
        self.standin = None
        if not embedded and os.environ.get("S3IPFS_E2E_CONTENT") == "filebase" and not (env or {}).get(
                "S3IPFS_CONTENT_BACKEND"):
            self.standin = FilebaseStandIn(self.data_dir.parent / f"{self.data_dir.name}-standin-{time.monotonic_ns()}")
            env = {**self.standin.gateway_env(), "S3IPFS_CID_PROFILE": "kubo-v1", **(env or {})}
        # Content settings that admin commands (`s3ipfs gc`) need too.
        self.content_env = {k: v for k, v in (env or {}).items()
                            if v is not None and (k.startswith(("FILEBASE_", "S3_BACKEND_", "S3IPFS_CONTENT_"))
                                                  or k == "S3IPFS_CID_PROFILE")}
        full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        full_env.update(
            S3IPFS_LISTEN="127.0.0.1:0",
            S3IPFS_DATA_DIR=str(self.data_dir),
            S3IPFS_ROOT_ACCESS_KEY=ACCESS_KEY,
            S3IPFS_ROOT_SECRET_KEY=SECRET_KEY,
            RUST_LOG="warn",
        )
        if database_url is None and not embedded and os.environ.get("S3IPFS_E2E_META") == "postgres":
            database_url = database_for(self.data_dir)
        self.database_url = database_url
        if database_url:
            full_env["DATABASE_URL"] = database_url
        cache = os.environ.get("S3IPFS_E2E_CACHE", "memory")
        self.cache_env = {}
        if cache == "redis" and not embedded and "REDIS_URL" not in (env or {}):
            self.cache_env = redis_env(database_url or self.data_dir.resolve())
        elif cache == "off" and "S3IPFS_CACHE_BACKEND" not in (env or {}):
            self.cache_env = {"S3IPFS_CACHE_BACKEND": "off"}
        self.cache_env.update({k: v for k, v in (env or {}).items()
                               if v is not None and (k.startswith(("S3IPFS_REDIS_", "S3IPFS_CACHE_")) or k == "REDIS_URL")})
        full_env.update(self.cache_env)
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        self.log = log
        stderr = open(log, "w") if log else sys.stderr
        self.proc = subprocess.Popen(
            [binary(), "serve", *extra_args], env=full_env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            preexec_fn=preexec_fn,
        )
        deadline = time.time() + 30
        self.endpoint = None
        self.banner = []
        while time.time() < deadline and self.endpoint is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            match = re.search(r"listening on (https?://\S+)", line)
            if match:
                self.endpoint = match.group(1)
        if self.endpoint is None:
            self.proc.kill()
            pytest.fail("the gateway did not start")
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def admin_env(self):
        """Environment for an admin command (`s3ipfs user`, `gc`) on this gateway's stores."""
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(self.content_env)
        env.update(self.cache_env)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def peak_rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.standin:
            self.standin.stop()
        return code


STANDIN_KEY = "STANDINKEY0000000001"
STANDIN_SECRET = "standin-secret-key-0123456789"
STANDIN_BUCKET = "pins"


_STANDINS = []


@atexit.register
def _stop_standins():
    """Stand-ins of gateways a test killed rather than stopped."""
    for standin in _STANDINS:
        if standin.gateway.proc.poll() is None:
            standin.gateway.proc.kill()


def content_objects(data_dir):
    """Where a gateway keeps stored files: the local store, or the parts' staging with a remote backend."""
    staging = Path(data_dir) / "staging" / "objects"
    return staging if staging.exists() else Path(data_dir) / "content" / "objects"


class FilebaseStandIn:
    """The Filebase stand-in: `s3ipfs serve` with the `kubo-v0` profile on the embedded stores, with bucket
    `pins`. With `proxy`, a FaultyProxy sits in front of it and gateways talk to the proxy."""

    def __init__(self, data_dir, proxy=False):
        from faulty_proxy import FaultyProxy
        self.data_dir = Path(data_dir)
        self.port = 0
        self.start()
        _STANDINS.append(self)
        self.client().create_bucket(Bucket=STANDIN_BUCKET)
        self.proxy = FaultyProxy(self.port) if proxy else None

    def start(self):
        """Starts (or restarts, on the same port and data) the stand-in."""
        self.gateway = Gateway(self.data_dir, ["--cid-profile", "kubo-v0"], embedded=True, env={
            "S3IPFS_LISTEN": f"127.0.0.1:{self.port}", "S3IPFS_ROOT_ACCESS_KEY": STANDIN_KEY,
            "S3IPFS_ROOT_SECRET_KEY": STANDIN_SECRET, "S3IPFS_CONTENT_BACKEND": "local"})
        self.port = self.gateway.port

    def stop(self):
        if self.proxy:
            self.proxy.close()
            self.proxy = None
        if self in _STANDINS:
            _STANDINS.remove(self)
        code = self.gateway.stop()
        # Nobody reads a stand-in's output: its pipe is closed, not left open for the rest of the session.
        self.gateway.proc.stdout.close()
        return code

    def client(self):
        """A boto3 client of the stand-in itself (one, reused: each client holds its own connections)."""
        import boto3
        from botocore.config import Config
        if getattr(self, "_client", None) is None or self._client_endpoint != self.gateway.endpoint:
            self._client_endpoint = self.gateway.endpoint
            self._client = boto3.client("s3", endpoint_url=self.gateway.endpoint, aws_access_key_id=STANDIN_KEY,
                                        aws_secret_access_key=STANDIN_SECRET, region_name="us-east-1",
                                        config=Config(retries={"max_attempts": 1}))
        return self._client

    def gateway_env(self):
        """What a gateway needs to use this stand-in (through the proxy, when there is one) as Filebase."""
        endpoint = self.proxy.endpoint if self.proxy else self.gateway.endpoint
        return {"S3IPFS_CONTENT_BACKEND": "filebase", "FILEBASE_ENDPOINT": endpoint,
                "FILEBASE_BUCKET": STANDIN_BUCKET, "FILEBASE_ACCESS_KEY": STANDIN_KEY,
                "FILEBASE_SECRET_KEY": STANDIN_SECRET}

    def has(self, cid):
        """Whether the stand-in holds an object under `cid`."""
        client = self.client()
        try:
            client.head_object(Bucket=STANDIN_BUCKET, Key=cid)
            return True
        except client.exceptions.ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise


@pytest.fixture
def gateway(tmp_path):
    gw = Gateway(tmp_path / "data")
    yield gw
    assert gw.stop() == 0, "the gateway shuts down cleanly on SIGTERM"


def self_signed_certificate(directory):
    """A throwaway certificate for 127.0.0.1, made with the openssl CLI; returns (cert, key) paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def gateway_tls(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    gw = Gateway(tmp_path / "data", ["--tls-cert", str(cert), "--tls-key", str(key)])
    gw.ca_bundle = str(cert)
    yield gw
    assert gw.stop() == 0


@pytest.fixture(params=["http", "https"])
def any_gateway(request):
    """The gateway over plain HTTP and over TLS (its `ca_bundle` is None over HTTP)."""
    gw = request.getfixturevalue("gateway_tls" if request.param == "https" else "gateway")
    if request.param == "http":
        gw.ca_bundle = None
    return gw


@pytest.fixture
def gateway_sigv2(tmp_path):
    gw = Gateway(tmp_path / "data", ["--allow-sigv2"])
    yield gw
    gw.stop()


def client_env(tmp_path):
    """Environment for CLI clients: only our credentials; no CA bundle, profile or config file of the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("RCLONE_")}
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        HOME=str(tmp_path),
    )
    return env


@pytest.fixture(scope="session")
def vector_inputs(tmp_path_factory):
    """The shared CID vector inputs, generated now with the shared generator."""
    out = tmp_path_factory.mktemp("vectors")
    subprocess.run([sys.executable, str(VECTORS / "gen_pattern.py"), str(out)], check=True)
    rows = []
    for line in (VECTORS / "vectors.tsv").read_text().splitlines()[1:]:
        if line.strip():
            name, size, _gen, profile, cid = line.split("\t")
            rows.append((out / name, int(size), profile, cid))
    return rows

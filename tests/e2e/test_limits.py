"""A client that stalls or floods cannot starve the others, and a data directory has one owner.

Idle, silent and half-sent connections are closed within the timeouts while normal requests stay fast; stalled
request bodies and unread responses time out; connections over the limit are refused cleanly; at the open-file
limit the server backs off, logs a line a second at most and serves again once descriptors free up. A second
server refuses a data directory in use, and `s3ipfs user create` beside a running server breaks no upload.
"""
import os
import resource
import select
import socket
import subprocess
import threading
import time

import pytest
from botocore.awsrequest import AWSRequest
from conftest import Gateway, binary, error_code_of, sign, signed_request
from test_boto3 import s3_client
from test_wire import EMPTY_SHA256

FAST = ["--header-timeout-secs", "2", "--idle-timeout-secs", "3", "--stall-timeout-secs", "2"]


def connect(gateway):
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=10)


def readable(sock, timeout):
    """Whether `sock` has data (or EOF) within `timeout` seconds; poll(2), so descriptors above 1023 work."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0.0, timeout) * 1000))


def closed_by_server(sock, deadline):
    """Waits until the server closes `sock` (EOF or reset), or `deadline`; returns whether it did."""
    while time.time() < deadline:
        if not readable(sock, deadline - time.time()):
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def open_file_limit(n):
    """A preexec_fn giving the gateway an open-file limit of `n` (soft and hard: it cannot raise it)."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def eventually(action, seconds):
    """Retries `action` until it returns a true value or `seconds` pass; returns whether it did."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if action():
                return True
        except Exception:  # noqa: BLE001 (refused or reset while the server recovers: try again)
            pass
        time.sleep(0.2)
    return False


def timed_get(s3, bucket, key):
    started = time.time()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return time.time() - started, body


def test_a_thousand_idle_and_half_sent_connections_are_closed_while_gets_stay_fast(tmp_path):
    gw = Gateway(tmp_path / "data", FAST)
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="busy")
        s3.put_object(Bucket="busy", Key="k", Body=b"still served")
        socks = []
        for i in range(1000):
            sock = connect(gw)
            if i % 3 == 1:
                sock.sendall(b"GET /busy/k HTTP/1.1\r\nHost: x\r\n")  # half a header
            elif i % 3 == 2:
                sock.sendall(b"GE")  # not even a method
            socks.append(sock)
        latencies = []
        for _ in range(20):
            latency, body = timed_get(s3, "busy", "k")
            assert body == b"still served"
            latencies.append(latency)
        assert max(latencies) < 1.0, latencies
        deadline = time.time() + 3 + 5 + 5  # the idle timeout, the close grace, slack
        still_open = [s for s in socks if not closed_by_server(s, deadline)]
        assert not still_open, f"{len(still_open)} connections still open"
        for sock in socks:
            sock.close()
        assert timed_get(s3, "busy", "k")[1] == b"still served"
    finally:
        assert gw.stop() == 0


def test_a_keep_alive_connection_left_idle_is_closed(tmp_path):
    gw = Gateway(tmp_path / "data", FAST)
    try:
        sock = connect(gw)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # anonymous: 403, the connection stays open
        assert sock.recv(65536).startswith(b"HTTP/1.1 403")
        started = time.time()
        assert closed_by_server(sock, time.time() + 10)
        assert time.time() - started < 3 + 5
    finally:
        gw.stop()


def test_a_stalled_put_body_times_out_and_stores_nothing(tmp_path):
    gw = Gateway(tmp_path / "data", FAST)
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="stall")
        started = time.time()
        status, _, body = signed_request(gw, "PUT", "/stall/k", body=b"x" * 1000, declared_length=1 << 20)
        assert status == 400 and error_code_of(body) == "RequestTimeout", body
        assert time.time() - started < 2 + 3
        with pytest.raises(Exception):
            s3.head_object(Bucket="stall", Key="k")
        assert list((gw.data_dir / "content" / "tmp").iterdir()) == [], "the partial upload is gone"
        # An XML body that stalls is a 400 too, not a 500.
        status, _, body = signed_request(gw, "POST", "/stall?delete", body=b"<Delete>", declared_length=1000)
        assert status == 400 and error_code_of(body) == "RequestTimeout", body
    finally:
        assert gw.stop() == 0


def test_a_response_the_client_never_reads_is_abandoned(tmp_path):
    # Counts the server's open files: on the embedded store, where no database connection comes and goes.
    gw = Gateway(tmp_path / "data", FAST, embedded=True)
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="unread")
        s3.put_object(Bucket="unread", Key="big", Body=os.urandom(64 << 20))
        baseline = gw.open_fds()
        # Signed GETs whose responses nobody reads.
        readers = []
        for _ in range(10):
            sock = connect(gw)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            send_signed_get(gw, sock, "/unread/big")
            readers.append(sock)
        time.sleep(0.5)
        assert gw.open_fds() >= baseline + 10, "the GETs are in flight"
        deadline = time.time() + 2 + 5
        while gw.open_fds() > baseline and time.time() < deadline:
            time.sleep(0.2)
        assert gw.open_fds() <= baseline, "the stalled responses released their socket and file"
        assert s3.get_object(Bucket="unread", Key="big")["ContentLength"] == 64 << 20
        for sock in readers:
            sock.close()
    finally:
        gw.stop()


def send_signed_get(gateway, sock, path):
    """Writes a signed GET on `sock` and reads nothing back."""
    request = sign(AWSRequest(method="GET", url=gateway.endpoint + path, headers={}), EMPTY_SHA256)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
    sock.sendall(head.encode() + b"\r\n")


def test_connections_over_the_limit_are_refused_with_503_and_served_again_later(tmp_path):
    gw = Gateway(tmp_path / "data", [*FAST, "--max-connections", "20"])
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="limit")
        held = [connect(gw) for _ in range(20)]
        time.sleep(0.3)
        extra = connect(gw)
        extra.settimeout(5)
        answer = extra.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503") and b"<Code>SlowDown</Code>" in answer, answer
        assert closed_by_server(extra, time.time() + 5)
        for sock in held:
            sock.close()
        assert eventually(lambda: s3.put_object(Bucket="limit", Key="k", Body=b"served"), 5)
        assert s3.get_object(Bucket="limit", Key="k")["Body"].read() == b"served"
    finally:
        gw.stop()


def test_at_the_open_file_limit_the_server_backs_off_logs_little_and_recovers(tmp_path):
    log = tmp_path / "gateway.log"
    slow = ["--header-timeout-secs", "60", "--idle-timeout-secs", "60", "--stall-timeout-secs", "60"]
    # So low that even the smallest connection limit (16) runs out of descriptors first.
    gw = Gateway(tmp_path / "data", slow, env={"RUST_LOG": "info"}, log=log, preexec_fn=open_file_limit(24))
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="fds")
        s3.put_object(Bucket="fds", Key="k", Body=b"x")
        s3.close()
        socks = []
        for _ in range(100):
            try:
                socks.append(socket.create_connection(("127.0.0.1", gw.port), timeout=2))
            except OSError:
                break
        started, before = time.time(), log.read_text().count("accept failed")
        time.sleep(4)
        warned = log.read_text().count("accept failed") - before
        assert 1 <= warned <= 4 * 2, f"{warned} accept warnings in {time.time() - started:.1f} s"
        cpu = cpu_seconds(gw.proc.pid)
        time.sleep(2)
        assert cpu_seconds(gw.proc.pid) - cpu < 1.0, "backing off, not spinning"
        for sock in socks:
            sock.close()
        served = eventually(lambda: s3_client(gw).get_object(Bucket="fds", Key="k")["Body"].read() == b"x", 5)
        assert served, "serving again once descriptors freed up"
        assert log.stat().st_size < 64 * 1024
    finally:
        gw.stop()


def test_a_connection_limit_above_what_open_files_allow_is_lowered(tmp_path):
    log = tmp_path / "gateway.log"
    gw = Gateway(tmp_path / "data", ["--max-connections", "1000"], env={"RUST_LOG": "info"}, log=log,
                 preexec_fn=open_file_limit(256))
    try:
        assert "more connections than open files allow" in log.read_text()
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="lowered")
        held = [connect(gw) for _ in range(150)]
        results = []

        def put(i):
            try:
                s3_client(gw, retries={"max_attempts": 1}).put_object(Bucket="lowered", Key=f"k{i}",
                                                                      Body=os.urandom(600_000))
                results.append(200)
            except Exception as err:  # noqa: BLE001 (the status is what the test looks at)
                results.append(getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode"))

        threads = [threading.Thread(target=put, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 500 not in results, results
        for sock in held:
            sock.close()
        assert "Too many open files" not in log.read_text()
    finally:
        gw.stop()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_second_server_refuses_a_data_directory_in_use(tmp_path):
    gw = Gateway(tmp_path / "data", embedded=True)
    try:
        second = subprocess.run(
            [binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=30,
        )
        assert second.returncode != 0
        assert "in use by another s3ipfs server" in second.stderr and f"pid {gw.proc.pid}" in second.stderr
        assert s3_client(gw).list_buckets()["Buckets"] == [], "the first one is unaffected"
    finally:
        assert gw.stop() == 0
    after = Gateway(tmp_path / "data", embedded=True)
    after.stop()


def test_user_create_beside_a_running_server_breaks_no_upload(tmp_path):
    gw = Gateway(tmp_path / "data")
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="inflight")
        total = 4 << 20
        uploads = []
        for i in range(3):
            uploads.append(start_partial_put_of(gw, "inflight", f"k{i}", total))
        time.sleep(0.5)
        created = subprocess.run([binary(), "user", "create", "--email", "carol@example.com", "--data-dir",
                                  str(tmp_path / "data")], capture_output=True, text=True, timeout=30,
                                 env=gw.admin_env())
        assert created.returncode == 0 and "AWS_SECRET_ACCESS_KEY=" in created.stdout, created.stderr
        for sock, sent in uploads:
            sock.sendall(b"x" * (total - sent))
            sock.settimeout(30)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the upload completes"
            sock.close()
        for i in range(3):
            assert s3.head_object(Bucket="inflight", Key=f"k{i}")["ContentLength"] == total
    finally:
        gw.stop()


def start_partial_put_of(gateway, bucket, key, total, sent=1 << 20):
    """A signed PUT declaring `total` bytes, of which the first `sent` are sent; returns (socket, bytes sent)."""
    path = f"/{bucket}/{key}"
    request = sign(AWSRequest(method="PUT", url=gateway.endpoint + path, headers={"Content-Length": str(total)}),
                   "UNSIGNED-PAYLOAD")
    sock = connect(gateway)
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
    sock.sendall(head.encode() + b"\r\n" + b"x" * sent)
    return sock, sent


def h2_gets(gateway, path, streams):
    """Opens an HTTP/2 connection (prior knowledge) that grants no flow-control window, sends `streams` signed GETs
    of `path` and never reads a body; returns (socket, connection, the events received in the first second)."""
    import h2.config
    import h2.connection
    import h2.settings
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import Credentials
    from conftest import ACCESS_KEY, SECRET_KEY

    sock = connect(gateway)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    sock.sendall(conn.data_to_send())
    for _ in range(streams):
        request = AWSRequest(method="GET", url=gateway.endpoint + path, headers={})
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
        headers = [(":method", "GET"), (":path", path), (":scheme", "http"),
                   (":authority", f"127.0.0.1:{gateway.port}")]
        headers += [(k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"]
        conn.send_headers(conn.get_next_available_stream_id(), headers, end_stream=True)
    sock.sendall(conn.data_to_send())
    events, deadline = [], time.time() + 1
    while time.time() < deadline:
        ready = readable(sock, 0.1)
        if ready:
            data = sock.recv(65536)
            if not data:
                break
            events += conn.receive_data(data)
            sock.sendall(conn.data_to_send())
    return sock, conn, events


def test_http2_streams_count_against_the_request_limit_and_a_stalled_one_is_closed(tmp_path):
    import h2.events

    # Counts the server's open files: on the embedded store, where no database connection comes and goes.
    gw = Gateway(tmp_path / "data", [*FAST, "--max-connections", "20"], embedded=True)
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="streams")
        s3.put_object(Bucket="streams", Key="big", Body=os.urandom(8 << 20))
        baseline = gw.open_fds()
        held = [h2_gets(gw, "/streams/big", 8) for _ in range(4)]  # 32 streams wanted, 20 requests allowed
        statuses = [dict(e.headers).get(":status") for _, _, events in held for e in events
                    if isinstance(e, h2.events.ResponseReceived)]
        assert statuses.count("200") == 20 and statuses.count("503") == 12, statuses
        assert gw.open_fds() <= baseline + 4 + 20 + 5, "a file per request in flight, no more"
        # The stalled responses move no byte: their connections are closed within twice the stall timeout.
        assert all(closed_by_server(sock, time.time() + 2 * 2 + 2 + 5) for sock, _, _ in held)
        assert timed_get(s3, "streams", "big")[1] is not None
    finally:
        gw.stop()


def test_uploads_cancelled_at_any_point_leave_no_temp_file(tmp_path):
    gw = Gateway(tmp_path / "data")
    try:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="cancel")

        def cancel(i):
            for j in range(10):
                total = 300 * 1024
                # From a fifth of the body to all of it: the last ones reset while the server stores the upload.
                sent = min(total, int(total * (0.2 + 0.15 * j)))
                sock, _ = start_partial_put_of(gw, "cancel", f"k{i}-{j}", total, sent=sent)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()  # a reset, at a different point of the body each time

        threads = [threading.Thread(target=cancel, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tmp = gw.data_dir / "content" / "tmp"
        assert eventually(lambda: not list(tmp.iterdir()), 10), f"left in tmp: {list(tmp.iterdir())}"
    finally:
        gw.stop()

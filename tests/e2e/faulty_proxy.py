"""An HTTP proxy in front of the Filebase stand-in that counts what crosses it and injects faults.

It forwards each request as it arrives (the Host header and signature untouched), streaming bodies both ways.
Faults: `delay` seconds before each request is forwarded; `wrong_cid` rewrites `x-amz-meta-cid` in answers;
an upstream that refuses connections is answered 502, as a load balancer would. Counters: requests by method
(`methods`), PUT requests by path (`puts`) and the body bytes of all PUTs (`put_bytes`).
"""
import collections
import http.client
import http.server
import threading
import time
import urllib.parse

WRONG_CID = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
CHUNK = 1 << 20


class FaultyProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.wrong_cid = False
        self.lock = threading.Lock()
        self.puts = collections.Counter()
        self.methods = collections.Counter()
        self.put_bytes = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.puts.clear()
            self.methods.clear()
            self.put_bytes = 0

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        proxy = self.server.proxy
        if proxy.delay:
            time.sleep(proxy.delay)
        length = int(self.headers.get("Content-Length") or 0)
        upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=600)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                upstream.putheader(name, value)
            upstream.endheaders()
            left = length
            while left:
                chunk = self.rfile.read(min(left, CHUNK))
                if not chunk:
                    break
                upstream.send(chunk)
                left -= len(chunk)
            response = upstream.getresponse()
        except OSError:
            upstream.close()
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        with proxy.lock:
            proxy.methods[self.command] += 1
        if self.command == "PUT":
            with proxy.lock:
                proxy.puts[urllib.parse.urlsplit(self.path).path] += 1
                proxy.put_bytes += length
        chunked = (response.getheader("Transfer-Encoding") or "").lower() == "chunked"
        body = response.read() if chunked else None
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in ("transfer-encoding", "connection") or (chunked and lower == "content-length"):
                continue
            if lower == "x-amz-meta-cid" and proxy.wrong_cid:
                value = WRONG_CID
            self.send_header(name, value)
        if chunked:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body is not None:
            self.wfile.write(body)
        elif self.command != "HEAD":
            while chunk := response.read(CHUNK):
                self.wfile.write(chunk)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

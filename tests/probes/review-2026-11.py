#!/usr/bin/env python3
"""Attacker-view probes against one build of sales-order-api.

usage: probe.py BINARY LABEL [probe numbers...]

Each probe gets a fresh SQLite database under /tmp/probe/run-LABEL/ and a
fresh server on a new port; the server is killed and the database removed at
the end of the probe.  Server stderr is kept in /tmp/probe/run-LABEL/*.log.
Stdlib + cryptography only.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BIN = os.path.abspath(sys.argv[1])
LABEL = sys.argv[2]
ONLY = {int(a) for a in sys.argv[3:]}
WORK = f"/tmp/probe/run-{LABEL}"
CLIENT_ID = "probe-client-001"
ORDER = {"customer_code": "CUST-001", "site_code": "SITE-001", "sales_name": "John Doe",
         "address": "Jl. Sudirman 1", "purchase_order_no": None,
         "products": [{"product_code": "PRD-001", "quantity": 2}]}

shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)

_help = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
HAS_METRICS_LISTEN = "--metrics-listen" in _help

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUB = os.path.join(WORK, "pub.pem")
with open(PUB, "wb") as f:
    f.write(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))


def out(n, text):
    print(f"[{LABEL}] probe {n}: {text}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, name, ulimit_n=None, extra=()):
        self.name = name
        self.db = os.path.join(WORK, f"{name}.db")
        self.url = f"sqlite://{self.db}"
        self.port = free_port()
        self.mport = free_port() if HAS_METRICS_LISTEN else self.port
        self.extra = list(extra)
        self.ulimit_n = ulimit_n
        self.proc = None

    def cli(self, *args):
        r = subprocess.run([BIN, "--database-url", self.url, *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"cli {args} rc={r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def create_partner(self):
        j = json.loads(self.cli("partner", "create", "--name", "P", "--client-id", CLIENT_ID,
                                "--public-key", PUB, "--json"))
        self.secret = j["client_secret"]
        return self.secret

    def start(self):
        cmd = [BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--database-url", self.url]
        if HAS_METRICS_LISTEN:
            cmd += ["--metrics-listen", f"127.0.0.1:{self.mport}"]
        cmd += self.extra
        if self.ulimit_n:
            cmd = ["sh", "-c", f"ulimit -n {self.ulimit_n}; exec " + " ".join(cmd)]
        self.log = open(os.path.join(WORK, f"{self.name}.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited rc={self.proc.returncode}, see {self.log.name}")
            try:
                st, _, _ = req(self.port, "GET", "/healthz", timeout=1)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.log.close()
        for suf in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(self.db + suf)
            except FileNotFoundError:
                pass

    def count(self, table):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        finally:
            con.close()

    def login(self, secret=None):
        st, _, body = req(self.port, "POST", "/api/v1/auth/login",
                          json.dumps({"client_id": CLIENT_ID,
                                      "client_secret": secret or self.secret}).encode(),
                          {"Content-Type": "application/json"})
        if st != 200:
            raise RuntimeError(f"login {st} {body[:200]}")
        return json.loads(body)["token"]


def req(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def sign(msg):
    return base64.b64encode(KEY.sign(msg.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def err_code(body):
    try:
        return json.loads(body)["error"]["code"]
    except Exception:
        m = re.search(rb'"code"\s*:\s*"([A-Z_0-9]+)"', body or b"")
        return m.group(1).decode() if m else None


def raw_exchange(port, data, timeout=10):
    """Send bytes on a fresh connection, read until EOF/timeout. Returns raw response bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(raw):
    line = raw.split(b"\r\n", 1)[0]
    m = re.match(rb"HTTP/1\.[01] (\d{3})", line)
    return int(m.group(1)) if m else None


def metrics_size(srv):
    st, _, body = req(srv.mport, "GET", "/metrics")
    return st, len(body)


# ---------------------------------------------------------------- probes

def probe1():
    srv = Server("p1").start()
    try:
        st0, m0 = metrics_size(srv)
        r0 = srv.rss_kb()
        statuses = {}
        for i in range(1000):
            method = (f"PROBE{i:04d}" + "X" * 1000)[:1000]
            raw = raw_exchange(srv.port, f"{method} /api/v1/sales-orders HTTP/1.1\r\nHost: x\r\n"
                                         f"Connection: close\r\n\r\n".encode(), timeout=5)
            s = status_of(raw)
            statuses[s] = statuses.get(s, 0) + 1
        time.sleep(0.5)
        st1, m1 = metrics_size(srv)
        r1 = srv.rss_kb()
        where = f"metrics port {srv.mport}" if HAS_METRICS_LISTEN else "API port"
        out(1, f"method statuses={statuses}; /metrics ({where}) status {st0}->{st1}, "
               f"size {m0} -> {m1} bytes; VmRSS {r0} -> {r1} kB")
    finally:
        srv.stop()


def probe2():
    srv = Server("p2", ulimit_n=64, extra=["--database-connections", "4"]).start()
    try:
        socks = []
        connect_fail = 0
        for i in range(60):
            try:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                s.setblocking(False)
                socks.append(s)
            except OSError:
                connect_fail += 1
        trickle = b"X-Slow: a\r\n"
        state = {"closed": set(), "got_data": set(), "stop": False, "i": 0}
        lock = threading.Lock()

        def loop():
            while not state["stop"]:
                byte = trickle[state["i"] % len(trickle):state["i"] % len(trickle) + 1]
                state["i"] += 1
                for idx, s in enumerate(socks):
                    if idx in state["closed"]:
                        continue
                    try:
                        r, _, _ = select.select([s], [], [], 0)
                        if r:
                            d = s.recv(65536)
                            if not d:
                                with lock:
                                    state["closed"].add(idx)
                                continue
                            state["got_data"].add(idx)
                        s.send(byte)
                    except OSError:
                        with lock:
                            state["closed"].add(idx)
                time.sleep(0.5)

        t = threading.Thread(target=loop, daemon=True)
        t0 = time.time()
        t.start()
        results = []
        for at in (2, 12, 32):
            while time.time() - t0 < at:
                time.sleep(0.1)
            ts = time.time()
            try:
                st, _, _ = req(srv.port, "GET", "/healthz", timeout=3)
                ans = f"answered {st} in {time.time()-ts:.2f}s"
            except (OSError, http.client.HTTPException) as e:
                ans = f"NOT answered ({type(e).__name__}) after {time.time()-ts:.2f}s"
            with lock:
                nclosed = len(state["closed"])
            results.append(f"t={at}s: healthz {ans}, server closed {nclosed}/{len(socks)}")
        state["stop"] = True
        t.join()
        out(2, f"(connect failures {connect_fail}; connections that got a response before "
               f"closing: {len(state['got_data'])}; server alive: {srv.alive()}) " + " | ".join(results))
        for s in socks:
            s.close()
    finally:
        srv.stop()


def probe3():
    srv = Server("p3").start()
    try:
        a0 = srv.count("audit_events")
        sent = [0] * 16
        statuses = {}
        lock = threading.Lock()
        end = time.time() + 8

        def worker(k):
            c = None
            while time.time() < end:
                try:
                    if c is None:
                        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                    c.putrequest("GET", "/api/v1/sales-orders", skip_host=True, skip_accept_encoding=True)
                    c.endheaders()
                    r = c.getresponse()
                    r.read()
                    sent[k] += 1
                    with lock:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.will_close:
                        c.close()
                        c = None
                except (OSError, http.client.HTTPException):
                    if c:
                        c.close()
                    c = None
            if c:
                c.close()

        ths = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        total = sum(sent)
        time.sleep(1)
        a1 = srv.count("audit_events")
        # keep waiting while the background writer is still catching up (max 15 s more)
        last, waited = a1, 0
        while waited < 15:
            time.sleep(1)
            waited += 1
            n = srv.count("audit_events")
            if n == last:
                break
            last = n
        out(3, f"sent {total} bare GETs in 8 s (statuses {statuses}); audit_events rows: "
               f"before {a0}, +1 s {a1}, settled {last} (+{last - a0})")
    finally:
        srv.stop()


def probe4():
    srv = Server("p4")
    srv.create_partner()
    srv.start()
    try:
        token = srv.login()
        body = json.dumps(ORDER, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        path = "/api/v1/sales-orders"
        sts = f"{CLIENT_ID}|{ts}|POST|{path}|{hashlib.sha256(body).hexdigest()}"
        raw = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
               f"Authorization: Bearer {token}\r\nX-CLIENT-ID: {CLIENT_ID}\r\nX-TIMESTAMP: {ts}\r\n"
               f"X-SIGNATURE: {sign(sts)}\r\nX-SIGNATURE-VERSION: 2\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n\r\n").encode() + body
        res = []
        for _ in range(3):
            r = raw_exchange(srv.port, raw)
            rb = r.split(b"\r\n\r\n", 1)[-1]
            res.append(f"{status_of(r)}" + (f" {err_code(rb)}" if status_of(r) != 201 else ""))
        time.sleep(1)
        out(4, f"statuses {res}; sales_orders rows {srv.count('sales_orders')}")
    finally:
        srv.stop()


def probe5():
    srv = Server("p5")
    srv.create_partner()
    srv.start()
    try:
        barrier = threading.Barrier(40)
        statuses = {}
        codes = {}
        lock = threading.Lock()
        body = json.dumps({"client_id": CLIENT_ID, "client_secret": "wrong-" + "x" * 37}).encode()

        def one():
            barrier.wait()
            try:
                st, _, b = req(srv.port, "POST", "/api/v1/auth/login", body,
                               {"Content-Type": "application/json"}, timeout=60)
                c = err_code(b)
            except Exception as e:
                st, c = type(e).__name__, None
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
                codes[c] = codes.get(c, 0) + 1

        t0 = time.time()
        ths = [threading.Thread(target=one) for _ in range(40)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        out(5, f"401={statuses.get(401, 0)} 429={statuses.get(429, 0)} all={statuses} "
               f"codes={codes} ({time.time()-t0:.2f}s)")
    finally:
        srv.stop()


def probe6():
    srv = Server("p6")
    srv.create_partner()
    srv.start()
    try:
        token = srv.login()
        srv.cli("partner", "disable", CLIENT_ID)
        srv.cli("partner", "enable", CLIENT_ID)
        time.sleep(1.5)
        ts = str(int(time.time()))
        st, _, b = req(srv.port, "GET", "/api/v1/sales-orders", None,
                       {"Authorization": f"Bearer {token}", "X-CLIENT-ID": CLIENT_ID,
                        "X-TIMESTAMP": ts, "X-SIGNATURE": sign(f"{CLIENT_ID}|{ts}")})
        out(6, f"status {st} code {err_code(b) if st != 200 else '-'}")
    finally:
        srv.stop()


def probe7():
    res = []
    for variant in ("cli-first", "server-first"):
        srv = Server(f"p7{variant[0]}")
        if variant == "cli-first":
            srv.create_partner()
            srv.start()
        else:
            srv.start()
            srv.create_partner()
        try:
            token = srv.login()
            ts = str(int(time.time()))
            body = json.dumps(ORDER).encode()
            st, _, b = req(srv.port, "POST", "/api/v1/sales-orders", body,
                           {"Authorization": f"Bearer {token}", "X-CLIENT-ID": CLIENT_ID,
                            "X-TIMESTAMP": ts, "X-SIGNATURE": sign(f"{CLIENT_ID}|{ts}"),
                            "Content-Type": "application/json"})
            time.sleep(1)
            modes = []
            for suf in ("", "-wal", "-shm"):
                try:
                    modes.append(f"{suf or '.db'}={stat.S_IMODE(os.stat(srv.db + suf).st_mode):04o}")
                except FileNotFoundError:
                    modes.append(f"{suf or '.db'}=absent")
            res.append(f"{variant} (order {st}): " + " ".join(modes))
        finally:
            srv.stop()
    u = os.umask(0)
    os.umask(u)
    out(7, f"umask {u:04o}; " + " | ".join(res))


def probe8():
    srv = Server("p8")
    srv.create_partner()
    srv.start()
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=45)
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n" + b'{"client_i')
        t0 = time.time()
        s.settimeout(1)
        data = b""
        first = None
        while time.time() - t0 < 40:
            try:
                d = s.recv(65536)
            except socket.timeout:
                if data:
                    break   # got something and nothing more for 1 s
                continue
            if not d:
                break
            if first is None:
                first = time.time() - t0
            data += d
        closed_at = time.time() - t0
        s.close()
        if data:
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            rb = data.split(b"\r\n\r\n", 1)[-1]
            out(8, f"'{line}' code {err_code(rb)} after {first:.1f}s")
        else:
            out(8, f"no answer; connection {'closed' if closed_at < 40 else 'still open'} "
                   f"after {closed_at:.1f}s")
    finally:
        srv.stop()


PROBES = [probe1, probe2, probe3, probe4, probe5, probe6, probe7, probe8]
print(f"[{LABEL}] binary {BIN} (--metrics-listen: {'yes' if HAS_METRICS_LISTEN else 'no'})", flush=True)
for i, p in enumerate(PROBES, 1):
    if ONLY and i not in ONLY:
        continue
    try:
        p()
    except Exception as e:
        out(i, f"ERROR {type(e).__name__}: {e}")

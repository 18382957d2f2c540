"""The lake's object store (uploader/store/, docs/storage.md) through `floe-lake store`: one
behavioural suite run against file:// in a temp dir and against a real S3 server (Ceph RGW,
s3.py), plus what only S3 has: SigV4 refusing a wrong secret, retries with backoff against
servers that are down, hang, reset or answer 503/429, storage classes and multipart uploads
checked with an independent client (s3.S3Client), and the server honouring If-None-Match: *.
"""

import hashlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port
from s3 import ceph_s3  # noqa: F401  (fixture)

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part: threshold and part size in these tests


@pytest.fixture
def floe_lake():
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    path = str(Path(bindir) / "floe-lake")
    if not os.access(path, os.X_OK):
        pytest.skip(f"floe-lake is not built ({path})")
    r = subprocess.run([path, "store", "--help"], capture_output=True, text=True)
    if r.returncode != 0 or "usage: floe-lake store" not in r.stdout:
        pytest.skip(f"`floe-lake store --help` failed (exit {r.returncode}): the store "
                    "commands are not wired into floe-lake yet")
    return path


class Store:
    """`floe-lake store [OPTS] URL CMD ...` for one backend; run() -> CompletedProcess."""

    def __init__(self, binary, kind, url, opts, env, s3=None, bucket=None, root=None):
        self.binary, self.kind, self.url, self.opts, self.env = binary, kind, url, opts, env
        self.s3, self.bucket, self.root = s3, bucket, root

    def run(self, *args, input=None, opts=(), env=None, timeout=120, url=None):
        cmd = [self.binary, "store", *self.opts, *opts, url or self.url, *args]
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                              env=env or self.env)

    def ok(self, *args, **kwargs):
        r = self.run(*args, **kwargs)
        assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr.decode()}"
        return r.stdout

    def popen(self, *args, stdin=None):
        return subprocess.Popen([self.binary, "store", *self.opts, self.url, *args], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)

    def listing(self, prefix=None, opts=()):
        out = self.ok("list", *([prefix] if prefix is not None else []), opts=opts).decode()
        return [tuple(line.split("\t")) for line in out.splitlines()]


@pytest.fixture(params=["file", "s3"])
def store(request, floe_lake, tmp_path):
    opts = ["--multipart-threshold", str(PART), "--part-size", str(PART), "--retries", "2",
            "--timeout", "60s"]
    if request.param == "file":
        root = tmp_path / "warehouse"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return Store(floe_lake, "file", f"file://{root}", opts + ["--no-fsync"], env, root=root)
    s3 = request.getfixturevalue("ceph_s3")
    bucket = s3.new_bucket()
    return Store(floe_lake, "s3", f"s3://{bucket}/warehouse",
                 opts + ["--endpoint", s3.endpoint, "--region", s3.region, "--path-style"],
                 s3.env(), s3=s3, bucket=bucket)


def data(n, seed=0):
    """n bytes that differ from seed to seed and from position to position."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n] if n else b""


# -- the behavioural suite: both backends ---------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 2 * PART + 3])
def test_round_trip_across_the_multipart_threshold(store, size, tmp_path):
    body = data(size, size)
    src = tmp_path / "in"
    src.write_bytes(body)
    store.ok("put", "t/data/a.bin", str(src))
    store.ok("stream-put", "t/data/b.bin", input=body)
    for key in ("t/data/a.bin", "t/data/b.bin"):
        got = store.ok("get", key)
        assert len(got) == size and got == body
        assert store.ok("size", key).decode() == f"{size}\n"
    if store.kind == "s3":
        # multipart above the threshold, one PUT at or below it: the ETag says which
        for key in ("t/data/a.bin", "t/data/b.bin"):
            st, h = store.s3.client.head(store.bucket, "warehouse/" + key)
            assert st == 200 and int(h["content-length"]) == size
            parts = (size + PART - 1) // PART
            etag = h["etag"].strip('"')
            if size > PART:
                assert etag.endswith(f"-{parts}"), etag
            else:
                assert "-" not in etag, etag
        assert store.s3.client.multipart_uploads(store.bucket) == []
    else:
        assert sorted(p.name for p in (store.root / "t/data").iterdir()) == ["a.bin", "b.bin"]


def test_ranges(store, tmp_path):
    body = data(PART + 1000, 7)  # on S3 two parts: a range across their boundary
    src = tmp_path / "in"
    src.write_bytes(body)
    store.ok("put", "r/x", str(src))
    for off, n in [(0, 10), (PART - 5, 10), (PART + 990, 100), (len(body), 10), (3, 0)]:
        assert store.ok("range", "r/x", str(off), str(n)) == body[off:off + n]
    r = store.run("range", "r/missing", "0", "10")
    assert r.returncode == 4, r.stderr


def test_put_if_absent_race(store, tmp_path):
    """Processes racing for vN.metadata.json: exactly one wins, the rest exit 3."""
    for rnd in range(4):
        key = f"t/metadata/v{rnd}.metadata.json"
        files = []
        for i in range(6):
            p = tmp_path / f"body-{rnd}-{i}"
            p.write_bytes(f'{{"writer": {i}, "round": {rnd}}}'.encode())
            files.append(p)
        procs = [store.popen("put-if-absent", key, str(p)) for p in files]
        codes = [(p.wait(timeout=60), p.stderr.read().decode()) for p in procs]
        winners = [i for i, (c, _) in enumerate(codes) if c == 0]
        assert len(winners) == 1, codes
        for i, (c, err) in enumerate(codes):
            if i != winners[0]:
                assert c == 3, err
                assert key in err
        assert store.ok("get", key) == files[winners[0]].read_bytes()
    # and one more after the race: still refused, content unchanged
    r = store.run("put-if-absent", key, str(files[0]))
    assert r.returncode == 3
    if store.kind == "s3":
        assert b"412 PreconditionFailed" in r.stderr


SPECIAL_KEYS = [
    "t/data/tenant=acme/hour=2024-01-31-12/part 0.parquet",
    "t/data/a+b/c=d&e/f.parquet",
    "t/data/\u00e9t\u00e9/\u65e5\u672c/\U0001F600.bin",
    "t/data/sp ace/~tilde/%25/x'y(z)!*.bin",
    "t/data/plus+/equals=/semi;colon,comma@at$dollar.bin",
]


def test_special_keys(store):
    for i, key in enumerate(SPECIAL_KEYS):
        store.ok("put", key, "-", input=f"value {i}".encode())
    for i, key in enumerate(SPECIAL_KEYS):
        assert store.ok("get", key) == f"value {i}".encode()
    listed = [k for k, _, _ in store.listing("t/data/")]
    assert listed == sorted(SPECIAL_KEYS, key=lambda k: k.encode())
    if store.kind == "s3":
        # the independent client finds them under the same names
        for i, key in enumerate(SPECIAL_KEYS):
            assert store.s3.client.get(store.bucket, "warehouse/" + key) == f"value {i}".encode()
    for key in SPECIAL_KEYS:
        store.ok("delete", key)
    assert store.listing("t/") == []


def test_list_paging_and_prefixes(store):
    keys = [f"p/data/k={i:02d}/f.bin" for i in range(23)] + ["p/data.json", "p/dat", "q/x"]
    for k in keys:
        store.ok("put", k, "-", input=k.encode())
    want = sorted(keys, key=lambda k: k.encode())
    # more keys than a page (4 per request): every key once, in order
    got = store.listing(opts=["--page-size", "4"])
    assert [k for k, _, _ in got] == want
    assert all(int(size) == len(k) for k, size, _ in got)
    assert all(int(mtime) > 1_600_000_000_000 for _, _, mtime in got)
    assert [k for k, _, _ in store.listing("p/data/", opts=["--page-size", "4"])] == \
        [k for k in want if k.startswith("p/data/")]
    # a prefix that ends inside a name, as S3 defines it
    assert [k for k, _, _ in store.listing("p/dat")] == [k for k in want if k.startswith("p/dat")]
    assert store.listing("nothing/") == []


def test_missing_keys_delete_and_bad_keys(store):
    r = store.run("get", "t/nope")
    assert r.returncode == 4
    assert b"t/nope" in r.stderr
    assert store.run("size", "t/nope").returncode == 4
    store.ok("delete", "t/nope")  # not an error
    store.ok("put", "t/k", "-", input=b"v")
    store.ok("delete", "t/k")
    assert store.run("get", "t/k").returncode == 4
    for bad in ["/abs", "a//b", "a/../b", "trailing/", "a/./b"]:
        r = store.run("put", bad, "-", input=b"v")
        assert r.returncode == 1 and b"invalid key" in r.stderr, (bad, r.stderr)


def test_locations(store):
    loc = store.ok("location", "t/metadata/v1.metadata.json").decode().strip()
    if store.kind == "s3":
        assert loc == f"s3://{store.bucket}/warehouse/t/metadata/v1.metadata.json"
        alt = loc.replace("s3://", "s3a://")
    else:
        assert loc == f"file://{store.root}/t/metadata/v1.metadata.json"
        alt = loc.replace("file://", "file:")
    assert store.ok("key", loc).decode().strip() == "t/metadata/v1.metadata.json"
    assert store.ok("key", alt).decode().strip() == "t/metadata/v1.metadata.json"
    r = store.run("key", "s3://elsewhere/warehouse/x")
    assert r.returncode == 1 and b"outside this store" in r.stderr


def test_get_size_limit(store):
    store.ok("put", "t/big", "-", input=data(100_000))
    r = store.run("get", "t/big", opts=["--max-size", "99999"])
    assert r.returncode == 1 and b"t/big" in r.stderr
    assert store.ok("get", "t/big", opts=["--max-size", "100000"]) == data(100_000)


# -- file:// only ---------------------------------------------------------------------------

def test_file_layout(floe_lake, tmp_path):
    root = tmp_path / "wh"
    s = Store(floe_lake, "file", f"file://{root}", [], dict(os.environ))
    s.ok("put", "a/b/c/d.bin", "-", input=b"x")
    s.ok("put-if-absent", "a/b/v1.metadata.json", "-", input=b"{}")
    assert (root / "a/b/c/d.bin").read_bytes() == b"x"
    mode = (root / "a/b/c/d.bin").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044 & ~current_umask()
    # nothing but the objects: temp files are renamed or removed
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == \
        ["a", "a/b", "a/b/c", "a/b/c/d.bin", "a/b/v1.metadata.json"]
    assert s.run("set-class", "a/b/c/d.bin", "GLACIER").returncode == 1
    # a relative path is not a file:// URL
    assert s.run("list", url="file://relative").returncode == 2


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


# -- S3 only: credentials, retries, storage classes -----------------------------------------

@pytest.fixture
def s3store(floe_lake, ceph_s3):
    bucket = ceph_s3.new_bucket()
    return Store(floe_lake, "s3", f"s3://{bucket}/w",
                 ["--endpoint", ceph_s3.endpoint, "--path-style", "--retries", "2"],
                 ceph_s3.env(), s3=ceph_s3, bucket=bucket)


def test_wrong_secret_is_refused(s3store):
    s3store.ok("put", "t/x", "-", input=b"v")
    wrong = "wrong" + s3store.s3.secret_key[5:]
    for cmd in (["get", "t/x"], ["put", "t/y", "-"]):
        r = s3store.run(*cmd, input=b"v", env=s3store.s3.env(AWS_SECRET_ACCESS_KEY=wrong))
        err = r.stderr.decode()
        assert r.returncode == 1, err
        assert f"{s3store.bucket}/w/t/" in err and "403 SignatureDoesNotMatch" in err, err
        assert wrong not in err and s3store.s3.secret_key not in err
        assert "after retries" not in err  # a 403 is not retried
    r = s3store.run("get", "t/x", env=s3store.s3.env(AWS_ACCESS_KEY_ID="AKIANOSUCHKEY0000000"))
    assert r.returncode == 1 and b"403 InvalidAccessKeyId" in r.stderr


def test_credentials_file_and_profile(s3store, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n\n"
                     f"[lake]\naws_access_key_id = {s3store.s3.access_key}\n"
                     f"aws_secret_access_key = {s3store.s3.secret_key}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    opts = ["--credentials-file", str(creds)]
    s3store.ok("put", "t/c", "-", input=b"v", env=env, opts=opts + ["--profile", "lake"])
    r = s3store.run("get", "t/c", env=env, opts=opts)  # [default] holds other keys
    assert r.returncode == 1 and b"403" in r.stderr
    r = s3store.run("get", "t/c", env=env, opts=opts + ["--profile", "nope"])
    assert r.returncode == 1 and b"no such profile" in r.stderr
    assert s3store.s3.secret_key.encode() not in r.stderr
    assert s3store.ok("get", "t/c", env=dict(env, AWS_PROFILE="lake"), opts=opts) == b"v"


def test_storage_classes(s3store, tmp_path):
    c = s3store.s3.client
    s3store.ok("put", "t/ia", "-", input=b"warm", opts=["--storage-class", "STANDARD_IA"])
    big = tmp_path / "big"
    big.write_bytes(data(PART + 1, 3))
    s3store.ok("put", "t/ia-multipart", str(big),
               opts=["--storage-class", "STANDARD_IA", "--multipart-threshold", str(PART),
                     "--part-size", str(PART)])
    s3store.ok("put", "t/std", "-", input=b"hot")
    for key, want in [("t/ia", "STANDARD_IA"), ("t/ia-multipart", "STANDARD_IA"),
                      ("t/std", None)]:
        st, h = c.head(s3store.bucket, "w/" + key)
        assert st == 200 and h.get("x-amz-storage-class") == want, (key, h)
    assert c.head(s3store.bucket, "w/t/ia-multipart")[1]["etag"].strip('"').endswith("-2")
    # tiering an existing object: a copy onto itself, bytes and key unchanged
    s3store.ok("set-class", "t/std", "GLACIER")
    st, h = c.head(s3store.bucket, "w/t/std")
    assert h.get("x-amz-storage-class") == "GLACIER"
    assert c.get(s3store.bucket, "w/t/std") == b"hot"
    s3store.ok("set-class", "t/std", "GLACIER")  # already: nothing to do
    s3store.ok("set-class", "t/ia-multipart", "STANDARD")
    st, h = c.head(s3store.bucket, "w/t/ia-multipart")
    assert h.get("x-amz-storage-class") in (None, "STANDARD")
    assert s3store.ok("get", "t/ia-multipart") == data(PART + 1, 3)
    r = s3store.run("put", "t/bad", "-", input=b"x", opts=["--storage-class", "NO_SUCH_CLASS"])
    assert r.returncode == 1 and b"400 InvalidArgument" in r.stderr, r.stderr
    assert s3store.run("set-class", "t/missing", "GLACIER").returncode == 4


def test_server_honours_if_none_match(s3store):
    """The create-if-absent that metadata commits rely on is the server's, not ours."""
    s3store.ok("put-if-absent", "t/metadata/v1.metadata.json", "-", input=b"{}")
    st, _, body = s3store.s3.client.request("PUT", s3store.bucket, "w/t/metadata/v1.metadata.json",
                                            body=b"other", headers={"If-None-Match": "*"})
    assert st == 412, body
    assert s3store.ok("get", "t/metadata/v1.metadata.json") == b"{}"


# -- retries against servers that fail ------------------------------------------------------

class FakeServer:
    """A loopback TCP server with a behaviour per connection: 'hang' (accept, never answer),
    'reset' (accept, close), or an HTTP status with an S3 error body. Counts connections."""

    def __init__(self, behaviour, status=503, code="SlowDown"):
        self.behaviour, self.status, self.code = behaviour, status, code
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.held = []
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.behaviour == "hang":
                self.held.append(c)
                continue
            if self.behaviour == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                c.close()
                continue
            c.settimeout(5)
            try:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{self.code}"
                        f"</Code><Message>m</Message></Error>").encode()
                c.sendall(f"HTTP/1.1 {self.status} X\r\nContent-Type: application/xml\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                          + body)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def fake_store(floe_lake, tmp_path):
    servers = []

    def make(behaviour, retries, timeout="1s", **kw):
        srv = FakeServer(behaviour, **kw)
        servers.append(srv)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")
               and k.lower() not in ("http_proxy", "all_proxy")}
        env.update(AWS_ACCESS_KEY_ID="AKIAFAKE", AWS_SECRET_ACCESS_KEY="fake-secret")
        return srv, Store(floe_lake, "s3", "s3://bucket/w",
                          ["--endpoint", f"http://127.0.0.1:{srv.port}", "--path-style",
                           "--retries", str(retries), "--timeout", timeout], env)

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("status,code", [(503, "SlowDown"), (500, "InternalError"),
                                         (429, "TooManyRequests")])
def test_retries_on_server_errors(fake_store, status, code):
    srv, s = fake_store("http", 3, status=status, code=code)
    t0 = time.monotonic()
    r = s.run("get", "t/x")
    took = time.monotonic() - t0
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert f"GET bucket/w/t/x: {status} {code} (after retries)" in err
    assert srv.connections == 4  # the first attempt and 3 retries
    assert took < 0.1 + 0.2 + 0.4 + 3  # backoff ceilings 100, 200, 400 ms, plus slack


def test_no_retry_on_client_errors(fake_store):
    srv, s = fake_store("http", 3, status=403, code="AccessDenied")
    r = s.run("get", "t/x")
    assert r.returncode == 1 and b"403 AccessDenied" in r.stderr
    assert srv.connections == 1


def test_retries_on_resets(fake_store):
    srv, s = fake_store("reset", 2)
    r = s.run("put", "t/x", "-", input=b"v")
    assert r.returncode == 1 and b"after retries" in r.stderr, r.stderr
    assert srv.connections == 3


def test_hanging_server_times_out_within_the_bound(fake_store):
    srv, s = fake_store("hang", 1, timeout="1s")
    t0 = time.monotonic()
    r = s.run("get", "t/x", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert b"timed out" in r.stderr.lower(), r.stderr
    assert srv.connections == 2
    assert 2.0 <= took < 2.0 + 0.1 + 2.0  # two 1 s attempts, one backoff of at most 100 ms


def test_server_down(floe_lake):
    port = free_port()  # nothing listens there
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIAFAKE", AWS_SECRET_ACCESS_KEY="x")
    s = Store(floe_lake, "s3", "s3://bucket/w",
              ["--endpoint", f"http://127.0.0.1:{port}", "--path-style", "--retries", "2"], env)
    t0 = time.monotonic()
    r = s.run("list")
    assert r.returncode == 1
    assert b"Couldn't connect" in r.stderr or b"connect" in r.stderr.lower(), r.stderr
    assert b"after retries" in r.stderr
    assert time.monotonic() - t0 < 5

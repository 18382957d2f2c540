"""A throw-away S3 server (Ceph RGW 16.2 from Debian) on 127.0.0.1, and an independent S3 client.

    from s3 import ceph_s3  # noqa: F401  (pytest fixture, one server per test module)

    def test_x(ceph_s3):
        bucket = ceph_s3.new_bucket()            # a fresh bucket
        ceph_s3.endpoint, ceph_s3.region         # http://127.0.0.1:PORT, us-east-1
        ceph_s3.env()                            # AWS_ACCESS_KEY_ID/... for a child process
        st, headers, body = ceph_s3.client.request("HEAD", bucket, "key")
        ceph_s3.client.storage_class(bucket, "key")   # "STANDARD", "COLD", ...
        ceph_s3.requests("PUT", bucket, "lifecycle")  # requests RGW logged (its access log)

    from s3 import ceph_s3_lifecycle  # the same with a lifecycle "day" of LC_DAY seconds

The server is started by start-s3.sh (from the Ceph RGW notes of the project's test-server reference: one
mon, one memstore OSD, one radosgw; ready in 2-5 s, RSS ~150 MiB). It checks SigV4 signatures and
body hashes, honours If-None-Match: * (412) and x-amz-storage-class (classes STANDARD_IA,
GLACIER, COLD, ... are configured). ceph_s3_lifecycle runs its lifecycle worker all day with a
"day" of LC_DAY seconds (rgw_lc_debug_interval), so transitions happen within a test. Tests are
skipped with the reason when the Ceph packages are not installed (Debian: ceph-mon ceph-osd
radosgw uuid-runtime curl).

S3Client signs with SigV4 in ~40 lines of Python (hashlib/hmac), written from the AWS
documentation and independent of the C code under test: it creates buckets and checks what the
C client wrote (HEAD for storage classes, ETags, in-progress multipart uploads).
"""

import datetime
import hashlib
import hmac
import http.client
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from conftest import free_port

SCRIPT = Path(__file__).with_name("start-s3.sh")
NEEDED = ["ceph", "ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "uuidgen",
          "curl"]
PACKAGES = "ceph-mon ceph-osd radosgw uuid-runtime curl"


def available():
    """None if Ceph RGW can be started here, else why not."""
    missing = [b for b in NEEDED if not shutil.which(b)]
    if missing:
        return (f"Ceph RGW is not installed (no {', '.join(missing)}): apt-get install "
                f"--no-install-recommends {PACKAGES}")
    return None


class S3Client:
    """Path-style S3 requests signed with SigV4 (AWS "Authenticating Requests: Using the
    Authorization Header"), the payload hash sent as x-amz-content-sha256."""

    def __init__(self, endpoint, region, access_key, secret_key):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port
        self.netloc = u.netloc
        self.region, self.access_key, self.secret_key = region, access_key, secret_key

    @staticmethod
    def _enc(s, safe):
        return urllib.parse.quote(s, safe=safe)  # keeps A-Za-z0-9-._~ and safe

    def request(self, method, bucket, key=None, query=None, body=b"", headers=None):
        """-> (status, {lower-case header: value}, body bytes)."""
        path = "/" + bucket + ("/" + self._enc(key, "/~") if key is not None else "")
        q = "&".join(f"{self._enc(k, '~')}={self._enc(v, '~')}"
                     for k, v in sorted((query or {}).items()))
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        h = {"host": self.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload}
        h.update({k.lower(): str(v).strip() for k, v in (headers or {}).items()})
        names = sorted(h)
        canonical = "\n".join([method, path, q, "".join(f"{n}:{h[n]}\n" for n in names),
                               ";".join(names), payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path + ("?" + q if q else ""), body=body or None, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def create_bucket(self, bucket):
        st, _, body = self.request("PUT", bucket)
        assert st == 200, f"CreateBucket {bucket}: {st} {body[:300]!r}"

    def head(self, bucket, key):
        st, h, _ = self.request("HEAD", bucket, key)
        return st, h

    def get(self, bucket, key):
        st, _, body = self.request("GET", bucket, key)
        assert st == 200, f"GET {bucket}/{key}: {st} {body[:300]!r}"
        return body

    def storage_class(self, bucket, key):
        """The object's class from HEAD's x-amz-storage-class (absent: STANDARD)."""
        st, h = self.head(bucket, key)
        assert st == 200, f"HEAD {bucket}/{key}: {st}"
        return h.get("x-amz-storage-class", "STANDARD")

    def multipart_uploads(self, bucket):
        """Keys of the bucket's multipart uploads in progress (ListMultipartUploads)."""
        st, _, body = self.request("GET", bucket, query={"uploads": ""})
        assert st == 200, f"ListMultipartUploads: {st} {body[:300]!r}"
        import xml.etree.ElementTree as ET
        root = ET.fromstring(body)
        return [e.text for e in root.iter() if e.tag.endswith("}Key") or e.tag == "Key"]


class CephS3:
    """start-s3.sh start/stop in a temp dir; endpoint, region, access_key, secret_key, client."""

    def __init__(self, env=None):
        self.extra_env = dict(env or {})
        self.base = Path(tempfile.mkdtemp(prefix="floe-s3-"))
        self.state = self.base / "state"
        self.endpoint = self.region = self.access_key = self.secret_key = None
        self.client = None
        self.buckets = 0
        self.running = False

    def start(self):
        last = ""
        for _ in range(3):
            port = free_port()
            if port > 65000 - 41:
                continue
            r = subprocess.run(["sh", str(SCRIPT), "start", str(self.state), str(port)],
                               capture_output=True, text=True, timeout=180,
                               env=dict(os.environ, S3_ACCESS_KEY="AKIAFLOETEST" +
                                        secrets.token_hex(4).upper(),
                                        S3_SECRET_KEY=secrets.token_urlsafe(30),
                                        **self.extra_env))
            if r.returncode == 0:
                env = dict(line.split("=", 1) for line in r.stdout.split())
                self.endpoint, self.region = env["S3_ENDPOINT"], env["S3_REGION"]
                self.access_key, self.secret_key = env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]
                self.client = S3Client(self.endpoint, self.region, self.access_key,
                                       self.secret_key)
                self.running = True
                return self
            last = r.stderr
            if "in use" not in last:
                break
        pytest.fail(f"Ceph RGW did not start:\n{last[-3000:]}", pytrace=False)

    def stop(self):
        if self.running:
            subprocess.run(["sh", str(SCRIPT), "stop", str(self.state)], capture_output=True,
                           timeout=60)
            self.running = False

    def close(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def new_bucket(self):
        self.buckets += 1
        name = f"floe-test-{self.buckets}-{secrets.token_hex(3)}"
        self.client.create_bucket(name)
        return name

    def env(self, **extra):
        """The environment of a child process that uses this server's credentials."""
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("AWS_") and k.lower() not in ("http_proxy", "all_proxy")}
        e.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        e.update(extra)
        return e

    def requests(self, method, bucket, query=None):
        """The requests RGW's access log (beast, debug_rgw 1) holds for a bucket: lines of
        '"METHOD /bucket[?query...] HTTP/1.1" STATUS' as (path, status), optionally only those
        whose query names the given subresource ("lifecycle")."""
        log = self.state / "log" / "client.rgw.gw.log"
        pat = re.compile(r'"(\S+) (/[^ ?]+)(\?\S*)? HTTP/1\.\d" (\d{3})')
        out = []
        for line in log.read_text(errors="replace").splitlines():
            m = pat.search(line)
            if not m or m.group(1) != method or m.group(2) != "/" + bucket:
                continue
            q = (m.group(3) or "").lstrip("?")
            if query is None or query in [p.split("=", 1)[0] for p in q.split("&")]:
                out.append((m.group(2) + (m.group(3) or ""), int(m.group(4))))
        return out

    def log_tail(self, lines=40):
        out = []
        for p in sorted((self.state / "log").glob("*.log")):
            try:
                out.append(f"---- {p.name}\n" + "\n".join(
                    p.read_text(errors="replace").splitlines()[-lines:]))
            except OSError:
                pass
        return "\n".join(out)


@pytest.fixture(scope="module")
def ceph_s3():
    why = available()
    if why:
        pytest.skip(why)
    server = CephS3()
    try:
        yield server.start()
    finally:
        server.close()


LC_DAY = 10  # seconds: a lifecycle "day" of ceph_s3_lifecycle


@pytest.fixture(scope="module")
def ceph_s3_lifecycle():
    """Ceph RGW whose lifecycle worker runs all day, with a "day" of LC_DAY seconds
    (rgw_lc_debug_interval: objects older than N * LC_DAY seconds have N days)."""
    why = available()
    if why:
        pytest.skip(why)
    server = CephS3(env={"S3_LC_DEBUG_INTERVAL": str(LC_DAY)})
    server.lc_day = LC_DAY
    try:
        yield server.start()
    finally:
        server.close()

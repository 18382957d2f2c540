"""A throw-away test PKI made with the openssl CLI (Debian's OpenSSL 3), files in one directory.

    pki = PKI(tmp_path / "pki")          # root CA, device-issuing intermediate, broker cert, CRL
    dev = pki.device("acme.gw-0001")     # CN=acme.gw-0001, O=acme, clientAuth, by the intermediate
    dev.cert, dev.key, dev.leaf          # chain (leaf + intermediate), private key (0600), leaf
    dev.tls                              # kwargs for paho's Client.tls_set / floe_mqtt's tls=
    pki.device("acme.gw-0002", validity="expired")    # or "future" (not yet valid)
    pki.service()                        # CN=floe-uploader, for the uploader / test consumer
    pki.revoke("acme.gw-0001")           # revoke every certificate of that CN, rewrite pki.crl
    pki.revoke_one(dev)                  # revoke just that certificate (after a rotation)

Layout: root CA (EC P-256, self-signed) -> intermediate "floe test device CA" (CA:TRUE,
pathlen:0) -> device and service certificates; the broker's server certificate comes from the
root (SAN DNS:localhost, IP:127.0.0.1, serverAuth). `openssl ca` keeps a database per CA, so
certificates can have any validity window and can be revoked; pki.crl holds a fresh CRL of
both CAs (the broker's crlfile). Thread-safe; every openssl call is a subprocess.
"""

import datetime
import os
import re
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

OPENSSL = os.environ.get("OPENSSL", "openssl")
SERVICE_NAME = "floe-uploader"
IDENTITY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9-]{0,62}")
VALIDITIES = ("valid", "expired", "future")
BACKDATE = datetime.timedelta(hours=1)  # tolerate small clock differences
CERT_LIFETIME = datetime.timedelta(days=30)
CRL_DAYS = 30

CONFIG = """\
# written by tests/system/pki.py
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ root_ca ]
dir = {root}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/cert.pem
private_key = $dir/key.pem
default_md = sha256
default_days = 3650
default_crl_days = {crl_days}
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = ext_crl

[ int_ca ]
dir = {int}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/cert.pem
private_key = $dir/key.pem
default_md = sha256
default_days = 30
default_crl_days = {crl_days}
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = ext_crl

[ policy_any ]
commonName = supplied
organizationName = optional

[ ext_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ ext_int ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_crl ]
authorityKeyIdentifier = keyid:always
"""


class PKIError(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    """One issued certificate: cert is the chain file to present (leaf + intermediate)."""

    name: str
    cert: str
    key: str
    leaf: str
    ca: str
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def tls(self):
        """Keyword arguments for paho's Client.tls_set (and floe_mqtt's tls=): verify the
        broker and its name, TLS 1.2 or later."""
        return {"ca_certs": self.ca, "certfile": self.cert, "keyfile": self.key,
                "tls_version": ssl.PROTOCOL_TLS_CLIENT}


def _asn1_time(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def _subject_value(s):
    if not s or any(c in s for c in "\0\n\r"):
        raise ValueError(f"unusable subject value {s!r}")
    return s.replace("\\", "\\\\").replace("/", "\\/")


def _write_private(path, data):
    """Write a file that only its owner can read, without a moment of wider permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


class PKI:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._lock = threading.RLock()
        self._issued = {}  # (name, validity) -> Credentials, for the default windows
        self._by_name = {}  # name -> [Credentials], everything issued
        self._revoked = set()  # serials
        self._count = 0
        self.root_dir = self.dir / "root"
        self.int_dir = self.dir / "int"
        self.certs_dir = self.dir / "certs"
        self.config = self.dir / "openssl.cnf"
        for d in (self.root_dir, self.int_dir):
            (d / "newcerts").mkdir(parents=True, exist_ok=True)
            (d / "index.txt").write_text("")
            (d / "serial").write_text("1000\n")
            (d / "crlnumber").write_text("1000\n")
        self.certs_dir.mkdir(exist_ok=True)
        self.config.write_text(CONFIG.format(root=self.root_dir, int=self.int_dir,
                                             crl_days=CRL_DAYS))
        self.root_cert = str(self.root_dir / "cert.pem")
        self.root_key = str(self.root_dir / "key.pem")
        self.int_cert = str(self.int_dir / "cert.pem")
        self.int_key = str(self.int_dir / "key.pem")
        self.ca = self.root_cert  # what clients trust to verify the broker
        self.broker_cafile = str(self.dir / "broker-ca.pem")  # root + intermediate
        self.crl = str(self.dir / "crl.pem")
        self.server_cert = str(self.certs_dir / "server.pem")
        self.server_key = str(self.certs_dir / "server.key")
        self._make_cas()
        self._make_server()
        self.write_crl()

    # -- openssl ------------------------------------------------------------------------

    def openssl(self, *args, input=None):
        r = subprocess.run([OPENSSL, *map(str, args)], input=input, capture_output=True,
                           timeout=30)
        if r.returncode != 0:
            raise PKIError(f"openssl {' '.join(map(str, args))}: exit {r.returncode}\n"
                           f"{r.stderr.decode(errors='replace')}")
        return r.stdout

    def _genkey(self, path):
        pem = self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        _write_private(path, pem)

    def _csr(self, key, subject):
        return self.openssl("req", "-new", "-config", self.config, "-key", key, "-subj",
                            subject)

    def _sign(self, ca, csr, out, ext, not_before, not_after, selfsign=False):
        """Issue with `openssl ca` (its database makes revocation and CRLs possible)."""
        csr_path = self.dir / f"tmp-{self._count}.csr"
        self._count += 1
        csr_path.write_bytes(csr)
        try:
            self.openssl("ca", "-batch", "-notext", "-config", self.config, "-name", ca,
                         "-extensions", ext, "-startdate", _asn1_time(not_before),
                         "-enddate", _asn1_time(not_after), "-in", csr_path, "-out", out,
                         *(["-selfsign"] if selfsign else []))
        finally:
            csr_path.unlink()
        return self.openssl("x509", "-noout", "-serial", "-in", out).decode().strip() \
            .split("=", 1)[1]

    def _make_cas(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        years = datetime.timedelta(days=3650)
        self._genkey(self.root_key)
        self._sign("root_ca", self._csr(self.root_key, "/CN=floe test root CA/O=floe-test"),
                   self.root_cert, "ext_root", now - BACKDATE, now + years, selfsign=True)
        self._genkey(self.int_key)
        self._sign("root_ca", self._csr(self.int_key, "/CN=floe test device CA/O=floe-test"),
                   self.int_cert, "ext_int", now - BACKDATE, now + years)
        Path(self.broker_cafile).write_bytes(Path(self.root_cert).read_bytes() +
                                             Path(self.int_cert).read_bytes())

    def _make_server(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        self._genkey(self.server_key)
        self._sign("root_ca", self._csr(self.server_key, "/CN=localhost/O=floe-test"),
                   self.server_cert, "ext_server", now - BACKDATE, now + CERT_LIFETIME)

    # -- leaves -------------------------------------------------------------------------

    def issue(self, cn, org=None, validity="valid", not_before=None, not_after=None):
        """Issue a fresh client certificate from the intermediate. validity: "valid" (now-1h
        .. now+30d), "expired" (ended a day ago) or "future" (starts in a day); not_before /
        not_after (aware datetimes) override the window."""
        if validity not in VALIDITIES:
            raise ValueError(f"validity must be one of {VALIDITIES}")
        now = datetime.datetime.now(datetime.timezone.utc)
        day = datetime.timedelta(days=1)
        nb, na = {"valid": (now - BACKDATE, now + CERT_LIFETIME),
                  "expired": (now - 2 * day, now - day),
                  "future": (now + day, now + day + CERT_LIFETIME)}[validity]
        nb = not_before or nb
        na = not_after or na
        subject = f"/CN={_subject_value(cn)}" + (f"/O={_subject_value(org)}" if org else "")
        with self._lock:
            stem = self.certs_dir / f"leaf-{len(self._by_name.get(cn, []))}-" \
                f"{re.sub(r'[^A-Za-z0-9.-]', '_', cn)[:80]}-{validity}"
            key, leaf, chain = (str(stem) + ".key", str(stem) + ".pem",
                                str(stem) + ".chain.pem")
            self._genkey(key)
            serial = self._sign("int_ca", self._csr(key, subject), leaf, "ext_client", nb, na)
            Path(chain).write_bytes(Path(leaf).read_bytes() + Path(self.int_cert).read_bytes())
            creds = Credentials(cn, chain, key, leaf, self.ca, serial, nb, na)
            self._by_name.setdefault(cn, []).append(creds)
            return creds

    def device(self, identity, validity="valid", strict=True):
        """The certificate of a device identity <tenant>.<device> (CN=identity, O=tenant),
        made on first use and reused for the same (identity, validity). strict=False allows
        any CN (for tests of hostile names); O is then the part before the first dot."""
        if strict and not IDENTITY_RE.fullmatch(identity):
            raise ValueError(f"{identity!r} is not a floe identity <tenant>.<device>")
        with self._lock:
            got = self._issued.get((identity, validity))
            if got is None or got.serial in self._revoked:
                got = self.issue(identity, org=identity.split(".", 1)[0] or None,
                                 validity=validity)
                self._issued[(identity, validity)] = got
            return got

    def service(self, name=SERVICE_NAME):
        """The uploader's certificate (CN=floe-uploader by default), from the intermediate."""
        with self._lock:
            got = self._issued.get((name, "service"))
            if got is None or got.serial in self._revoked:
                got = self.issue(name, org="floe-test")
                self._issued[(name, "service")] = got
            return got

    # -- revocation ---------------------------------------------------------------------

    def revoke(self, name):
        """Revoke every certificate issued so far for CN name and rewrite the CRL file.
        Returns the serials revoked now. A later device(name) issues a new certificate."""
        with self._lock:
            creds = [c for c in self._by_name.get(name, []) if c.serial not in self._revoked]
            if not creds:
                raise KeyError(f"no unrevoked certificate for {name!r}")
            for c in creds:
                self.openssl("ca", "-config", self.config, "-name", "int_ca", "-revoke",
                             c.leaf, "-crl_reason", "keyCompromise")
                self._revoked.add(c.serial)
            self.write_crl()
            return [c.serial for c in creds]

    def revoke_one(self, creds):
        """Revoke one certificate (e.g. the one a rotation replaced), rewrite the CRL file
        and return its serial. Other certificates of the same CN stay valid."""
        with self._lock:
            if creds.serial not in self._revoked:
                self.openssl("ca", "-config", self.config, "-name", "int_ca", "-revoke",
                             creds.leaf, "-crl_reason", "superseded")
                self._revoked.add(creds.serial)
            self.write_crl()
            return creds.serial

    def revoked(self, serial):
        return serial in self._revoked

    def write_crl(self):
        """Regenerate the CRLs of both CAs into pki.crl (replaced atomically)."""
        with self._lock:
            pem = b"".join(self.openssl("ca", "-config", self.config, "-name", ca, "-gencrl",
                                        "-crldays", CRL_DAYS)
                           for ca in ("int_ca", "root_ca"))
            tmp = self.crl + ".tmp"
            Path(tmp).write_bytes(pem)
            os.replace(tmp, self.crl)
            return self.crl

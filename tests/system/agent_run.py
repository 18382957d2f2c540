"""Run a real floe-agent for system tests: its configuration, start, kill -9, stop,
and what its metrics file says."""
import os
import signal
import struct
import subprocess
import time
from pathlib import Path


def conf_text(sections):
    out = []
    for name, keys in sections.items():
        out.append("[%s]" % name)
        out.extend("%s = %s" % (k, v) for k, v in keys.items())
        out.append("")
    return "\n".join(out)


class Agent:
    def __init__(self, binary, workdir, identity="acme.gw-0001", local=None, central=None,
                 creds=None, extra=None):
        self.binary = str(binary)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.conf = self.dir / "agent.conf"
        self.log_path = self.dir / "agent.log"
        self.proc = None
        self.starts = 0
        sections = {
            "agent": {"identity": identity, "state_dir": self.state, "board": "sim",
                      "tick": "50ms"},
            "local": {"enabled": "true" if local else "false"},
            "uplink": {"enabled": "true" if central else "false"},
            "batch": {"max_age": "300ms"},
            "window": {"length": "2s", "grace": "500ms"},
            "ring": {"size": "8MiB", "sync": "none"},
            "outbox": {"sync": "none"},
            "metrics": {"interval": "200ms"},
            "board.sim": {"sensors": 1, "metrics": 1, "interval": "1h"},
        }
        if local:
            sections["local"].update({"host": local.host, "port": local.port})
        if central:
            sections["uplink"].update({
                "host": "localhost", "port": central.port, "ca_file": creds.ca,
                "cert_file": creds.cert, "key_file": creds.key, "ack_timeout": "3s",
                "backoff_min": "100ms", "backoff_max": "1s", "status_interval": "1s"})
        for name, keys in (extra or {}).items():
            sections.setdefault(name, {}).update(keys)
        self.conf.write_text(conf_text(sections))

    def start(self):
        log = open(self.log_path, "ab")
        env = dict(os.environ, FLOE_LOG_TARGET="stderr")
        self.proc = subprocess.Popen([self.binary, "--config", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
        log.close()
        self.starts += 1
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, timeout=20):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=timeout)
            self.proc = None
            return rc
        return None

    def metrics(self):
        path = self.state / "floe-agent.prom"
        out = {}
        if not path.exists():
            return out
        for line in path.read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def wait_metric(self, name, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.metric(name)
            if predicate(v):
                return v
            time.sleep(0.1)
        raise AssertionError("%s never satisfied the condition (last %r)\n%s" % (
            name, self.metric(name), self.log_tail()))

    def log_tail(self, n=40):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # -- additions for the enrollment tests (test_agent_enroll.py) ----------------------

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text, timeout=30, start=0, count=1):
        """Waits until text appears count times in the log after offset start."""
        deadline = time.monotonic() + timeout
        while self.log_text()[start:].count(text) < count:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("agent exited with %s waiting for %r:\n%s" % (
                    self.proc.returncode, text, self.log_tail(60)))
            if time.monotonic() > deadline:
                raise AssertionError("%r not in the agent log:\n%s" % (text, self.log_tail(60)))
            time.sleep(0.05)

    def command(self, *args, timeout=60, env=None):
        """floe-agent ARGS --config <this agent's config>: (rc, stdout, stderr)."""
        e = dict(os.environ, FLOE_LOG_TARGET="stderr", **(env or {}))
        r = subprocess.run([self.binary, *map(str, args), "--config", str(self.conf)],
                           capture_output=True, text=True, timeout=timeout, env=e)
        return r.returncode, r.stdout, r.stderr

    # -- additions for the uploader storms (test_uploader.py, test_uploader_scale.py) -----

    def ring_path(self):
        return self.state / "ring"

    def ring_header(self):
        """The ring file's header (docs/ring.md §2), or None while there is no ring.

        next_seq is the sequence number of the next reading: every reading the ring ever
        accepted took one, in order, starting at 0 in a new ring file. The header lives in the
        shared mapping, so kill -9 keeps it (the page cache holds every store), and recovery
        sets it to the end of the records it walks. So for a ring file that was never replaced
        (the same ring_id) next_seq counts the readings this agent accepted over all its runs,
        which its floe_agent_readings_accepted_total (one run's, written periodically) cannot.
        """
        try:
            with open(self.ring_path(), "rb") as f:
                data = f.read(104)
        except FileNotFoundError:
            return None
        if len(data) < 104 or data[:8] != b"FLOERING":
            return None
        (version, _, file_size, ring_id, created_us, _, _, head, next_seq, events_cursor,
         agg_cursor, watermark_us) = struct.unpack_from("<IIQQqII16xQQQQq", data, 8)
        return {"version": version, "file_size": file_size, "ring_id": ring_id,
                "created_us": created_us, "head": head, "next_seq": next_seq,
                "events_cursor": events_cursor, "agg_cursor": agg_cursor,
                "watermark_us": watermark_us}

    def wait_ring(self, timeout=30):
        """The ring header once the agent created its ring."""
        deadline = time.monotonic() + timeout
        while True:
            h = self.ring_header()
            if h is not None:
                return h
            if time.monotonic() > deadline:
                raise AssertionError("no ring at %s:\n%s" % (self.ring_path(), self.log_tail()))
            time.sleep(0.05)

    def set_option(self, section, key, value):
        """Sets one key of the configuration file (taken at the next start)."""
        out, cur, done = [], None, False
        for line in self.conf.read_text().splitlines():
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                if cur == section and not done:
                    out.append("%s = %s" % (key, value))
                    done = True
                cur = s[1:-1]
            elif cur == section and s.split("=", 1)[0].strip() == key:
                line, done = "%s = %s" % (key, value), True
            out.append(line)
        if not done:
            if cur != section:
                out.append("[%s]" % section)
            out.append("%s = %s" % (key, value))
        self.conf.write_text("\n".join(out) + "\n")

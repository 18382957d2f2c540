"""A stand-in for floe-uploader: consumes batches over mTLS, keeps an exactly-once ledger, acks.

    with Consumer(broker.host, broker.port, ca, cert, key) as c:   # the service certificate
        ...                                                        # agents publish batches
        rows = c.wait_for_events(3000, timeout=10)

For every message on floe/v1/<identity>/batch it does what docs/wire-format.md §9 and
DESIGN.md ask of the uploader, with wire_ref.py (independent of lib/) as the decoder:
- identity from the topic; a batch whose `id` differs, or that does not decode, is rejected
  (recorded in .rejected, acked "rejected" with a reason when its epoch and seq can be read);
- a ledger per (identity, epoch) of committed seqs: a new seq is committed (its rows appended
  to .events or .aggregates, and to the NDJSON file if one was given) and acked "ok"; a seq
  already committed is acked "duplicate" and counted in .duplicates, its rows not added again;
- acks go to floe/v1/<identity>/ack, QoS 1, CBOR {"v":1,"epoch":E,"seq":S,"status":...
  [,"reason":R]} in that key order, and only after the commit.

Fault knobs: drop_acks() (commit but lose the acks: the agent must resend and get
"duplicate"), pause()/resume() (hold batches unprocessed and unacked, then process them in
order: a slow uploader). All public methods are thread-safe; getters return copies.

The broker sets the client id to the certificate's CN (use_username_as_clientid), so two
Consumers with the same certificate take each other's session over: use one per broker.
"""

import json
import re
import ssl
import threading
import time
from collections import namedtuple

import cbor2
import paho.mqtt.client as mqtt
import zstandard

import wire_ref

DEFAULT_TIMEOUT = 10.0
BATCH_FILTER = "floe/v1/+/batch"
TOPIC_RE = re.compile(r"floe/v1/([^/]+)/batch")
REASON_MAX = 63  # bytes, FLOE_ACK_REASON_MAX
IDENTITY_MISMATCH = "identity-mismatch"

Batch = namedtuple("Batch", "identity epoch seq kind rows received_at")
Rejection = namedtuple("Rejection", "identity epoch seq reason")


class ConsumerError(Exception):
    pass


def ack_payload(epoch, seq, status, reason=None):
    """The CBOR bytes of an acknowledgement, keys in the order of the spec."""
    ack = {"v": 1, "epoch": epoch, "seq": seq, "status": status}
    if reason is not None:
        ack["reason"] = reason
    return cbor2.dumps(ack)


def _reason(exc):
    text = re.sub(r"[^a-z0-9]+", "-", str(exc).lower()).strip("-")
    return (text or "malformed")[:REASON_MAX]


def _peek(payload):
    """Best effort (epoch, seq) of a batch that did not decode, for the rejection ack."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=64 << 20)
        m = cbor2.loads(raw)
        epoch, seq = m.get("epoch"), m.get("seq")
    except Exception:  # anything at all: the payload is hostile by assumption
        return None, None
    ok = all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 1 << 64
             for x in (epoch, seq))
    return (epoch, seq) if ok else (None, None)


class Consumer:
    def __init__(self, host, port, ca, cert, key, topic=BATCH_FILTER, ndjson=None,
                 client_id="floe-uploader", timeout=DEFAULT_TIMEOUT, keepalive=30):
        self.host = host
        self.port = port
        self.topic = topic
        self.timeout = timeout
        self.keepalive = keepalive
        self.ndjson_path = ndjson
        self._ndjson = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._proc_lock = threading.Lock()  # one batch at a time, in arrival order
        self._connected = False
        self._suback = None
        self._connect_rc = None
        self.connects = 0
        self.disconnects = 0
        # ledger and records
        self._ledger = {}  # (identity, epoch) -> set of committed seqs
        self._committed = []  # [Batch]
        self._events = []
        self._aggregates = []
        self._rejected = []  # [Rejection]
        self._acks = []  # [(identity, ack dict)] as sent
        self._errors = []  # exceptions inside the message handler (a bug in this file)
        self._duplicates = 0
        self._received = 0
        # fault knobs
        self._paused = False
        self._held = []
        self._drop_count = 0  # acks still to drop; -1: all until send_acks()
        self._drop_until = 0.0  # monotonic deadline of a timed drop
        self._acks_dropped = 0

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the broker and its name
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile=ca)
        ctx.load_cert_chain(certfile=cert, keyfile=key)
        self.client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- connection ---------------------------------------------------------------------

    def __enter__(self):
        if self.ndjson_path is not None:
            self._ndjson = open(self.ndjson_path, "a", encoding="utf-8")
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        try:
            self.client.connect(self.host, self.port, keepalive=self.keepalive,
                                clean_start=True)
            self.client.loop_start()
            self.wait_subscribed()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            if self.connected:
                self.client.disconnect()
        finally:
            self.client.loop_stop()
            with self._lock:
                if self._ndjson is not None:
                    self._ndjson.close()
                    self._ndjson = None

    @property
    def connected(self):
        with self._lock:
            return self._connected

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self._cond:
            self._connect_rc = rc
            if getattr(rc, "value", rc) >= 0x80:
                self._cond.notify_all()
                return
            self._connected = True
            self.connects += 1
            self._suback = None
            self._cond.notify_all()
        # A clean session: subscribe again after every (re)connect.
        client.subscribe(self.topic, qos=1)

    def _on_disconnect(self, client, userdata, rc, properties=None):
        with self._cond:
            self._connected = False
            self._suback = None
            self.disconnects += 1
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        with self._cond:
            self._suback = [getattr(c, "value", c) for c in reason_codes]
            self._cond.notify_all()

    def wait_subscribed(self, timeout=None):
        """Wait until connected and the batch subscription is granted at QoS 1."""
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            if not self._cond.wait_for(lambda: self._connected and self._suback is not None,
                                       timeout):
                raise ConsumerError(f"consumer not subscribed on {self.host}:{self.port} "
                                    f"after {timeout}s (last CONNACK: {self._connect_rc})")
            if self._suback != [1]:
                raise ConsumerError(f"subscription {self.topic} refused: {self._suback}")

    # -- fault knobs --------------------------------------------------------------------

    def drop_acks(self, count=None, seconds=None):
        """Commit batches but send no acks: for the next count batches, for seconds, or
        (neither given) until send_acks()."""
        with self._lock:
            self._drop_count = count if count is not None else (0 if seconds else -1)
            self._drop_until = time.monotonic() + seconds if seconds else 0.0

    def send_acks(self):
        with self._lock:
            self._drop_count = 0
            self._drop_until = 0.0

    def pause(self):
        """Hold arriving batches: no commit, no ack, until resume()."""
        with self._lock:
            self._paused = True

    def resume(self):
        """Process the held batches in arrival order, then take new ones as they come."""
        with self._proc_lock:
            while True:
                with self._lock:
                    if not self._held:
                        self._paused = False
                        break
                    topic, payload = self._held.pop(0)
                self._process(topic, payload)

    # -- message handling ---------------------------------------------------------------

    def _on_message(self, client, userdata, msg):
        payload = bytes(msg.payload)
        with self._proc_lock:
            with self._lock:
                self._received += 1
                if self._paused:
                    self._held.append((msg.topic, payload))
                    self._cond.notify_all()
                    return
            try:
                self._process(msg.topic, payload)
            except Exception as e:  # never kill paho's thread; tests see .errors
                with self._cond:
                    self._errors.append(e)
                    self._cond.notify_all()

    def _process(self, topic, payload):
        m = TOPIC_RE.fullmatch(topic)
        if not m:
            self._reject(None, None, None, "bad-topic")
            return
        identity = m.group(1)
        try:
            header, rows = wire_ref.decode(payload)
        except Exception as e:  # wire_ref.Rejected, zstd, CBOR or shape errors alike
            epoch, seq = _peek(payload)
            self._reject(identity, epoch, seq, _reason(e))
            return
        epoch, seq = header["epoch"], header["seq"]
        if header["id"] != identity:
            self._reject(identity, epoch, seq, IDENTITY_MISMATCH)
            return
        with self._cond:
            done = self._ledger.setdefault((identity, epoch), set())
            if seq in done:
                self._duplicates += 1
                status = "duplicate"
            else:
                batch = Batch(identity, epoch, seq, header["kind"], rows, time.time())
                self._commit(batch)
                done.add(seq)
                status = "ok"
            self._cond.notify_all()
        self._ack(identity, epoch, seq, status)

    def _commit(self, batch):
        if self._ndjson is not None:
            for r in batch.rows:
                self._ndjson.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) +
                                   "\n")
            self._ndjson.flush()
        self._committed.append(batch)
        (self._events if batch.kind == "events" else self._aggregates).extend(batch.rows)

    def _reject(self, identity, epoch, seq, reason):
        with self._cond:
            self._rejected.append(Rejection(identity, epoch, seq, reason))
            self._cond.notify_all()
        if epoch is not None and seq is not None and identity is not None:
            self._ack(identity, epoch, seq, "rejected", reason)

    def _ack(self, identity, epoch, seq, status, reason=None):
        with self._cond:
            if self._drop_count or time.monotonic() < self._drop_until:
                if self._drop_count > 0:
                    self._drop_count -= 1
                self._acks_dropped += 1
                self._cond.notify_all()
                return
        info = self.client.publish(f"floe/v1/{identity}/ack",
                                   ack_payload(epoch, seq, status, reason), qos=1)
        with self._cond:
            ack = {"v": 1, "epoch": epoch, "seq": seq, "status": status}
            if reason is not None:
                ack["reason"] = reason
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                self._errors.append(ConsumerError(f"ack publish: {mqtt.error_string(info.rc)}"))
            self._acks.append((identity, ack))
            self._cond.notify_all()

    # -- results ------------------------------------------------------------------------

    def _get(self, fn):
        with self._lock:
            return fn()

    events = property(lambda self: self._get(lambda: list(self._events)),
                      doc="committed event rows (NDJSON form), in commit order")
    aggregates = property(lambda self: self._get(lambda: list(self._aggregates)),
                          doc="committed aggregate rows (NDJSON form)")
    committed = property(lambda self: self._get(lambda: list(self._committed)),
                         doc="[Batch(identity, epoch, seq, kind, rows, received_at)]")
    batches = property(lambda self: self._get(
        lambda: [(b.identity, b.epoch, b.seq) for b in self._committed]),
        doc="[(identity, epoch, seq)] committed, in order")
    rejected = property(lambda self: self._get(lambda: list(self._rejected)),
                        doc="[Rejection(identity, epoch, seq, reason)]")
    acks = property(lambda self: self._get(lambda: list(self._acks)),
                    doc="[(identity, ack dict)] published")
    errors = property(lambda self: self._get(lambda: list(self._errors)))
    duplicates = property(lambda self: self._get(lambda: self._duplicates))
    received = property(lambda self: self._get(lambda: self._received),
                        doc="batch messages delivered by the broker, held ones included")
    held = property(lambda self: self._get(lambda: len(self._held)))
    acks_dropped = property(lambda self: self._get(lambda: self._acks_dropped))

    def ledger(self):
        """{(identity, epoch): sorted committed seqs}."""
        with self._lock:
            return {k: sorted(v) for k, v in self._ledger.items()}

    def wait_until(self, predicate, timeout=None, what="condition"):
        """Wait until predicate(self) is true (evaluated under the lock); raises on timeout
        or when the message handler failed."""
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            ok = self._cond.wait_for(lambda: self._errors or predicate(self), timeout)
            if self._errors:
                raise ConsumerError(f"consumer handler failed: {self._errors[0]!r}")
            if not ok:
                raise ConsumerError(f"{what} not reached within {timeout}s: "
                                    f"{len(self._events)} events, {len(self._aggregates)} "
                                    f"aggregates, {len(self._committed)} batches, "
                                    f"{self._duplicates} duplicates, "
                                    f"{len(self._rejected)} rejected")

    def wait_for_events(self, n, timeout=None):
        """Wait until at least n event rows are committed; returns a copy of all of them."""
        self.wait_until(lambda c: len(c._events) >= n, timeout, f"{n} events")
        return self.events

    def wait_for_aggregates(self, n, timeout=None):
        self.wait_until(lambda c: len(c._aggregates) >= n, timeout, f"{n} aggregates")
        return self.aggregates

    def wait_for_batches(self, n, timeout=None):
        self.wait_until(lambda c: len(c._committed) >= n, timeout, f"{n} batches")
        return self.batches

    def wait_for_acks(self, n, timeout=None):
        self.wait_until(lambda c: len(c._acks) >= n, timeout, f"{n} acks")
        return self.acks

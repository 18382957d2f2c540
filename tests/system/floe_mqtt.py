"""Blocking MQTT v5 helpers for system tests (Debian's python3-paho-mqtt 1.6).

    publish(host, port, "floe/v1/acme.gw-1/batch", payload)       # waits for the PUBACK
    with Publisher(host, port) as pub:                            # many messages, one session
        for p in payloads:
            pub.publish(topic, p)
    with Subscriber(host, port, "floe/v1/+/batch") as sub:       # subscribed on entry
        ...
        msgs = sub.wait_for(3, timeout=10)                        # [Message, ...]

tls= takes the keyword arguments of paho's Client.tls_set (ca_certs, certfile, keyfile).
"""

import threading
import time
import uuid
from collections import namedtuple

import paho.mqtt.client as mqtt

DEFAULT_TIMEOUT = 10.0

Message = namedtuple("Message", "topic payload qos retain properties")


class MQTTError(Exception):
    pass


def _failed(reason_code):
    """paho 1.6 ReasonCodes (or a plain int for MQTT 3): 0x80 and above are failures."""
    return getattr(reason_code, "value", reason_code) >= 0x80


def _client_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class _Client:
    """A paho MQTTv5 client with its network loop in a thread, connected on entry."""

    def __init__(self, host, port, client_id=None, clean_start=True, session_expiry=None,
                 username=None, password=None, tls=None, timeout=DEFAULT_TIMEOUT,
                 prefix="floe-test"):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.client_id = client_id or _client_id(prefix)
        self._clean_start = clean_start
        self._session_expiry = session_expiry
        self._connected = threading.Event()
        self._connect_rc = None
        self.disconnects = 0
        self.client = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self._connect_rc = rc
        if not _failed(rc):
            self._connected.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self._connected.clear()
        self.disconnects += 1

    def wait_connected(self, timeout=None):
        """Wait until the client is connected (paho reconnects on its own after a drop)."""
        if not self._connected.wait(self.timeout if timeout is None else timeout):
            raise MQTTError(f"{self.client_id}: not connected to {self.host}:{self.port} "
                            f"(last CONNACK: {self._connect_rc})")

    @property
    def connected(self):
        return self._connected.is_set()

    def __enter__(self):
        props = None
        if self._session_expiry is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._session_expiry
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.connect(self.host, self.port, keepalive=30, clean_start=self._clean_start,
                            properties=props)
        self.client.loop_start()
        try:
            self.wait_connected()
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        try:
            if self.connected:
                self.client.disconnect()
        finally:
            self.client.loop_stop()

    def __exit__(self, *exc):
        self.close()
        return False


class Publisher(_Client):
    """Publishes in one session; leaving the with-block waits for every acknowledgement."""

    def __init__(self, host, port, **kwargs):
        kwargs.setdefault("prefix", "floe-test-pub")
        super().__init__(host, port, **kwargs)
        self._pending = []

    def publish(self, topic, payload, qos=1, retain=False, properties=None, wait=True):
        """Publish; with wait, block until the broker acknowledged it (QoS > 0) or it was
        written to the socket (QoS 0). Without wait, flush() or leaving the block waits."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MQTTError(f"publish to {topic}: {mqtt.error_string(info.rc)}")
        self._pending.append((topic, info))
        if wait:
            self.flush()
        return info

    def flush(self, timeout=None):
        """Wait until every message published so far is acknowledged."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self._pending:
            topic, info = self._pending[0]
            if info.is_published():
                self._pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise MQTTError(f"publish to {topic}: {len(self._pending)} messages not "
                                f"acknowledged in time")
            time.sleep(0.002)

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
        return False


def publish(host, port, topic, payload, qos=1, retain=False, properties=None, **kwargs):
    """Connect, publish one message, wait for its acknowledgement, disconnect."""
    with Publisher(host, port, **kwargs) as pub:
        pub.publish(topic, payload, qos=qos, retain=retain, properties=properties)


class Subscriber(_Client):
    """Collects messages of topics (a string or a list) at qos; subscribed on entry."""

    def __init__(self, host, port, topics, qos=1, **kwargs):
        kwargs.setdefault("prefix", "floe-test-sub")
        super().__init__(host, port, **kwargs)
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.qos = qos
        self.messages = []
        self._cond = threading.Condition()
        self._suback = {}
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_message(self, client, userdata, msg):
        m = Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                    getattr(msg, "properties", None))
        with self._cond:
            self.messages.append(m)
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        with self._cond:
            self._suback[mid] = reason_codes
            self._cond.notify_all()

    def subscribe(self, topic, qos=None):
        """Subscribe (again) and wait for the SUBACK; raises if the broker refused."""
        qos = self.qos if qos is None else qos
        rc, mid = self.client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise MQTTError(f"subscribe {topic}: {mqtt.error_string(rc)}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._suback, self.timeout):
                raise MQTTError(f"subscribe {topic}: no SUBACK after {self.timeout}s")
            codes = self._suback.pop(mid)
        bad = [c for c in codes if _failed(c)]
        if bad:
            raise MQTTError(f"subscribe {topic}: refused: {bad[0]}")

    def __enter__(self):
        super().__enter__()
        try:
            for t in self.topics:
                self.subscribe(t)
        except Exception:
            self.close()
            raise
        return self

    def wait_for(self, count, timeout=None):
        """Wait until at least count messages arrived; returns a copy of all of them."""
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise MQTTError(f"got {len(self.messages)} of {count} messages on "
                                f"{self.topics} within {timeout}s")
            return list(self.messages)

    def take(self):
        """Return and clear the messages received so far."""
        with self._cond:
            msgs, self.messages = self.messages, []
            return msgs

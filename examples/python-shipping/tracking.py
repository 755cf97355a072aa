#!/usr/bin/env python3
"""A carrier-tracking webhook receiver, written in Python with nothing but the standard
library, to be tested by `shipsim live-receiver` from the outside: shipsim knows it only
through receiver.toml, and plays the carrier that sends it events.

    POST /webhooks/carrier   a Standard Webhooks delivery (webhook-id, webhook-timestamp,
                             webhook-signature: v1,<base64 HMAC-SHA256>), body
                             {"id", "type", "timestamp", "data": {"tracking_number", "sequence"}}
                             -> 200 (applied, or a duplicate acknowledged), 401 bad or stale
                             signature, 400 not JSON
    GET  /tracking/{number}  -> 200 {"tracking_number", "sequence", "status", "applied": [event ids]}
                                404 if no event about it was ever applied

What a correct receiver does, and this one does unless a mistake is switched on: verify the
signature over the raw body before anything else, refuse a timestamp more than five minutes
from now (a replayed old delivery), then in one transaction record the event id and apply
its effect, so a duplicate (a retry, a racing copy) is acknowledged with 200 and not applied
again; and never let an older event (a lower sequence) overwrite a newer one's status.

Usage:
    python3 tracking.py [--listen 127.0.0.1:8090] [--db tracking.sqlite]

The signing secret: TRACKING_WEBHOOK_SECRET (whsec_<base64>), else webhook-secret.txt beside
this file.

Planted mistakes, each off unless its environment variable is 1 (shipsim must catch each):
    TRACKING_BUG_DEDUPE_AFTER_EFFECT  the event id is checked, the effect applied, and only
                                      then the id recorded: two copies arriving together
                                      both apply it
    TRACKING_BUG_VERIFY_AFTER_ACTING  the event is parsed and applied first, the signature
                                      checked afterwards: a forged or tampered delivery is
                                      refused with 401, but its effect is already in
    TRACKING_BUG_NO_TOLERANCE         the signature is checked but its timestamp is not: a
                                      delivery signed an hour ago is accepted
    TRACKING_BUG_LAST_WRITE_WINS      the status is whatever event arrived last: an event
                                      delivered late overwrites a newer one
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
BODY_BYTES_MAX = 64 * 1024
# Standard Webhooks' recommended tolerance, and Stripe's: five minutes either way.
TOLERANCE_S = 300
# How long applying an effect takes in the mistaken dedupe (a call to another service).
EFFECT_S = 0.05


def flag(name):
    return os.environ.get(name, "") == "1"


BUGS = {
    "dedupe_after_effect": flag("TRACKING_BUG_DEDUPE_AFTER_EFFECT"),
    "verify_after_acting": flag("TRACKING_BUG_VERIFY_AFTER_ACTING"),
    "no_tolerance": flag("TRACKING_BUG_NO_TOLERANCE"),
    "last_write_wins": flag("TRACKING_BUG_LAST_WRITE_WINS"),
}


def log(**fields):
    fields["at"] = round(time.time(), 3)
    sys.stderr.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stderr.flush()


def signing_key():
    """The key bytes of the whsec_ secret: the environment's, else the file's first line."""
    secret = os.environ.get("TRACKING_WEBHOOK_SECRET", "").strip()
    if not secret:
        with open(os.path.join(HERE, "webhook-secret.txt"), encoding="utf-8") as file:
            lines = [line.strip() for line in file if line.strip() and not line.startswith("#")]
        secret = lines[0] if lines else ""
    if not secret.startswith("whsec_"):
        sys.exit("the signing secret is not whsec_<base64>")
    return base64.b64decode(secret[len("whsec_"):])


class Unverified(Exception):
    pass


def verify(key, headers, body, check_time):
    """Standard Webhooks: HMAC-SHA256 of "{id}.{timestamp}.{body}", base64, in one of the
    space-separated `v1,<signature>` entries; the timestamp within TOLERANCE_S of now."""
    event_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not event_id or not timestamp.isdigit() or not signatures:
        raise Unverified("missing or malformed webhook headers")
    if check_time and abs(time.time() - int(timestamp)) > TOLERANCE_S:
        raise Unverified("timestamp outside the tolerance")
    signed = b"%s.%s.%s" % (event_id.encode(), timestamp.encode(), body)
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise Unverified("no valid signature")


class Tracking:
    """Tracking state in SQLite. One connection, one lock: each delivery's check, record
    and effect happen under the lock, in one transaction."""

    def __init__(self, path, key):
        self.key = key
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS processed (event_id TEXT PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS applied (
                rowid INTEGER PRIMARY KEY, tracking_number TEXT NOT NULL, event_id TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS parcels (
                tracking_number TEXT PRIMARY KEY, sequence INTEGER NOT NULL, status TEXT NOT NULL);
            """
        )

    def seen(self, event_id):
        with self.lock:
            return self.db.execute("SELECT 1 FROM processed WHERE event_id = ?", (event_id,)).fetchone() is not None

    def record(self, event_id):
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO processed (event_id) VALUES (?)", (event_id,))

    def apply(self, event):
        """The effect of one event, in its own transaction (the caller holds no lock)."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self._apply(event)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _apply(self, event):
        number, sequence, status = event["number"], event["sequence"], event["type"]
        self.db.execute("INSERT INTO applied (tracking_number, event_id) VALUES (?, ?)", (number, event["id"]))
        if BUGS["last_write_wins"]:
            self.db.execute(
                "INSERT INTO parcels VALUES (?, ?, ?) ON CONFLICT (tracking_number) DO UPDATE "
                "SET sequence = excluded.sequence, status = excluded.status",
                (number, sequence, status),
            )
        else:
            self.db.execute(
                "INSERT INTO parcels VALUES (?, ?, ?) ON CONFLICT (tracking_number) DO UPDATE "
                "SET sequence = excluded.sequence, status = excluded.status WHERE excluded.sequence > parcels.sequence",
                (number, sequence, status),
            )

    def apply_once(self, event):
        """Records the event id and applies its effect in one transaction; False if it was
        already processed (a duplicate: acknowledge it, do nothing)."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                inserted = self.db.execute(
                    "INSERT OR IGNORE INTO processed (event_id) VALUES (?)", (event["id"],)
                ).rowcount
                if inserted:
                    self._apply(event)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return bool(inserted)

    def read(self, number):
        with self.lock:
            row = self.db.execute("SELECT sequence, status FROM parcels WHERE tracking_number = ?", (number,)).fetchone()
            applied = [r[0] for r in self.db.execute(
                "SELECT event_id FROM applied WHERE tracking_number = ? ORDER BY rowid", (number,))]
        if row is None and not applied:
            return None
        return {
            "tracking_number": number,
            "sequence": row[0] if row else None,
            "status": row[1] if row else None,
            "applied": applied,
        }


def parse_event(body):
    """The fields this receiver uses, or ValueError."""
    document = json.loads(body)
    data = document["data"]
    sequence = data["sequence"]
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise ValueError("sequence is not an integer")
    return {
        "id": str(document["id"]),
        "type": str(document["type"]),
        "number": str(data["tracking_number"]),
        "sequence": sequence,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tracking = None

    def log_message(self, *args):
        pass

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        match = re.fullmatch(r"/tracking/([A-Za-z0-9_.~-]+)", self.path)
        if not match:
            return self.answer(404, {"error": "not found"})
        found = self.tracking.read(match.group(1))
        if found is None:
            return self.answer(404, {"error": "unknown tracking number"})
        return self.answer(200, found)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/webhooks/carrier":
            self.rfile.read(min(length, BODY_BYTES_MAX))
            return self.answer(404, {"error": "not found"})
        if length > BODY_BYTES_MAX:
            self.close_connection = True
            return self.answer(413, {"error": "body too large"})
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        tracking = self.tracking
        try:
            if BUGS["verify_after_acting"]:
                # The mistake: act on what the body says, then check who said it.
                event = parse_event(body)
                tracking.apply_once(event)
                verify(tracking.key, headers, body, check_time=True)
                return self.answer(200, {"received": event["id"]})
            verify(tracking.key, headers, body, check_time=not BUGS["no_tolerance"])
            event = parse_event(body)
            if headers.get("webhook-id") != event["id"]:
                return self.answer(400, {"error": "webhook-id does not match the event"})
            if BUGS["dedupe_after_effect"]:
                # The mistake: check, act, and only then remember.
                if tracking.seen(event["id"]):
                    return self.answer(200, {"duplicate": event["id"]})
                tracking.apply(event)
                time.sleep(EFFECT_S)
                tracking.record(event["id"])
                return self.answer(200, {"received": event["id"]})
            fresh = tracking.apply_once(event)
            return self.answer(200, {"received" if fresh else "duplicate": event["id"]})
        except Unverified as error:
            return self.answer(401, {"error": str(error)})
        except (ValueError, KeyError, TypeError) as error:
            return self.answer(400, {"error": "bad event: %s" % error})


class Server(ThreadingHTTPServer):
    # Bursts open many connections at once: a deep accept queue instead of the default 5.
    request_queue_size = 512
    daemon_threads = True


def main(argv):
    options = {"--listen": "127.0.0.1:8090", "--db": "tracking.sqlite"}
    rest = list(argv)
    while rest:
        name = rest.pop(0)
        if name not in options or not rest:
            sys.exit("usage: tracking.py [--listen HOST:PORT] [--db FILE]")
        options[name] = rest.pop(0)
    host, port = options["--listen"].rsplit(":", 1)
    Handler.tracking = Tracking(options["--db"], signing_key())
    server = Server((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    bugs = [name for name, on in BUGS.items() if on]
    log(event="listening", port=server.server_address[1], bugs=bugs)
    print("listening on http://%s:%d" % (host, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""A small shipping service, written in Python with nothing but the standard library, to be
tested by `shipsim live` from the outside: shipsim knows it only through target.toml.

Merchants create customers and parcels. Creating a parcel buys a label from a carrier (in
tests, `shipsim downstream --spec carrier.toml`), so a parcel must cost exactly one label
however often the merchant retries, whatever the network drops. State lives in SQLite.

    POST /api/customers                       {"name", "country", "request_id"}  -> 201 {"customer": {...}}
    GET  /api/customers/{id}                                                     -> 200 {"customer": {...}}
    POST /api/customers/{id}/parcels          {"weight_g", "service"}            -> 201 {"parcel": {...}}
         (Idempotency-Key header)                                                   424 if the carrier refuses
    GET  /api/parcels/{id}                                                       -> 200 {"parcel": {...}}
    GET  /healthz                             200 when the carrier answers, 503 naming it when not

Idempotency: a key is scoped to the merchant; the same key and request replays the stored
answer (`Idempotent-Replayed: true`), the same key with another request is refused (422),
a key whose first request is still running gets 409 with `Retry-After`. The carrier is
called under a key derived from the parcel (`label-<parcel id>`), retried on timeouts and
5xx, so a lost answer never buys a second label; a request that finds its parcel's label
unbought (the carrier was down) buys it under that same key.

Usage:
    python3 shop.py [--listen 127.0.0.1:8000] [--db shop.sqlite] [--carrier-url http://127.0.0.1:9100]

Merchants' API keys: SHOP_API_KEYS (comma-separated, merchant 0 first), else dev-keys.txt
beside this file. Each is sent as `Authorization: Bearer <key>`.

Planted mistakes, each off unless its environment variable is 1 (shipsim must catch each):
    SHOP_BUG_CARRIER_WITHOUT_KEY   the carrier is called without an idempotency key: a retry
                                   after a lost answer buys a second label
    SHOP_BUG_CHECK_THEN_INSERT     the key is looked up, the label bought, and only then the
                                   key stored: two concurrent requests with one key both buy
    SHOP_BUG_UNSCOPED_KEYS         keys are global, not per merchant: one merchant's key
                                   answers another merchant's request
    SHOP_BUG_LABEL_NOT_COMMITTED   the label is written to the parcel but never committed:
                                   the answer says labelled, the database forgets it
"""

import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
from contextlib import closing
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
BODY_BYTES_MAX = 64 * 1024
CARRIER_ATTEMPTS = 4
CARRIER_TIMEOUT_S = 2.0


def flag(name):
    return os.environ.get(name, "") == "1"


BUGS = {
    "carrier_without_key": flag("SHOP_BUG_CARRIER_WITHOUT_KEY"),
    "check_then_insert": flag("SHOP_BUG_CHECK_THEN_INSERT"),
    "unscoped_keys": flag("SHOP_BUG_UNSCOPED_KEYS"),
    "label_not_committed": flag("SHOP_BUG_LABEL_NOT_COMMITTED"),
}


def log(**fields):
    fields["at"] = round(time.time(), 3)
    sys.stderr.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stderr.flush()


def api_keys():
    text = os.environ.get("SHOP_API_KEYS")
    if text is None:
        with open(os.path.join(HERE, "dev-keys.txt"), encoding="utf-8") as f:
            text = f.read()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    keys = [k.strip() for line in lines for k in line.split(",") if k.strip()]
    return {key: "merchant-%d" % i for i, key in enumerate(keys)}


class Problem(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class Shop:
    def __init__(self, db_path, carrier_url, keys):
        self.db_path = db_path
        self.carrier_url = carrier_url.rstrip("/")
        self.carrier_token = os.environ.get("CARRIER_TOKEN", "ck_test_shop")
        self.keys = keys
        # Keys whose first request is running in this process, and the lock that makes
        # "look the key up, claim it" one step.
        self.busy = set()
        self.claim_lock = threading.Lock()
        with closing(self.connect()) as conn:
            conn.executescript(
                """
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS customers (
                    id TEXT PRIMARY KEY, merchant TEXT NOT NULL, name TEXT NOT NULL,
                    country TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS parcels (
                    id TEXT PRIMARY KEY, merchant TEXT NOT NULL, customer_id TEXT NOT NULL,
                    weight_g INTEGER NOT NULL, service TEXT NOT NULL, status TEXT NOT NULL,
                    label_id TEXT, tracking TEXT);
                CREATE TABLE IF NOT EXISTS idempotency (
                    merchant TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                    state TEXT NOT NULL, resource TEXT, status INTEGER, body TEXT,
                    PRIMARY KEY (merchant, key));
                """
            )

    def connect(self):
        conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    # --- idempotency -------------------------------------------------------------------

    def scope(self, merchant):
        return "*" if BUGS["unscoped_keys"] else merchant

    def claim(self, conn, merchant, key, fingerprint, create):
        """Looks the key up and, if new, runs `create(conn)` (which inserts the resource and
        returns its id) and stores the key as pending, in one transaction. Returns
        ("new" | "resume", resource id) or raises the stored or refusing answer."""
        scope = self.scope(merchant)
        with self.claim_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM idempotency WHERE merchant = ? AND key = ?", (scope, key)
                ).fetchone()
                if row is not None:
                    conn.execute("COMMIT")
                    if row["fingerprint"] != fingerprint:
                        raise Problem(422, "key_reused", "this idempotency key was used with another request")
                    if row["state"] == "done":
                        raise Replay(row["status"], row["body"])
                    if (scope, key) in self.busy:
                        raise Problem(409, "in_progress", "a request with this key is in progress", {"Retry-After": "1"})
                    self.busy.add((scope, key))
                    return "resume", row["resource"]
                resource = create(conn)
                conn.execute(
                    "INSERT INTO idempotency (merchant, key, fingerprint, state, resource) VALUES (?, ?, ?, 'pending', ?)",
                    (scope, key, fingerprint, resource),
                )
                conn.execute("COMMIT")
                self.busy.add((scope, key))
                return "new", resource
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def release(self, merchant, key):
        with self.claim_lock:
            self.busy.discard((self.scope(merchant), key))

    # --- customers ---------------------------------------------------------------------

    def create_customer(self, merchant, body):
        key = body.pop("request_id", None)
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise Problem(400, "key_missing", "send the idempotency key as `request_id`")
        name, country = body.get("name"), body.get("country")
        if not isinstance(name, str) or not name or not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
            raise Problem(400, "invalid", "a customer has a `name` and a two-letter `country`")
        fingerprint = digest("POST /api/customers", body)

        def insert(conn):
            customer_id = "cus_" + secrets.token_hex(8)
            conn.execute(
                "INSERT INTO customers (id, merchant, name, country) VALUES (?, ?, ?, ?)",
                (customer_id, merchant, name, country),
            )
            return customer_id

        with closing(self.connect()) as conn:
            _, customer_id = self.claim(conn, merchant, key, fingerprint, insert)
            try:
                answer = {"customer": customer_view(conn, customer_id)}
                self.complete(conn, merchant, key, 201, answer)
                return 201, answer
            finally:
                self.release(merchant, key)

    def get_customer(self, merchant, customer_id):
        with closing(self.connect()) as conn:
            row = conn.execute("SELECT * FROM customers WHERE id = ? AND merchant = ?", (customer_id, merchant)).fetchone()
            if row is None:
                raise Problem(404, "not_found", "no such customer")
            return 200, {"customer": customer_view(conn, customer_id)}

    # --- parcels -----------------------------------------------------------------------

    def create_parcel(self, merchant, customer_id, key, body):
        if not key or len(key) > 255:
            raise Problem(400, "key_missing", "send the Idempotency-Key header")
        weight, service = body.get("weight_g"), body.get("service")
        if not isinstance(weight, int) or not 1 <= weight <= 30000 or service not in ("standard", "express"):
            raise Problem(400, "invalid", "a parcel has `weight_g` (1..30000) and `service` (standard or express)")
        with closing(self.connect()) as conn:
            customer = conn.execute(
                "SELECT * FROM customers WHERE id = ? AND merchant = ?", (customer_id, merchant)
            ).fetchone()
            if customer is None:
                raise Problem(404, "not_found", "no such customer")
            fingerprint = digest("POST /api/customers/%s/parcels" % customer_id, body)
            if BUGS["check_then_insert"]:
                return self.create_parcel_unguarded(conn, merchant, customer, key, fingerprint, weight, service)

            def insert(conn):
                parcel_id = "par_" + secrets.token_hex(8)
                conn.execute(
                    "INSERT INTO parcels (id, merchant, customer_id, weight_g, service, status) VALUES (?, ?, ?, ?, ?, 'pending')",
                    (parcel_id, merchant, customer_id, weight, service),
                )
                return parcel_id

            _, parcel_id = self.claim(conn, merchant, key, fingerprint, insert)
            try:
                return self.label(conn, merchant, key, parcel_id, customer["country"])
            finally:
                self.release(merchant, key)

    def create_parcel_unguarded(self, conn, merchant, customer, key, fingerprint, weight, service):
        # The mistake: look the key up, do the work (buy the label), store the key at the
        # end. Two requests with one key that arrive together both find nothing, and both
        # create a parcel and buy its label.
        row = conn.execute(
            "SELECT * FROM idempotency WHERE merchant = ? AND key = ?", (self.scope(merchant), key)
        ).fetchone()
        if row is not None:
            if row["fingerprint"] != fingerprint:
                raise Problem(422, "key_reused", "this idempotency key was used with another request")
            raise Replay(row["status"], row["body"])
        parcel_id = "par_" + secrets.token_hex(8)
        conn.execute(
            "INSERT INTO parcels (id, merchant, customer_id, weight_g, service, status) VALUES (?, ?, ?, ?, ?, 'pending')",
            (parcel_id, merchant, customer["id"], weight, service),
        )
        parcel = conn.execute("SELECT * FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
        outcome, label = self.buy_label(parcel, customer["country"])
        if outcome == "unavailable":
            raise Problem(503, "carrier_unavailable", "the carrier could not be reached: " + label, {"Retry-After": "1"})
        if outcome == "refused":
            conn.execute("UPDATE parcels SET status = 'refused' WHERE id = ?", (parcel_id,))
            status, answer = 424, {"error": {"code": "label_refused", "message": label}, "parcel": parcel_view(conn, parcel_id)}
        else:
            conn.execute(
                "UPDATE parcels SET status = 'labelled', label_id = ?, tracking = ? WHERE id = ?",
                (label["id"], label.get("tracking"), parcel_id),
            )
            status, answer = 201, {"parcel": parcel_view(conn, parcel_id)}
        conn.execute(
            "INSERT OR REPLACE INTO idempotency (merchant, key, fingerprint, state, resource, status, body) VALUES (?, ?, ?, 'done', ?, ?, ?)",
            (self.scope(merchant), key, fingerprint, parcel_id, status, json.dumps(answer)),
        )
        return status, answer

    def label(self, conn, merchant, key, parcel_id, country):
        """Buys the parcel's label (or finds it bought) and completes the key."""
        parcel = conn.execute("SELECT * FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
        if parcel["status"] == "pending":
            outcome, label = self.buy_label(parcel, country)
            if outcome == "unavailable":
                raise Problem(503, "carrier_unavailable", "the carrier could not be reached: " + label, {"Retry-After": "1"})
            conn.execute("BEGIN IMMEDIATE")
            try:
                if outcome == "refused":
                    conn.execute("UPDATE parcels SET status = 'refused' WHERE id = ?", (parcel_id,))
                    answer = {"error": {"code": "label_refused", "message": label}, "parcel": parcel_view(conn, parcel_id)}
                    self.complete(conn, merchant, key, 424, answer, in_transaction=True)
                    conn.execute("COMMIT")
                    return 424, answer
                conn.execute(
                    "UPDATE parcels SET status = 'labelled', label_id = ?, tracking = ? WHERE id = ?",
                    (label["id"], label.get("tracking"), parcel_id),
                )
                answer = {"parcel": parcel_view(conn, parcel_id)}
                self.complete(conn, merchant, key, 201, answer, in_transaction=True)
                if BUGS["label_not_committed"]:
                    # The mistake: the transaction is never committed, and is rolled back
                    # when the request ends, after the merchant was told the parcel is
                    # labelled. (Rolled back here, not left to closing the connection: a
                    # Python sqlite3 connection closed mid-transaction can linger while a
                    # statement is unfinalized and keep the write lock, wedging every later
                    # write on "database is locked", which is another failure than this one.)
                    conn.execute("ROLLBACK")
                    return 201, answer
                conn.execute("COMMIT")
                return 201, answer
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        answer = {"parcel": parcel_view(conn, parcel_id)}
        status = 424 if parcel["status"] == "refused" else 201
        self.complete(conn, merchant, key, status, answer)
        return status, answer

    def complete(self, conn, merchant, key, status, answer, in_transaction=False):
        statement = "UPDATE idempotency SET state = 'done', status = ?, body = ? WHERE merchant = ? AND key = ?"
        conn.execute(statement, (status, json.dumps(answer), self.scope(merchant), key))
        if not in_transaction and conn.in_transaction:
            conn.execute("COMMIT")

    def buy_label(self, parcel, country):
        """("bought", label) | ("refused", message) | ("unavailable", why)."""
        request = json.dumps(
            {"parcel": parcel["id"], "weight_g": parcel["weight_g"], "service": parcel["service"], "country": country}
        ).encode()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + self.carrier_token}
        if not BUGS["carrier_without_key"]:
            headers["Idempotency-Key"] = "label-" + parcel["id"]
        why = "no attempt"
        for attempt in range(CARRIER_ATTEMPTS):
            if attempt:
                time.sleep(0.05 * 2 ** attempt)
            try:
                call = urllib.request.Request(self.carrier_url + "/v1/labels", data=request, headers=headers, method="POST")
                with urllib.request.urlopen(call, timeout=CARRIER_TIMEOUT_S) as response:
                    return "bought", json.loads(response.read())
            except urllib.error.HTTPError as error:
                body = error.read().decode("utf-8", "replace")
                if 400 <= error.code < 500 and error.code not in (408, 409, 429):
                    return "refused", "the carrier refused (%d): %s" % (error.code, body[:200])
                why = "carrier answered %d" % error.code
            except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, ValueError) as error:
                why = "%s: %s" % (type(error).__name__, error)
            log(event="carrier_retry", parcel=parcel["id"], attempt=attempt, why=why)
        return "unavailable", why

    def get_parcel(self, merchant, parcel_id):
        with closing(self.connect()) as conn:
            row = conn.execute("SELECT * FROM parcels WHERE id = ? AND merchant = ?", (parcel_id, merchant)).fetchone()
            if row is None:
                raise Problem(404, "not_found", "no such parcel")
            return 200, {"parcel": parcel_view(conn, parcel_id)}

    def healthz(self):
        try:
            urllib.request.urlopen(self.carrier_url + "/", timeout=2).close()
        except urllib.error.HTTPError:
            pass  # it answered: it is there
        except (urllib.error.URLError, OSError) as error:
            raise Problem(503, "carrier_unreachable", "the carrier at %s is unreachable: %s" % (self.carrier_url, error))
        return 200, {"ready": True, "carrier_url": self.carrier_url}


class Replay(Exception):
    def __init__(self, status, body):
        super().__init__("replay")
        self.status, self.body = status, body


def digest(route, body):
    return hashlib.sha256((route + " " + json.dumps(body, sort_keys=True)).encode()).hexdigest()


def customer_view(conn, customer_id):
    row = conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
    return {"id": row["id"], "name": row["name"], "country": row["country"]}


def parcel_view(conn, parcel_id):
    row = conn.execute("SELECT * FROM parcels WHERE id = ?", (parcel_id,)).fetchone()
    label = {"id": row["label_id"], "tracking": row["tracking"]} if row["label_id"] else None
    return {
        "id": row["id"],
        "customer_id": row["customer_id"],
        "weight_g": row["weight_g"],
        "service": row["service"],
        "status": row["status"],
        "label": label,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    shop = None

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_BYTES_MAX:
            raise Problem(413, "too_large", "the body is larger than 64 KiB")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise Problem(400, "malformed_json", "the body is not JSON")
        if not isinstance(body, dict):
            raise Problem(400, "malformed_json", "the body is not a JSON object")
        return body

    def merchant(self):
        header = self.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        for key, merchant in self.shop.keys.items():
            if secrets.compare_digest(key, token):
                return merchant
        raise Problem(401, "unauthenticated", "send `Authorization: Bearer <your API key>`")

    def route(self, method):
        path = self.path.split("?", 1)[0]
        shop = self.shop
        if method == "GET" and path == "/healthz":
            return shop.healthz()
        body = self.read_json() if method == "POST" else None
        merchant = self.merchant()
        if method == "POST" and path == "/api/customers":
            return shop.create_customer(merchant, body)
        match = re.fullmatch(r"/api/customers/([A-Za-z0-9_]+)/parcels", path)
        if method == "POST" and match:
            return shop.create_parcel(merchant, match.group(1), self.headers.get("Idempotency-Key"), body)
        match = re.fullmatch(r"/api/customers/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            return shop.get_customer(merchant, match.group(1))
        match = re.fullmatch(r"/api/parcels/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            return shop.get_parcel(merchant, match.group(1))
        raise Problem(404, "no_route", "no route %s %s" % (method, path))

    def handle_method(self, method):
        started = time.time()
        try:
            status, body = self.route(method)
            self.answer(status, body)
        except Replay as replay:
            status = replay.status
            self.answer(replay.status, replay.body.encode(), {"Idempotent-Replayed": "true"})
        except Problem as problem:
            status = problem.status
            self.answer(problem.status, {"error": {"code": problem.code, "message": problem.message}}, problem.headers)
        except Exception as error:  # a bug: answered as a 500, logged
            status = 500
            log(event="error", error=repr(error), path=self.path)
            self.answer(500, {"error": {"code": "internal", "message": "internal error"}})
        log(event="request", method=method, path=self.path, status=status, ms=round((time.time() - started) * 1000, 1))

    def do_GET(self):
        self.handle_method("GET")

    def do_POST(self):
        self.handle_method("POST")


def main(argv):
    options = {"--listen": "127.0.0.1:8000", "--db": "shop.sqlite", "--carrier-url": os.environ.get("CARRIER_URL", "http://127.0.0.1:9100")}
    rest = list(argv)
    while rest:
        name = rest.pop(0)
        if name not in options or not rest:
            sys.exit("usage: shop.py [--listen HOST:PORT] [--db FILE] [--carrier-url URL]")
        options[name] = rest.pop(0)
    host, port = options["--listen"].rsplit(":", 1)
    Handler.shop = Shop(options["--db"], options["--carrier-url"], api_keys())
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    bugs = [name for name, on in BUGS.items() if on]
    log(event="listening", port=server.server_address[1], carrier=options["--carrier-url"], bugs=bugs)
    print("listening on http://%s:%d" % (host, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])

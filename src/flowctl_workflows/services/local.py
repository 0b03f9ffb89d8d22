"""Reference business services on one SQLite file: inventory, payment, fraud, shipping, email.

They keep a ledger that people and tests can read, honour idempotency keys (a repeated
call answers what the first one answered and changes nothing), and fail on purpose for
documented inputs so retries and compensation can be seen:

- card `tok_declined`: the charge is declined (a business error);
- card `tok_flaky`: the charge fails transiently twice per idempotency key, then succeeds;
- SKU `SKU-OUT`: always out of stock; SKUs not in the ledger are refused;
- approval requests from a requester in `blocked_requesters`, or above `reject_above_cents`,
  are rejected by the pre-screen; those below `auto_approve_below_cents` are approved by it;
- `transient_failure_rate`: that share of calls fails transiently, half of them before the
  work and half after it was committed (the answer is lost), which is what idempotency is for;
- `latency_seconds`: every call takes at least this long, as a remote service would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import DECLINED_CARD, FLAKY_CARD, OUT_OF_STOCK_SKU, UNDONE, BusinessError, TransientError
from . import commands as c

UNDONE_BY: dict[str, str] = {cmd.undoes: cmd.name for cmd in c.COMMANDS.values() if cmd.undoes}

SEED_STOCK: dict[str, int] = {
    "SKU-1": 1_000_000,
    "SKU-2": 1_000_000,
    "SKU-3": 1_000_000,
    OUT_OF_STOCK_SKU: 0,
}
FLAKY_FAILURES = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    reservation_key TEXT NOT NULL, order_id TEXT NOT NULL, sku TEXT NOT NULL,
    quantity INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (reservation_key, sku));
CREATE TABLE IF NOT EXISTS charges (
    charge_id TEXT PRIMARY KEY, charge_key TEXT UNIQUE NOT NULL, order_id TEXT NOT NULL,
    customer_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refunds (
    refund_id TEXT PRIMARY KEY, charge_id TEXT UNIQUE NOT NULL, order_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    shipment_id TEXT PRIMARY KEY, shipment_key TEXT UNIQUE NOT NULL, order_id TEXT NOT NULL,
    address TEXT NOT NULL, tracking TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY, message_key TEXT UNIQUE NOT NULL, recipient TEXT NOT NULL,
    template TEXT NOT NULL, subject TEXT NOT NULL, ref TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY, account_key TEXT UNIQUE NOT NULL, user_id TEXT NOT NULL,
    email TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS roles (
    role_key TEXT PRIMARY KEY, account_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL,
    status TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    workspace_id TEXT PRIMARY KEY, workspace_key TEXT UNIQUE NOT NULL, user_id TEXT NOT NULL,
    name TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY, execution_key TEXT UNIQUE NOT NULL, request_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL, at REAL NOT NULL, status TEXT NOT NULL DEFAULT 'executed');
CREATE TABLE IF NOT EXISTS undone (
    step_key TEXT PRIMARY KEY, command TEXT NOT NULL, undone_by TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    idempotency_key TEXT NOT NULL, command TEXT NOT NULL, ok INTEGER NOT NULL,
    response TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (idempotency_key, command));
CREATE TABLE IF NOT EXISTS faults (idempotency_key TEXT PRIMARY KEY, failures INTEGER NOT NULL);
"""

Handler = Callable[[sqlite3.Connection, Any, str], BaseModel]  # (connection, request, key) -> answer


def _short_id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _require(payload: dict[str, Any], name: str) -> Any:
    if name not in payload:
        raise BusinessError("bad_request", f"missing field {name!r}")
    return payload[name]


def _request(spec: c.Command[Any, Any], payload: dict[str, Any]) -> BaseModel:
    """The payload read as the command's request, or a refusal naming the field that is wrong."""
    try:
        request: BaseModel = spec.request.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise BusinessError("bad_request", f"{spec.name}: {where}: {first['msg']}") from None
    return request


class LedgerError(Exception):
    """The ledger file cannot be used (not a database, a directory, unreadable)."""


def connect(path: Path) -> sqlite3.Connection:
    """Open the ledger, creating and seeding it on first use; `LedgerError` if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        tables = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "calls" not in tables:  # another program's database: change nothing in it
            conn.close()
            shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
            raise LedgerError(f"ledger {path}: not a ledger (it holds other tables: {shown})")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(executions)")}
        if "status" not in columns:  # a ledger from before approvals.revoke
            conn.execute("ALTER TABLE executions ADD COLUMN status TEXT NOT NULL DEFAULT 'executed'")
        conn.executemany("INSERT OR IGNORE INTO stock (sku, available) VALUES (?, ?)", SEED_STOCK.items())
    except (sqlite3.DatabaseError, OSError) as exc:
        why = "is a directory" if path.is_dir() else str(exc)
        raise LedgerError(f"ledger {path}: {why}") from None
    return conn


class LocalServices:
    """The `local` bridge: every command runs in one SQLite transaction, off the event loop."""

    def __init__(
        self,
        db_path: Path,
        *,
        transient_failure_rate: float = 0.0,
        fraud_review_threshold_cents: int = 100_000,
        latency_seconds: float = 0.0,
        auto_approve_below_cents: int = 100_000,
        reject_above_cents: int = 10_000_000,
        blocked_requesters: tuple[str, ...] = (),
        admin_email: str = "admin@example.com",
    ) -> None:
        self.db_path = db_path
        self.transient_failure_rate = transient_failure_rate
        self.latency_seconds = latency_seconds
        self.auto_approve_below_cents = auto_approve_below_cents
        self.reject_above_cents = reject_above_cents
        self.blocked_requesters = frozenset(blocked_requesters)
        self.admin_email = admin_email
        self.fraud_review_threshold_cents = fraud_review_threshold_cents
        self._local = threading.local()
        self._random = random.Random()
        self._handlers: dict[str, Handler] = {
            c.INVENTORY_RESERVE.name: self._reserve,
            c.INVENTORY_RELEASE.name: self._release,
            c.PAYMENT_CHARGE.name: self._charge,
            c.PAYMENT_REFUND.name: self._refund,
            c.FRAUD_SCREEN.name: self._screen,
            c.SHIPPING_CREATE.name: self._ship,
            c.SHIPPING_CANCEL.name: self._cancel_shipment,
            c.EMAIL_SEND.name: self._email,
            c.NOTIFY_SEND.name: self._notify,
            c.NOTIFY_ADMIN.name: self._notify_admin,
            c.ACCOUNTS_CREATE.name: self._create_account,
            c.ACCOUNTS_DEACTIVATE.name: self._deactivate_account,
            c.ACCOUNTS_ASSIGN_ROLE.name: self._assign_role,
            c.ACCOUNTS_REVOKE_ROLE.name: self._revoke_role,
            c.WORKSPACE_CREATE.name: self._create_workspace,
            c.WORKSPACE_DELETE.name: self._delete_workspace,
            c.APPROVALS_PRESCREEN.name: self._prescreen,
            c.APPROVALS_EXECUTE.name: self._execute,
            c.APPROVALS_REVOKE.name: self._revoke,
        }
        connect(db_path).close()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path)
        return conn

    async def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        return await asyncio.to_thread(self.call_sync, command, payload)

    async def close(self) -> None:
        return None

    def call_sync(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(command)
        spec = c.COMMANDS.get(command)
        if handler is None or spec is None:
            raise BusinessError("unknown_command", f"no local service answers {command!r}")
        key = str(_require(payload, "idempotency_key"))
        request = _request(spec, payload)
        conn = self._conn()
        lose_answer = False
        if self.transient_failure_rate and self._random.random() < self.transient_failure_rate:
            if self._random.random() < 0.5:
                raise TransientError(f"{command}: injected transient failure")
            lose_answer = True
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(request, c.ChargePayment) and request.card == FLAKY_CARD and self._flaky(conn, key):
                conn.execute("COMMIT")
                raise TransientError(f"{command}: card network timeout ({FLAKY_CARD})")
            row = conn.execute(
                "SELECT ok, response FROM calls WHERE idempotency_key = ? AND command = ?", (key, command)
            ).fetchone()
            undone = conn.execute("SELECT * FROM undone WHERE step_key = ?", (key,)).fetchone()
            response: dict[str, Any]
            if command in UNDONE_BY and undone is not None:
                # Its compensation ran first, or the step is asked again after being undone.
                ok, response = (
                    False,
                    {
                        "code": UNDONE,
                        "message": f"{command} {key!r} was undone by {undone['undone_by']}; an undone step is not done again",
                    },
                )
            elif row is not None:
                ok, response = bool(row["ok"]), json.loads(row["response"])
            else:
                try:
                    response, ok = handler(conn, request, key).model_dump(mode="json", exclude_none=True), True
                except BusinessError as exc:
                    response, ok = {"code": exc.code, "message": exc.message}, False
                if spec.undoes is not None and spec.key_field is not None:
                    conn.execute(
                        "INSERT OR IGNORE INTO undone (step_key, command, undone_by, at) VALUES (?, ?, ?, ?)",
                        (str(getattr(request, spec.key_field)), spec.undoes, command, time.time()),
                    )
                conn.execute(
                    "INSERT INTO calls (idempotency_key, command, ok, response, at) VALUES (?, ?, ?, ?, ?)",
                    (key, command, int(ok), json.dumps(response), time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if lose_answer:
            raise TransientError(f"{command}: injected failure after commit (answer lost)")
        if not ok:
            raise BusinessError(response["code"], response["message"])
        return response

    def _flaky(self, conn: sqlite3.Connection, key: str) -> bool:
        """Count a failure for this key; true while it has failed fewer than FLAKY_FAILURES times."""
        row = conn.execute("SELECT failures FROM faults WHERE idempotency_key = ?", (key,)).fetchone()
        failures = row["failures"] if row else 0
        if failures >= FLAKY_FAILURES:
            return False
        conn.execute("INSERT OR REPLACE INTO faults (idempotency_key, failures) VALUES (?, ?)", (key, failures + 1))
        return True

    def _reserve(self, conn: sqlite3.Connection, p: c.ReserveInventory, key: str) -> c.Reservation:
        wanted: dict[str, int] = {}
        for item in p.items:
            wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
        for sku, quantity in wanted.items():
            row = conn.execute("SELECT available FROM stock WHERE sku = ?", (sku,)).fetchone()
            if row is None:
                raise BusinessError("unknown_sku", f"unknown SKU {sku!r}")
            if row["available"] < quantity:
                raise BusinessError("out_of_stock", f"{sku}: {row['available']} available, {quantity} requested")
        now = time.time()
        for sku, quantity in wanted.items():
            conn.execute("UPDATE stock SET available = available - ? WHERE sku = ?", (quantity, sku))
            conn.execute(
                "INSERT INTO reservations VALUES (?, ?, ?, ?, 'held', ?)", (key, p.order_id, sku, quantity, now)
            )
        return c.Reservation(reservation_key=key, lines=len(wanted))

    def _release(self, conn: sqlite3.Connection, p: c.ReleaseInventory, key: str) -> c.Released:
        rows = conn.execute(
            "SELECT sku, quantity FROM reservations WHERE reservation_key = ? AND status = 'held'",
            (p.reservation_key,),
        ).fetchall()
        for row in rows:
            conn.execute("UPDATE stock SET available = available + ? WHERE sku = ?", (row["quantity"], row["sku"]))
        conn.execute(
            "UPDATE reservations SET status = 'released' WHERE reservation_key = ? AND status = 'held'",
            (p.reservation_key,),
        )
        return c.Released(released_lines=len(rows)) if rows else c.Released(released_lines=0, note="no stock was held")

    def _charge(self, conn: sqlite3.Connection, p: c.ChargePayment, key: str) -> c.Charge:
        if p.card == DECLINED_CARD:
            raise BusinessError("card_declined", "payment declined by the card issuer")
        if p.amount_cents < 0:
            raise BusinessError("bad_request", "amount_cents must not be negative")
        kept = conn.execute(
            "SELECT charge_id FROM charges WHERE order_id = ? AND status = 'captured' AND charge_key != ?",
            (p.order_id, key),
        ).fetchone()
        if kept is not None:  # one order, one kept charge: a second workflow for it is refused
            raise BusinessError("already_charged", f"order {p.order_id} already has a kept charge, {kept['charge_id']}")
        charge_id = _short_id("ch", key)
        conn.execute(
            "INSERT INTO charges VALUES (?, ?, ?, ?, ?, 'captured', ?)",
            (charge_id, key, p.order_id, p.customer_id, p.amount_cents, time.time()),
        )
        return c.Charge(charge_id=charge_id, amount_cents=p.amount_cents)

    def _refund(self, conn: sqlite3.Connection, p: c.RefundPayment, key: str) -> c.Refund:
        charge = conn.execute(
            "SELECT charge_id, order_id, amount_cents, status FROM charges WHERE charge_key = ?", (p.charge_key,)
        ).fetchone()
        if charge is None:
            return c.Refund(refunded=False, note="no charge was taken")
        if charge["status"] == "captured":
            conn.execute(
                "INSERT INTO refunds VALUES (?, ?, ?, ?, ?)",
                (_short_id("re", key), charge["charge_id"], charge["order_id"], charge["amount_cents"], time.time()),
            )
            conn.execute("UPDATE charges SET status = 'refunded' WHERE charge_id = ?", (charge["charge_id"],))
        return c.Refund(refunded=True, charge_id=charge["charge_id"], amount_cents=charge["amount_cents"])

    def _screen(self, conn: sqlite3.Connection, p: c.ScreenOrder, key: str) -> c.Screening:
        threshold = self.fraud_review_threshold_cents
        return c.Screening(review=p.total_cents >= threshold, threshold_cents=threshold)

    def _ship(self, conn: sqlite3.Connection, p: c.CreateShipment, key: str) -> c.Shipment:
        shipment_id = _short_id("sh", key)
        tracking = _short_id("TRK", key).upper()
        conn.execute(
            "INSERT INTO shipments VALUES (?, ?, ?, ?, ?, 'created', ?)",
            (shipment_id, key, p.order_id, p.address, tracking, time.time()),
        )
        return c.Shipment(shipment_id=shipment_id, tracking=tracking)

    def _cancel_shipment(self, conn: sqlite3.Connection, p: c.CancelShipment, key: str) -> c.ShipmentCancelled:
        cursor = conn.execute(
            "UPDATE shipments SET status = 'cancelled' WHERE shipment_key = ? AND status = 'created'",
            (p.shipment_key,),
        )
        if cursor.rowcount:
            return c.ShipmentCancelled(cancelled=True)
        return c.ShipmentCancelled(cancelled=False, note="no shipment was created")

    def _email(self, conn: sqlite3.Connection, p: c.SendEmail, key: str) -> c.Sent:
        return c.Sent(message_id=self._post(conn, key, p.to, p.template, p.subject, p.ref))

    def _post(
        self, conn: sqlite3.Connection, key: str, recipient: str, template: str, subject: str, ref: str | None
    ) -> str:
        message_id = _short_id("msg", key)
        conn.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message_id, key, recipient, template, subject, ref, time.time()),
        )
        return message_id

    def _notify(self, conn: sqlite3.Connection, p: c.Notify, key: str) -> c.Notified:
        ids = [self._post(conn, f"{key}#{who}", who, p.template, p.subject, p.ref) for who in p.to]
        return c.Notified(message_ids=ids)

    def _notify_admin(self, conn: sqlite3.Connection, p: c.NotifyAdmin, key: str) -> c.Sent:
        return c.Sent(message_id=self._post(conn, key, self.admin_email, p.template, p.subject, p.ref))

    def _create_account(self, conn: sqlite3.Connection, p: c.CreateAccount, key: str) -> c.Account:
        taken = conn.execute(
            "SELECT account_id FROM accounts WHERE email = ? AND status = 'active'", (p.email,)
        ).fetchone()
        if taken is not None:
            raise BusinessError("email_taken", f"an active account already uses {p.email}")
        account_id = _short_id("acct", key)
        conn.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, 'active', ?)",
            (account_id, key, p.user_id, p.email, p.name, time.time()),
        )
        return c.Account(account_id=account_id)

    def _account(self, conn: sqlite3.Connection, account_key: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(
            "SELECT account_id, user_id, status FROM accounts WHERE account_key = ?", (account_key,)
        ).fetchone()
        return row

    def _deactivate_account(self, conn: sqlite3.Connection, p: c.DeactivateAccount, key: str) -> c.Deactivated:
        account = self._account(conn, p.account_key)
        if account is None:
            return c.Deactivated(deactivated=False, note="no account was created")
        conn.execute("UPDATE accounts SET status = 'deactivated' WHERE account_id = ?", (account["account_id"],))
        return c.Deactivated(deactivated=True, account_id=account["account_id"])

    def _assign_role(self, conn: sqlite3.Connection, p: c.AssignRole, key: str) -> c.RoleAssigned:
        account = self._account(conn, p.account_key)
        if account is None or account["status"] != "active":
            raise BusinessError("no_account", "no active account to assign a role to")
        conn.execute(
            "INSERT INTO roles VALUES (?, ?, ?, ?, 'granted', ?)",
            (key, account["account_id"], account["user_id"], p.role, time.time()),
        )
        return c.RoleAssigned(role=p.role, account_id=account["account_id"])

    def _revoke_role(self, conn: sqlite3.Connection, p: c.RevokeRole, key: str) -> c.Revoked:
        cursor = conn.execute(
            "UPDATE roles SET status = 'revoked' WHERE role_key = ? AND status = 'granted'", (p.role_key,)
        )
        return c.Revoked(revoked=True) if cursor.rowcount else c.Revoked(revoked=False, note="no role was granted")

    def _create_workspace(self, conn: sqlite3.Connection, p: c.CreateWorkspace, key: str) -> c.Workspace:
        workspace_id = _short_id("ws", key)
        conn.execute(
            "INSERT INTO workspaces VALUES (?, ?, ?, ?, 'active', ?)",
            (workspace_id, key, p.user_id, p.name, time.time()),
        )
        return c.Workspace(workspace_id=workspace_id)

    def _delete_workspace(self, conn: sqlite3.Connection, p: c.DeleteWorkspace, key: str) -> c.WorkspaceDeleted:
        cursor = conn.execute(
            "UPDATE workspaces SET status = 'deleted' WHERE workspace_key = ? AND status = 'active'",
            (p.workspace_key,),
        )
        if cursor.rowcount:
            return c.WorkspaceDeleted(deleted=True)
        return c.WorkspaceDeleted(deleted=False, note="no workspace was created")

    def _prescreen(self, conn: sqlite3.Connection, p: c.Prescreen, key: str) -> c.Prescreening:
        if p.requester in self.blocked_requesters:
            return c.Prescreening(decision="reject", reason=f"requester {p.requester} may not file requests")
        if p.amount_cents > self.reject_above_cents:
            reason = f"amount above the limit of {self.reject_above_cents / 100:.2f}"
            return c.Prescreening(decision="reject", reason=reason)
        if p.amount_cents < self.auto_approve_below_cents:
            return c.Prescreening(decision="approve", reason=f"amount below {self.auto_approve_below_cents / 100:.2f}")
        return c.Prescreening(decision="review", reason="needs a human decision")

    def _execute(self, conn: sqlite3.Connection, p: c.ExecuteRequest, key: str) -> c.Execution:
        kept = conn.execute(
            "SELECT execution_id FROM executions WHERE request_id = ? AND status = 'executed' AND execution_key != ?",
            (p.request_id, key),
        ).fetchone()
        if kept is not None:
            raise BusinessError(
                "already_executed", f"request {p.request_id} is already executed ({kept['execution_id']})"
            )
        execution_id = _short_id("ex", key)
        conn.execute(
            "INSERT INTO executions (execution_id, execution_key, request_id, amount_cents, at, status)"
            " VALUES (?, ?, ?, ?, ?, 'executed')",
            (execution_id, key, p.request_id, p.amount_cents, time.time()),
        )
        return c.Execution(execution_id=execution_id)

    def _revoke(self, conn: sqlite3.Connection, p: c.RevokeExecution, key: str) -> c.Revoked:
        cursor = conn.execute(
            "UPDATE executions SET status = 'revoked' WHERE execution_key = ? AND status = 'executed'",
            (p.execution_key,),
        )
        if cursor.rowcount == 0:
            return c.Revoked(revoked=False, note="nothing was executed")
        return c.Revoked(revoked=True)


# Each ledger table and the column that names the business object a row belongs to.
LEDGER_TABLES: dict[str, str] = {
    "reservations": "order_id",
    "charges": "order_id",
    "refunds": "order_id",
    "shipments": "order_id",
    "accounts": "user_id",
    "roles": "user_id",
    "workspaces": "user_id",
    "executions": "request_id",
    "outbox": "ref",
}


def read_ledger(db_path: Path, ref: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The ledger's rows, optionally only those of one order, user or request."""
    if not db_path.exists():
        return {"stock": [], **{table: [] for table in LEDGER_TABLES}}
    conn = connect(db_path)
    try:
        return _rows(conn, ref)
    except sqlite3.DatabaseError as exc:  # another program's database, say
        raise LedgerError(f"ledger {db_path}: not a ledger ({exc})") from None
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, ref: str | None) -> dict[str, list[dict[str, Any]]]:
    ledger: dict[str, list[dict[str, Any]]] = {
        "stock": [dict(row) for row in conn.execute("SELECT * FROM stock ORDER BY sku")]
    }
    for table, column in LEDGER_TABLES.items():
        if ref is None:
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY at")  # noqa: S608 - fixed names
        else:
            rows = conn.execute(f"SELECT * FROM {table} WHERE {column} = ? ORDER BY at", (ref,))  # noqa: S608
        ledger[table] = [_with_time(dict(row)) for row in rows]
    return ledger


def _with_time(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its `at` as an ISO 8601 UTC time, as flowctl prints every time (and any
    number JSON cannot hold, written into the file by hand, as text)."""
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            row[key] = str(value)
    if isinstance(row.get("at"), int | float):
        with contextlib.suppress(OverflowError, OSError, ValueError):  # a time no calendar holds: as stored
            row["at"] = datetime.fromtimestamp(row["at"], UTC).isoformat()
    return row

"""Runs mongoeco's MongoDB wire server for the Rust adapter's tests.

Usage: launcher.py PORT [SET_NAME]

No real `mongod` can be installed on these machines; mongoeco (PyPI) speaks the MongoDB wire
protocol over an in-memory engine. A few of its replies differ from a real server in ways the
Rust driver refuses, and its transactions lose writes, so this launcher patches it in-process
(monkey-patching at start-up; the installed package is never edited): at the two points where
every message passes (decoding a request, encoding a reply), in its wire session store and
command executor for transactions (point 5), and in its engine's insert check (point 6). It
changes nothing else:

1. Requests: the Rust driver sends `limit`, `batchSize`, `skip` as int64; mongoeco's
   validation only accepts plain ints. They are turned into plain ints after decoding.
2. Replies: cursor ids go out as int32 where the driver expects int64 (it then fails to
   decode every `find`/`aggregate` reply). They are re-encoded as int64.
3. Replies: some error replies (and write errors) lack `code`, which the driver requires to
   parse an error. A code is added: 11000 for duplicate keys (the adapter relies on it), 8
   UnknownError otherwise (write conflicts get theirs from point 5).
4. Replies: `hello` describes a standalone server, and the driver refuses transactions on a
   standalone. The reply is made to describe the primary of a one-member replica set
   (`setName`, `hosts`, `primary`, `me`), which is what production runs (ARCHITECTURE.md §3).
   mongoeco runs transactions either way; only the driver's topology check changes.
5. Transactions, which mongoeco gets wrong in a way that loses acknowledged writes: when a
   commit fails its write-conflict check, mongoeco raises before it clears the session's
   transaction state and before its memory engine drops the session's MVCC snapshot; a later
   `startTransaction` on that session id is ignored; and every command bound to a session
   runs inside the session's open snapshot, whatever its `autocommit`/`txnNumber` say. The
   driver returns the session id to its pool after a failed commit, so its next user (plain
   inserts included) was acknowledged and never committed. The launcher keeps, per wire
   session, the txnNumber of its latest transaction and whether it is active, committed or
   aborted, and answers as a replica set member does:
   - a failed commit aborts the transaction (snapshot dropped); a write conflict is answered
     `code 112 WriteConflict` with the `TransientTransactionError` label (mongoeco answers
     `{"ok": 0, "errmsg": "Write conflict during transaction commit"}`);
   - `startTransaction` aborts whatever transaction the session still has open, then starts;
   - a command outside a transaction (no `autocommit: false`) on a session with an open
     transaction aborts it first and runs outside it;
   - a statement, commit or abort whose txnNumber is not the session's active transaction is
     answered `251 NoSuchTransaction`, labelled `TransientTransactionError`; a commit retried
     after it succeeded is answered ok (committing is idempotent);
   - a statement of a transaction that fails (an error reply, a write error, an exception)
     aborts the transaction, as mongod does.

6. Inserts: the wire server inserts the documents of one `insert` command one at a time, and
   mongoeco then compares each one's `_id` with the `_id` of every stored document (the exact
   `_id` is found by a hash lookup first; the scan is there for ids equal by value but stored
   differently, which only numbers can be: 1, 1.0 and Int64(1)). So an insert cost a scan of the
   collection, and a batch of 5,000 LIST members into an empty collection took 200 s. The scan
   is skipped for an `_id` that holds no number, as mongoeco itself does outside single-document
   inserts; the hash lookup still refuses a duplicate.

What it still cannot imitate (mongoeco's engine, not its wire replies): conflicts are found
at commit time and engine-wide (any commit since a transaction's snapshot conflicts with it,
whichever documents it touched), where mongod finds them per document at the write; there is
no transaction lifetime limit, no lock wait, no replica set behind the `hello` reply.

What these tests cannot prove about mongod is listed in crates/store-mongo/README.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys

from bson.int64 import Int64

from mongoeco.core.bson_scalars import BsonInt32, BsonInt64
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.engines.memory import MemoryEngine
from mongoeco.errors import OperationFailure
from mongoeco.session import ClientSession
from mongoeco.wire import proxy
from mongoeco.wire._executor_support import WIRE_INTERNAL_KEYS
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.requests import WireRequestContext
from mongoeco.wire.sessions import WireSessionStore


# Request fields the driver sends as int64 and mongoeco wants as int.
_INT_FIELDS = ("limit", "batchSize", "skip", "ntoreturn")
# The error code of an error reply that has none (UnknownError), unless the message says more.
_UNKNOWN_ERROR = 8
_DUPLICATE_KEY = 11000
_WRITE_CONFLICT = 112


def _plain_ints(document: dict) -> None:
    for field in _INT_FIELDS:
        value = document.get(field)
        if isinstance(value, BsonInt32 | BsonInt64):
            document[field] = value.value
    cursor = document.get("cursor")
    if isinstance(cursor, dict):
        _plain_ints(cursor)


def _code_for(message: str) -> int:
    if "duplicate key" in message.lower() or "E11000" in message:
        return _DUPLICATE_KEY
    if "write conflict" in message.lower():
        return _WRITE_CONFLICT
    return _UNKNOWN_ERROR


def _fix_reply(document: dict, set_name: str, address: str) -> None:
    cursor = document.get("cursor")
    if isinstance(cursor, dict) and isinstance(cursor.get("id"), int) and not isinstance(cursor["id"], Int64):
        cursor["id"] = Int64(cursor["id"])
    if document.get("ok") in (0, 0.0) and "code" not in document:
        document["code"] = _code_for(str(document.get("errmsg", "")))
        if document["code"] == _WRITE_CONFLICT:
            document["codeName"] = "WriteConflict"
            document["errorLabels"] = sorted({*document.get("errorLabels", []), "TransientTransactionError"})
    for error in document.get("writeErrors") or []:
        if isinstance(error, dict) and "code" not in error:
            error["code"] = _code_for(str(error.get("errmsg", "")))
    if "maxWireVersion" in document and ("isWritablePrimary" in document or "ismaster" in document):
        document.update(
            setName=set_name,
            setVersion=1,
            hosts=[address],
            primary=address,
            me=address,
            secondary=False,
        )


# Transactions, as a replica set member runs them (see the module docstring, point 5).
_NO_SUCH_TRANSACTION = 251
_TRANSIENT = "TransientTransactionError"
_ENDING_COMMANDS = ("commitTransaction", "abortTransaction")


@dataclasses.dataclass
class _Transaction:
    """What the launcher knows of a wire session's latest transaction (mongoeco keeps none of
    it: its session only knows whether *a* transaction is open)."""

    number: int | None = None
    state: str = "none"  # "active", "committed" or "aborted"


def _transaction_of(session: ClientSession) -> _Transaction:
    transaction = getattr(session, "_bestow_transaction", None)
    if transaction is None:
        transaction = _Transaction()
        session._bestow_transaction = transaction
    return transaction


def _as_int(value: object) -> int | None:
    if isinstance(value, BsonInt32 | BsonInt64):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _command_name(body: dict) -> str:
    return next((key for key in body if key not in WIRE_INTERNAL_KEYS), "")


def _abort(session: ClientSession) -> None:
    """Aborts the session's open transaction, if any: mongoeco drops its MVCC snapshot and every
    later command on the session runs outside it again."""
    if session.transaction_active:
        session.abort_transaction()
    transaction = _transaction_of(session)
    if transaction.state == "active":
        transaction.state = "aborted"


def _write_conflict() -> OperationFailure:
    return OperationFailure(
        "Write conflict during transaction commit",
        code=_WRITE_CONFLICT,
        details={"codeName": "WriteConflict"},
        error_labels=(_TRANSIENT,),
    )


def _no_such_transaction(number: int | None, state: str) -> OperationFailure:
    reason = "has been aborted" if state == "aborted" else "is not in progress"
    return OperationFailure(
        f"Transaction with txnNumber {number} {reason}",
        code=_NO_SUCH_TRANSACTION,
        details={"codeName": "NoSuchTransaction"},
        error_labels=(_TRANSIENT,),
    )


def _install_transaction_patches() -> None:
    start_metadata = WireSessionStore._apply_transaction_metadata
    commit = WireSessionStore.commit_transaction
    abort = WireSessionStore.abort_transaction
    execute = WireCommandExecutor.execute_prepared

    def apply_transaction_metadata(session: ClientSession, body: dict) -> None:
        # Runs for every command bound to a session, before it executes.
        transaction = _transaction_of(session)
        number = _as_int(body.get("txnNumber"))
        if body.get("startTransaction") is True:
            # A new txnNumber replaces the session's open transaction (mongoeco ignored it and
            # went on in the old snapshot).
            _abort(session)
            start_metadata(session, body)
            transaction.number, transaction.state = number, "active"
            return
        if body.get("autocommit") is False:
            # A statement, commit or abort of transaction `number`.
            if transaction.number == number and transaction.state == "active" and session.transaction_active:
                return
            if (
                _command_name(body) == "commitTransaction"
                and transaction.number == number
                and transaction.state == "committed"
            ):
                return  # a retried commit that succeeded: mongoeco answers ok, as mongod does
            state = transaction.state if transaction.number == number else "none"
            _abort(session)
            raise _no_such_transaction(number, state)
        # A command outside any transaction (a pooled session's next user, an implicit session,
        # a retryable write with a new txnNumber): mongoeco would run it in the open snapshot,
        # acknowledge it and drop it with the snapshot.
        _abort(session)

    def commit_transaction(self: WireSessionStore, body: dict) -> dict:
        session = self._require_session(body)
        try:
            reply = commit(self, body)
        except Exception as error:
            # mongoeco raises before it clears the session's transaction and MVCC snapshot.
            _abort(session)
            if "write conflict" in str(error).lower():
                raise _write_conflict() from error
            raise
        transaction = _transaction_of(session)
        if transaction.state == "active":
            transaction.state = "committed"
        return reply

    def abort_transaction(self: WireSessionStore, body: dict) -> dict:
        session = self._require_session(body)
        reply = abort(self, body)
        _abort(session)
        return reply

    async def execute_prepared(self: WireCommandExecutor, context: WireRequestContext) -> dict:
        # A statement of a transaction that fails aborts the transaction, as on mongod.
        session = context.session
        in_transaction = (
            session is not None
            and context.raw_body.get("autocommit") is False
            and context.command_name not in _ENDING_COMMANDS
        )
        try:
            reply = await execute(self, context)
        except Exception:
            if in_transaction:
                _abort(session)
            raise
        if in_transaction and (reply.get("ok") in (0, 0.0) or reply.get("writeErrors")):
            _abort(session)
        return reply

    WireSessionStore._apply_transaction_metadata = staticmethod(apply_transaction_metadata)
    WireSessionStore.commit_transaction = commit_transaction
    WireSessionStore.abort_transaction = abort_transaction
    WireCommandExecutor.execute_prepared = execute_prepared



def _install_insert_patch() -> None:
    """Point 6: no scan of the collection for an `_id` that holds no number."""
    ensure_unique = MemoryEngine._ensure_unique_indexes

    def ensure_unique_indexes(self, db_name, coll_name, candidate, **options):
        if options.get("scan_payload_id") and not id_contains_numeric_value(
            candidate["_id"] if "_id" in candidate else None
        ):
            options["scan_payload_id"] = False
        return ensure_unique(self, db_name, coll_name, candidate, **options)

    MemoryEngine._ensure_unique_indexes = ensure_unique_indexes


def install_patches(set_name: str, address: str) -> None:
    decode = proxy.decode_op_msg
    encode = proxy.encode_op_msg_response

    def decode_op_msg(header, payload):
        request = decode(header, payload)
        body = dict(request.body)
        _plain_ints(body)
        return dataclasses.replace(request, body=body)

    def encode_op_msg_response(document, *, request_id, response_to):
        document = dict(document)
        _fix_reply(document, set_name, address)
        return encode(document, request_id=request_id, response_to=response_to)

    proxy.decode_op_msg = decode_op_msg
    proxy.encode_op_msg_response = encode_op_msg_response

    _install_transaction_patches()
    _install_insert_patch()


async def serve(port: int, set_name: str) -> None:
    install_patches(set_name, f"127.0.0.1:{port}")
    server = proxy.AsyncMongoEcoProxyServer(host="127.0.0.1", port=port)
    await server.start()
    print(f"mongoeco listening on 127.0.0.1:{port} (replica set {set_name})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.close()


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: launcher.py PORT [SET_NAME]")
    port = int(sys.argv[1])
    set_name = sys.argv[2] if len(sys.argv) == 3 else "rs0"
    asyncio.run(serve(port, set_name))


if __name__ == "__main__":
    main()

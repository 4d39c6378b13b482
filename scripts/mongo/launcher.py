"""Runs mongoeco's MongoDB wire server for the Rust adapter's tests.

Usage: launcher.py PORT [SET_NAME]

No real `mongod` can be installed on these machines; mongoeco (PyPI) speaks the MongoDB wire
protocol over an in-memory engine. A few of its replies differ from a real server in ways the
Rust driver refuses, so this launcher patches them in-process, at the two points where every
message passes (decoding a request, encoding a reply), and changes nothing else:

1. Requests: the Rust driver sends `limit`, `batchSize`, `skip` as int64; mongoeco's
   validation only accepts plain ints. They are turned into plain ints after decoding.
2. Replies: cursor ids go out as int32 where the driver expects int64 (it then fails to
   decode every `find`/`aggregate` reply). They are re-encoded as int64.
3. Replies: some error replies (and write errors) lack `code`, which the driver requires to
   parse an error. A code is added: 11000 for duplicate keys (the adapter relies on it), and
   112 WriteConflict with the `TransientTransactionError` label for mongoeco's optimistic
   commit check ("Write conflict during transaction commit"), as mongod labels a write
   conflict in a transaction, so that the adapter's retry loop sees what it sees in
   production. mongoeco checks conflicts engine-wide (any commit in between conflicts), so
   parallel tests meet far more of them than a real server would.
4. Replies: `hello` describes a standalone server, and the driver refuses transactions on a
   standalone. The reply is made to describe the primary of a one-member replica set
   (`setName`, `hosts`, `primary`, `me`), which is what production runs (ARCHITECTURE.md §3).
   mongoeco runs transactions either way; only the driver's topology check changes.

5. Sessions: when a commit fails (its write-conflict check), mongoeco leaves the session's
   transaction open with its stale snapshot, and `startTransaction` on a session whose
   transaction is open is ignored, so every retry of the driver meets the same stale snapshot
   (and its own earlier writes). mongod aborts a transaction whose commit fails, and a new
   `startTransaction` (new txnNumber) replaces an open one; the patch does both.

What these tests cannot prove about mongod is listed in crates/store-mongo/README.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys

from bson.int64 import Int64

from mongoeco.core.bson_scalars import BsonInt32, BsonInt64
from mongoeco.wire import proxy
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

    commit = WireSessionStore.commit_transaction
    apply_metadata = WireSessionStore._apply_transaction_metadata

    def commit_transaction(self, body):
        try:
            return commit(self, body)
        except Exception:
            session = self._require_session(body)
            if session.transaction_active:
                session.abort_transaction()
            raise

    def apply_transaction_metadata(session, body):
        if body.get("startTransaction") is True and session.transaction_active:
            session.abort_transaction()
        return apply_metadata(session, body)

    WireSessionStore.commit_transaction = commit_transaction
    WireSessionStore._apply_transaction_metadata = staticmethod(apply_transaction_metadata)


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

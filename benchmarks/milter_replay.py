"""The milter front-end's fixed cost per message, without sockets: recorded packet streams
replayed through `MilterProtocol` (codec, session, server, service glue, replies).

``record`` builds the benchmark corpus's milter streams as Postfix 3.7 sends them (its
default macro lists, one packet per read) and scans each message once for its verdict and
plan; ``replay`` (run it under ``valgrind --tool=callgrind``: instruction counts do not
depend on the machine's load) feeds the streams to a `MilterServer` through a fake
transport, the scan replaced by the recorded result, so only what happens outside
``engine.scan`` is counted. The connection's socket is a real loopback TCP socket (its
setsockopt calls are part of the cost). ``--rounds`` repeats the corpus: the difference
between two round counts, divided by the messages, is the cost of one message without the
start-up. ``--tail`` replays the engine's last steps instead (decide, on_limit,
honour_release, plan) with each message's recorded inputs.

Every reply written is hashed: the digest printed must be the same on two trees whose
behaviour is the same.

Usage:
    .venv/bin/python benchmarks/milter_replay.py record --messages 60 --out /tmp/replay.pkl
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \\
        .venv/bin/python benchmarks/milter_replay.py replay /tmp/replay.pkl --rounds 1
    (again with --rounds 3; per message = (Ir(3) - Ir(1)) / (2 * messages))
"""

from __future__ import annotations

import argparse
import asyncio
import copyreg
import gc
import hashlib
import logging
import pickle
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path.cwd()))  # the tree to measure: run from its root

# Postfix 3.7's default milter_*_macros, with the values a plain submission has
CONNECT_MACROS = {
    "j": "mx.destinataire.example",
    "{daemon_name}": "smtpd",
    "{daemon_addr}": "127.0.0.1",
    "v": "Postfix 3.7.11",
    "_": "unknown [127.0.0.1]",
}
HELO_MACROS: dict[str, str] = {}
QUEUE_ID = "4ABCDEF123"


def _proxy(values: dict[str, Any]) -> Any:
    return MappingProxyType(values)


copyreg.pickle(MappingProxyType, lambda proxy: (_proxy, (dict(proxy),)))


@dataclass
class Recorded:
    """One message: its packets (one read each), and the recorded scan result."""

    packets: list[bytes]
    verdict: Any
    plan: Any


def _packets(message: Any, queue_id: str) -> list[bytes]:
    from milter.codec import (
        ActionFlag,
        BodyChunk,
        Connect,
        Data,
        EndOfHeaders,
        EndOfMessage,
        Family,
        Header,
        Helo,
        MailFrom,
        OptNeg,
        ProtocolFlag,
        Quit,
        Rcpt,
    )
    from milter.codec.mta import encode_command
    from tests.support.milter_client import CHUNK, split_message

    mail_macros = {
        "i": queue_id,
        "{mail_addr}": message.mail_from,
        "{mail_host}": "",
        "{mail_mailer}": "smtp",
    }
    mail_macros = {k: v for k, v in mail_macros.items() if v}
    rcpt_macros = {
        "i": queue_id,
        "{rcpt_addr}": message.rcpt,
        "{rcpt_host}": "destinataire.example",
        "{rcpt_mailer}": "local",
    }
    i_only = {"i": queue_id}
    commands: list[Any] = [
        OptNeg(6, ActionFlag(0x1FF), ProtocolFlag(0x1FFFFF)),
        Connect("unknown", Family.INET, 40000, message.client_ip, macros=CONNECT_MACROS),
        Helo(message.helo),
        MailFrom(f"<{message.mail_from}>", macros=mail_macros),
        Rcpt(f"<{message.rcpt}>", macros=rcpt_macros),
        Data(macros=i_only),
    ]
    headers, body = split_message(message.raw)
    commands += [Header(name, value) for name, value in headers]  # HDR_LEADSPC
    commands.append(EndOfHeaders(macros=i_only))
    commands += [BodyChunk(body[i : i + CHUNK]) for i in range(0, len(body), CHUNK)]
    commands += [EndOfMessage(macros=i_only), Quit()]
    return [encode_command(command) for command in commands]


def record(args: argparse.Namespace) -> None:
    from benchmarks.harness.corpus import generate, make_keys
    from milter.engine import prepare_policy, scan
    from milter.model.envelope import Envelope
    from milter.policy.store import PolicyStore

    policies = PolicyStore(None)
    policies.prepare_with(prepare_policy)
    with tempfile.TemporaryDirectory() as tmp:
        keys = make_keys(Path(tmp) / "keys")
    corpus = generate(args.messages, seed=args.seed, keys=keys)
    out: list[Recorded] = []
    for index, message in enumerate(corpus):
        queue_id = f"{QUEUE_ID}{index:04X}"
        envelope = Envelope(
            client_ip=message.client_ip,
            client_name="unknown",
            helo=message.helo,
            mail_from=message.mail_from,
            rcpts=(message.rcpt,),
            queue_id=queue_id,
        )
        result = asyncio.run(scan(message.raw, envelope, policies.current, None))
        out.append(Recorded(_packets(message, queue_id), result.verdict, result.plan))
    Path(args.out).write_bytes(pickle.dumps(out))
    kinds = sorted({str(r.verdict.disposition) for r in out})
    print(f"{len(out)} messages recorded to {args.out} (verdicts: {', '.join(kinds)})")


class FakeTransport(asyncio.Transport):
    """What `MilterProtocol` needs of a transport; collects what it writes."""

    def __init__(self, protocol: asyncio.Protocol, sock: socket.socket) -> None:
        super().__init__()
        self._protocol = protocol
        self._sock = sock
        self._closing = False
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "peername":
            return ("127.0.0.1", 40000)
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _tcp_socket() -> tuple[socket.socket, list[socket.socket]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return accepted, [listener, client, accepted]


def _reads(packets: Sequence[bytes], size: int) -> list[bytes]:
    """The packets as the MTA's stream cut in reads of ``size`` bytes (0: one a packet)."""
    if not size:
        return list(packets)
    stream = b"".join(packets)
    return [stream[i : i + size] for i in range(0, len(stream), size)]


async def _replay(recorded: Sequence[Recorded], rounds: int, read_size: int = 0) -> str:
    import milter.frontends.service as service_module
    from milter.engine import prepare_policy
    from milter.frontends.milter.connection import MilterProtocol
    from milter.frontends.milter.server import MilterServer
    from milter.frontends.service import MessageService
    from milter.frontends.settings import MilterSettings
    from milter.policy.store import PolicyStore

    by_queue_id = {f"{QUEUE_ID}{i:04X}": r for i, r in enumerate(recorded)}

    @dataclass
    class _Result:
        verdict: Any
        plan: Any

    async def recorded_scan(message: Any, envelope: Any, policy: Any, resolver: Any) -> Any:
        found = by_queue_id[envelope.queue_id]
        return _Result(found.verdict, found.plan)

    service_module.scan = recorded_scan  # type: ignore[assignment]
    policies = PolicyStore(None)
    policies.prepare_with(prepare_policy)
    with tempfile.TemporaryDirectory() as tmp:
        from milter.mime.spool import SpoolConfig

        service = MessageService(policies, spool=SpoolConfig(directory=Path(tmp)))
        server = MilterServer(MilterSettings(max_connections_per_client=0), service)
        sock, keep = _tcp_socket()
        digest = hashlib.sha256()
        gc.collect()
        gc.freeze()  # as the workers do after their warm-up (milter/frontends/workers.py)
        try:
            for _ in range(rounds):
                for message in recorded:
                    protocol = MilterProtocol(server)
                    transport = FakeTransport(protocol, sock)
                    protocol.connection_made(transport)
                    for data in _reads(message.packets[:-1], read_size):
                        protocol.data_received(data)
                    assert protocol.scan is not None
                    await protocol.scan
                    protocol.data_received(message.packets[-1])  # QUIT
                    await protocol.closed
                    for data in transport.written:
                        digest.update(data)
                    digest.update(b"|")
        finally:
            for s in keep:
                s.close()
    return digest.hexdigest()


def _tail(recorded: Sequence[Recorded], rounds: int) -> str:
    """decide → on_limit → honour_release → plan with each message's inputs."""
    raise SystemExit("--tail needs inputs recorded with --tail")


def replay(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    recorded: list[Recorded] = pickle.loads(Path(args.file).read_bytes())
    digest = asyncio.run(_replay(recorded, args.rounds, args.read_size))
    print(f"{len(recorded)} messages x {args.rounds} rounds, replies sha256 {digest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="build the streams and scan results")
    rec.add_argument("--messages", type=int, default=60)
    rec.add_argument("--seed", type=int, default=2026)
    rec.add_argument("--out", required=True)
    rec.set_defaults(run=record)
    rep = sub.add_parser("replay", help="feed them to the server (under callgrind)")
    rep.add_argument("file")
    rep.add_argument("--rounds", type=int, default=1)
    rep.add_argument(
        "--read-size",
        type=int,
        default=0,
        help="cut the stream in reads of this size (0: a read a packet)",
    )
    rep.set_defaults(run=replay)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()

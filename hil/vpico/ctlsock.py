"""The supervisor's side of the control socket: JSON lines in and out, never blocking.

Several rig clients may be connected. A client that sends a line longer than MAX_LINE, or stops
reading while more than MAX_UNREAD bytes of replies wait for it, is disconnected: one misbehaving
client must not stall the board, its link or its power switch.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

MAX_LINE = 65536
MAX_UNREAD = 1 << 20


class ControlSocket:
    def __init__(self, path: Path, on_drop: Callable[[socket.socket], None]):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.inbox: dict[socket.socket, bytes] = {}
        self.outbox: dict[socket.socket, bytearray] = {}
        self.on_drop = on_drop

    def readers(self) -> list[socket.socket]:
        return [self.listener, *self.inbox]

    def writers(self) -> list[socket.socket]:
        return [c for c, out in self.outbox.items() if out]

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        self.inbox[conn] = b""
        self.outbox[conn] = bytearray()

    def requests(self, conn: socket.socket) -> list[dict | str]:
        """The complete lines a client has sent: each a request, or why it is not one."""
        if conn not in self.inbox:
            return []
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return []
        buf = self.inbox[conn] + data
        out: list[dict | str] = []
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
                out.append(req if isinstance(req, dict) else f"not a JSON object: {line[:60]!r}")
            except ValueError as e:
                out.append(str(e))
        if len(buf) > MAX_LINE:
            self.drop(conn)
            return out
        self.inbox[conn] = buf
        return out

    def reply(self, conn: socket.socket | None, msg: dict) -> None:
        if conn is None or conn not in self.outbox:
            return  # the client has gone: nobody to tell
        self.outbox[conn] += json.dumps(msg).encode() + b"\n"
        self.flush(conn)
        if conn in self.outbox and len(self.outbox[conn]) > MAX_UNREAD:
            self.drop(conn)

    def flush(self, conn: socket.socket) -> None:
        out = self.outbox.get(conn)
        if not out:
            return
        try:
            n = conn.send(out)
        except BlockingIOError:
            return
        except OSError:
            self.drop(conn)
            return
        del out[:n]

    def drop(self, conn: socket.socket) -> None:
        if self.inbox.pop(conn, None) is None:
            return
        self.outbox.pop(conn, None)
        self.on_drop(conn)
        conn.close()

    def close(self, linger_s: float = 1.0) -> None:
        """Hand out what is still owed (the reply to 'stop', say), briefly, then close all."""
        for conn, out in list(self.outbox.items()):
            try:
                conn.settimeout(linger_s)
                conn.sendall(out)
            except OSError:
                pass
            conn.close()
        self.inbox.clear()
        self.outbox.clear()
        self.listener.close()

"""A pty whose far end answers requests from a script: for the client's error paths and
rendering only (integration tests talk to the real firmware on the virtual Pico)."""

from __future__ import annotations

import os
import pty
import select
import threading
import tty

from host_tools import framing


class ScriptedPeer:
    """A pty whose far end answers every request with `answer(frame)`: for client error paths only."""

    def __init__(self, answer):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self._answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        buf = b""
        while not self._stop.is_set():
            # poll, never block in read: a closed fd's number is soon another test's pty
            if not select.select([self.master], [], [], 0.02)[0]:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while b"\x00" in buf:
                raw, buf = buf.split(b"\x00", 1)
                if raw:
                    reply = self._answer(framing.decode(raw))
                    if reply:
                        os.write(self.master, reply)

    def close(self):
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)

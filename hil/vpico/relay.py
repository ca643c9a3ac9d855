"""The programmer link between the pty and the VM's stdio: never blocks, holds bounded bytes.

The supervisor's one thread serves the link, the rig channel and the control socket, so no write
here may ever wait: a relay that blocked writing into the VM's full input pipe while the VM blocked
on its full output pipe (which only the relay drains) wedged the board for good (issue 10). Every
fd is non-blocking, and each direction has one bounded buffer, as a Pico's USB CDC has:

- **host -> board, flow control.** The board's input buffer is IN_CAP bytes here plus the VM's
  stdin pipe, cut to VM_PIPE_BYTES. While it is full the relay does not read the port: the pty's
  own buffer (about 14 KB on Linux) fills and the host's write() waits, as a Pico's CDC NAKs the
  host until the firmware reads. No byte is lost while the board is on; a host with a write timeout
  (pyserial's write_timeout) gets it.
- **board -> host, drop.** The relay always drains the VM, so the firmware never waits on its own
  writes; bytes the port cannot take are held up to OUT_CAP and past that dropped (and counted),
  as a Pico drops what a host that keeps the port open but does not read leaves in its TX buffer.
- **power off** (power cut, crash, boot-loop guard): what was in flight either way is lost, and
  what the host writes meanwhile is read and discarded, as on a board without power.
"""

from __future__ import annotations

import fcntl
import os
import termios

IN_CAP = 4096  # bytes the relay holds for the VM before it stops reading the port
OUT_CAP = 65536  # bytes the relay holds for a port nobody reads before it drops
VM_PIPE_BYTES = 4096  # the VM's stdin pipe, cut from Linux's 64 KB default to one page
CHUNK = 65536


class LinkRelay:
    def __init__(self, master: int):
        self.master = master  # the pty master, already non-blocking
        self.vm_in = self.vm_out = -1
        self.to_vm = bytearray()
        self.to_port = bytearray()
        self.dropped_to_port = 0  # bytes from the VM the port never took (nobody reading)
        self.discarded_while_off = 0  # bytes the host wrote while the board had no power

    @property
    def powered(self) -> bool:
        return self.vm_in >= 0

    def attach(self, vm_in: int, vm_out: int) -> None:
        """A VM has booted: relay to its stdin and from its stdout."""
        os.set_blocking(vm_in, False)
        os.set_blocking(vm_out, False)
        try:
            fcntl.fcntl(vm_in, fcntl.F_SETPIPE_SZ, VM_PIPE_BYTES)
        except (AttributeError, OSError):
            pass  # not Linux: the pipe keeps its own size, the flow control still holds
        self.vm_in, self.vm_out = vm_in, vm_out

    def detach(self) -> None:
        """Power is gone: bytes in flight are lost, and so is what the host had queued."""
        self.vm_in = self.vm_out = -1
        self.to_vm.clear()
        self.to_port.clear()
        try:
            termios.tcflush(self.master, termios.TCIFLUSH)
        except termios.error:
            pass

    # -- what select() should watch -------------------------------------------------
    def readers(self) -> list[int]:
        fds = [self.vm_out] if self.powered else []
        if not self.powered or len(self.to_vm) < IN_CAP:
            fds.append(self.master)  # a full input buffer: leave the bytes in the pty (flow control)
        return fds

    def writers(self) -> list[int]:
        fds = [self.master] if self.to_port else []
        if self.powered and self.to_vm:
            fds.append(self.vm_in)
        return fds

    # -- moving bytes ---------------------------------------------------------------
    def from_port(self) -> None:
        room = IN_CAP - len(self.to_vm) if self.powered else CHUNK
        try:
            data = os.read(self.master, max(1, room))
        except OSError:  # BlockingIOError included: nothing after all
            return
        if not self.powered:
            self.discarded_while_off += len(data)
            return
        self.to_vm += data
        self.push_to_vm()

    def from_vm(self) -> bool:
        """Drain the VM's output; False once its stdout has closed (the VM is gone)."""
        try:
            data = os.read(self.vm_out, CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            return False
        room = OUT_CAP - len(self.to_port)
        if len(data) > room:
            self.dropped_to_port += len(data) - room
            data = data[:room]
        self.to_port += data
        self.push_to_port()
        return True

    def push_to_vm(self) -> None:
        if self.powered and self.to_vm:
            _push(self.vm_in, self.to_vm)  # failing: the VM is going down; its stdout's EOF tells

    def push_to_port(self) -> None:
        if self.to_port and not _push(self.master, self.to_port):
            self.dropped_to_port += len(self.to_port)
            self.to_port.clear()

    def describe(self) -> dict:
        return {"to_vm_bytes": len(self.to_vm), "to_port_bytes": len(self.to_port),
                "dropped_to_port_bytes": self.dropped_to_port,
                "discarded_while_off_bytes": self.discarded_while_off}


def _push(fd: int, buf: bytearray) -> bool:
    """Write what fd takes now and remove it from buf; False when the write failed (not full)."""
    try:
        del buf[:os.write(fd, buf)]
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True

"""The device core: boot self-test, the request/response protocol, status.

Frames come from link.Deframer; each request is answered by exactly one
response or error frame with the same request id. The last few answers are
kept, so a retried request (same id, same bytes) gets the same answer again
and is never applied twice.
"""

import gc
import json
import sys
import link
import errors
import fsm_table
from errors import CommandError
from fsm import Fsm
from alarms import Alarms
from therapy import Therapy, EV_PRIMED
from version import PROTOCOL_VERSION

_RECENT = 8  # answers kept for idempotent retries
_READS = ("hello", "status", "diag")  # repeating these changes nothing: no answer kept
_FRAME_ERRORS = {
    link.BAD_COBS: (errors.BAD_FRAME, "frame is not valid COBS"),
    link.BAD_CRC: (errors.BAD_CRC, "frame CRC-16 does not match"),
    link.TOO_LONG: (errors.TOO_LONG, "frame longer than %d bytes" % link.MAX_PAYLOAD),
    link.TOO_SHORT: (errors.BAD_FRAME, "frame shorter than header + CRC (6 bytes)"),
}


class Device:
    def __init__(self, hal):
        self.hal = hal
        self.fsm = Fsm(fsm_table.TRANSITIONS, fsm_table.INITIAL)
        sys.modules.pop("fsm_table", None)  # the engine holds what it needs
        self.alarms = Alarms(hal.rtc_seconds, self._alarm_frame)
        self.deframer = link.Deframer()
        self._rx = bytearray(64)
        self._recent = [(0, -1, b"")] * _RECENT  # (req_id, request crc, answer frame); crc -1 never matches
        self._recent_next = 0
        self.ident = None
        self.therapy = Therapy(hal.rtc_seconds())
        self.t_tick = hal.ticks_ms()  # the tick at which engine time stands
        self.motor_on = False  # stepper driver enabled (it draws current: off when idle)
        self.log_failures = 0  # event-log appends that failed (reported by diag)
        self.commands = {
            # each request loads its module, and unloads it after (see _on_demand)
            "hello": "cmd_info",
            "status": "cmd_info",
            "diag": "cmd_info",
            "program": "program_cmd",
            "bolus": "therapy_cmds",
            "prime": "therapy_cmds",
            "refill": "therapy_cmds",
            "clock": "therapy_cmds",
        }

    # -- boot ----------------------------------------------------------------
    def boot(self):
        """Self-test and restore, with code loaded for boot only (startup.py)."""
        self.call("startup", "run")

    def call(self, module, fn, *args):
        """module.fn(self, *args) with the module loaded for this call only, then dropped.

        Only the delivery core stays in the heap; everything else (requests, boot,
        the event log, checkpoints) is loaded when needed, so the peak is the core
        plus one module. Loading runs after a collection: the heap never moves, and
        bytecode wants contiguous blocks.
        """
        loaded = list(sys.modules)
        gc.collect()
        try:
            return getattr(__import__(module), fn)(self, *args)
        finally:
            for name in list(sys.modules):
                if name not in loaded:
                    sys.modules.pop(name)
            gc.collect()

    def log(self, event, text=""):
        """Append an entry to the event log (evlog.py); never lets a log failure stop the pump."""
        try:
            self.call("evlog", "append", event, text)
        except Exception:  # noqa: BLE001 - logging must not take delivery down
            self.log_failures += 1

    def next_deadline(self):
        """Ticks of the next stroke or rate change, or None (only link input wakes us)."""
        dt = self.therapy.next_event()
        if dt < 0:
            return None
        return self.hal.ticks_add(self.t_tick, dt * 100)

    def service(self):
        """Run every therapy event that is due: the steady-state stroke step allocates nothing."""
        th = self.therapy
        hal = self.hal
        while True:
            dt = th.next_event()
            if dt < 0:
                return
            ms = dt * 100
            if hal.ticks_diff(hal.ticks_ms(), self.t_tick) < ms:
                return
            self.t_tick = hal.ticks_add(self.t_tick, ms)
            if th.step():
                if not self.motor_on:
                    self.motor_on = True
                    hal.motor_enable(True)
                hal.stroke()
            if th.events:
                self._therapy_events()

    def _therapy_events(self):
        ev = self.therapy.events
        self.therapy.events = 0
        if ev & EV_PRIMED and self.fsm.state == "priming":
            self.fsm.fire("primed_stopped" if self.therapy.mode == "stopped" else "primed_resume")

    def sync(self):
        """Bring engine time up to now (events first), before a request reads or changes therapy."""
        self.service()
        hal = self.hal
        ds = hal.ticks_diff(hal.ticks_ms(), self.t_tick) // 100
        if ds > 0:
            self.therapy.idle(ds)
            self.t_tick = hal.ticks_add(self.t_tick, ds * 100)

    def _on_demand(self, module, cmd, args):
        """A request: engine time brought up to now, then module.cmd(self, args) (see call)."""
        self.sync()
        try:
            return self.call(module, cmd, args)
        finally:
            if self.motor_on and not self.therapy.d.rate:
                self.motor_on = False
                self.hal.motor_enable(False)

    # -- link ----------------------------------------------------------------
    def poll_link(self):
        rx = self._rx
        feed = self.deframer.feed
        while True:
            n = self.hal.link_read(rx)
            for i in range(n):
                r = feed(rx[i])
                if r == link.FRAME:
                    self._handle_frame()
                elif r < 0:
                    code, text = _FRAME_ERRORS[r]
                    self._send(link.KIND_ERROR, 0, self._error_body(code, text))
            if n < len(rx):
                return

    def _handle_frame(self):
        p = self.deframer.payload
        n = self.deframer.length
        req_id = (p[2] << 8) | p[3]
        if p[0] != PROTOCOL_VERSION:
            self._send(link.KIND_ERROR, req_id, self._error_body(
                errors.UNSUPPORTED_VERSION,
                "protocol version %d not supported; this device speaks version %d" % (p[0], PROTOCOL_VERSION)))
            return
        if p[1] != link.KIND_REQUEST:
            self._send(link.KIND_ERROR, req_id, self._error_body(
                errors.BAD_KIND, "frame kind 0x%02X is not a request (0x51)" % p[1]))
            return
        if req_id == 0:
            self._send(link.KIND_ERROR, 0, self._error_body(
                errors.BAD_REQUEST, "request id 0 is reserved for unsolicited frames; use 1..65535"))
            return
        crc = link.crc16(p, n)
        for entry in self._recent:
            if entry[0] == req_id and entry[1] == crc:
                self.hal.link_write(entry[2])  # a retry: same answer, not applied again
                return
        kind, keep, body = self._execute(bytes(p[link.HEADER_LEN:n]))
        if len(body) > link.MAX_PAYLOAD - link.HEADER_LEN:
            kind, body = link.KIND_ERROR, self._error_body(
                errors.INTERNAL, "answer of %d bytes exceeds the %d-byte frame limit" % (len(body), link.MAX_PAYLOAD))
        frame = link.encode(link.header(kind, req_id) + body)
        if keep:
            self._recent[self._recent_next] = (req_id, crc, frame)
            self._recent_next = (self._recent_next + 1) % _RECENT
        self.hal.link_write(frame)

    def _execute(self, body):
        try:
            req = json.loads(body)
        except ValueError:
            return link.KIND_ERROR, False, self._error_body(errors.BAD_REQUEST, "request body is not JSON")
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return link.KIND_ERROR, False, self._error_body(
                errors.BAD_REQUEST, "request must be a JSON object with a string 'cmd'")
        cmd = req["cmd"]
        args = req.get("args", {})
        if not isinstance(args, dict):
            return link.KIND_ERROR, False, self._error_body(errors.BAD_REQUEST, "'args' must be a JSON object")
        handler = self.commands.get(cmd)
        if handler is None:
            return link.KIND_ERROR, False, self._error_body(
                errors.UNKNOWN_COMMAND,
                "unknown command '%s' (known: %s)" % (cmd[:32], ", ".join(sorted(self.commands))))
        keep = cmd not in _READS
        try:
            result = self._on_demand(handler, cmd, args)
        except CommandError as e:
            return link.KIND_ERROR, keep, self._error_body(e.code, e.text)
        except Exception as e:  # a firmware bug must not take the link down
            return link.KIND_ERROR, keep, self._error_body(errors.INTERNAL, "internal error: " + repr(e))
        return link.KIND_RESPONSE, keep, json.dumps(result).encode()

    @staticmethod
    def _error_body(code, text):
        return json.dumps({"code": code, "error": errors.NAMES[code], "text": text}).encode()

    def _send(self, kind, req_id, body):
        self.hal.link_write(link.encode(link.header(kind, req_id) + body))

    def _alarm_frame(self, event, code, priority, since):
        body = {"event": event, "code": code, "priority": priority, "since": since}
        self._send(link.KIND_ALARM, 0, json.dumps(body).encode())

    # -- what stays resident for every request --------------------------------
    def identity(self):
        return self.ident["serial"] if self.ident else None

    def summary(self):
        """What the prescription amounts to: the answer to every programming request."""
        th = self.therapy
        return {
            "state": self.fsm.state,
            "mode": th.mode,
            "daily_dose_mcg": (th.daily_x1440 + 720) // 1440,
            "rate_nl_per_day": th.d.rate,
            "concentration_mcg_per_ml": th.conc or None,
        }

    def new_session(self):
        """Forget answers kept for retries: they belong to another session."""
        for i in range(_RECENT):
            self._recent[i] = (0, -1, b"")

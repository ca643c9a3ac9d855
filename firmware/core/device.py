"""The device core: boot self-test, the request/response protocol, status.

Frames come from link.Deframer; each request is answered by exactly one
response or error frame with the same request id. The last few answers are
kept, so a retried request (same id, same bytes) gets the same answer again
and is never applied twice.
"""

import gc
import json
import sys
from core import link
from core import errors
from core.errors import CommandError
from core.fsm import Fsm
from alarms.catalogue import Alarms
from therapy.engine import Therapy, EV_PRIMED, EV_BRIDGE_DONE
from core.version import PROTOCOL_VERSION
from micropython import const

_RECENT = const(8)  # answers kept for idempotent retries
# the device's JSON is compact: every byte costs again in CRC, COBS and USB. (Named as json.dumps's
# argument: a name the firmware image holds already, not one more interned in the heap.)
separators = (",", ":")
_LINK_BUDGET = const(4352)  # link bytes served per main-loop pass: two of the largest frames (2060 + 0x00) and some
_REVIEW = const(2)  # keep this answer as the newest review (see _handle_frame)
_LAST_MAX = const(32)  # the longest request body _execute keeps parsed (heap: never a long one)
TICK_MS = 600000  # the 10-minute housekeeping tick (battery, alarm repeats, stall restarts)
SUMMARY = ("state", "mode", "daily_dose_mcg", "rate_nl_per_day", "concentration_mcg_per_ml")  # summary()'s keys
_READS = ("hello", "status", "diag", "log")  # repeating these changes nothing: no answer kept
# Kept loaded from boot when the heap has room: hello, status and diag are the frequent reads, and
# loading a module from a Pico's flash costs ~20 ms of CPU per request (bench/rp2040.py,
# docs/rp2040.md). A budget-size heap (64 KB, docs/architecture.md) loads them per request.
_RESIDENT = ("info",)  # of requests/
_RESIDENT_MIN_FREE = const(65536)  # heap free after boot that keeps them
_NO_SAVE = _READS + ("auth",)  # nothing to save after these (auth saves its own failures)
_HEAP_BUDGET = const(65536)  # the live heap the firmware holds itself to (spec §11), whatever the board has
# a load that leaves its call less of the budget than this (a programming request's: ~10 KB of
# code on the emulated RP2040, docs/architecture.md "Memory") runs with the resident modules gone;
# the next read loads them again, once. Smaller loads (log, auth, alarms, clock: ~4 KB) keep them,
# or the frequent reads would pay a load after each.
_CALL_ROOM = const(6144)
_READ_WHEN_EMPTY = ("alarms", "clock", "limits", "ptm")  # without args these only read
_TWO_PHASE = ("program", "bolus", "prime", "refill", "ptm")  # a request prepares; "commit" applies
# the role a request needs (spec §7); others are open to anyone on the link
_ROLE = {"program": "clinician", "bolus": "clinician", "prime": "clinician", "refill": "clinician",
         "commit": "clinician", "ptm": "clinician", "limits": "clinician", "clock": "clinician",
         "alarms": "clinician", "alarm_test": "clinician", "patient_bolus": "patient"}


def load(name):
    """The module called name ("requests.program"), imported: __import__ gives a dotted name's
    top package, not the module."""
    __import__(name)
    return sys.modules[name]


def drop(name):
    """Forget a module so its code can be collected: out of sys.modules, and off its package,
    which an import binds it to as an attribute (a resident package would keep it alive)."""
    module = sys.modules.pop(name, None)
    dot = name.rfind(".")
    if dot > 0:
        package = sys.modules.get(name[:dot])
        if package is not None and getattr(package, name[dot + 1:], None) is module:
            delattr(package, name[dot + 1:])


# each request's module: loaded for the request, and unloaded after (see _on_demand): a module of
# requests/ by its name, another by its dotted name (see _execute); built at import, so its literal
# costs no bytecode in the resident Device.__init__ (the name is Device's attribute's: no new
# interned name)
commands = {
    "hello": "info",
    "status": "info",
    "diag": "info",
    "program": "program",
    "bolus": "bolus",
    "prime": "prime",
    "refill": "refill",
    "clock": "clock",
    "log": "log",
    "alarms": "alarms",
    "alarm_test": "alarms",
    "auth": "safety.auth",
    "commit": "safety.two_phase",
    "limits": "limits",
    "ptm": "ptm",
    "patient_bolus": "ptm",
}


class Part:
    pass  # a part of the device's state (Device.__init__): attributes only, as a class with methods costs heap


class Device:
    def __init__(self, hal):
        self.hal = hal
        name = "core." + "fsm_table"  # in two parts: see call_in
        table = load(name)
        self.fsm = Fsm(table.TRANSITIONS, table.INITIAL)
        del table
        drop(name)  # the engine holds what it needs: the table can go
        self.alarms = Alarms(hal.rtc_seconds, self._alarm_frame)
        self.deframer = link.Deframer()
        self._rx = bytearray(64)
        self._noise = None  # refusals.py while bad frames keep coming (_link_error)
        self._recent = [(0, -1, b"")] * _RECENT  # (req_id, request crc, answer frame); crc -1 never matches
        self._recent_next = 0
        self._review = (0, -1, b"")  # the newest review, kept apart: one large answer, not eight
        self._last = (None, None, None, None)  # the last short read's body, cmd, args, module (_execute)
        self.ident = None  # the serial number (ident.json), set at boot (core/startup.py)
        self.therapy = Therapy(hal.rtc_seconds())
        self.t_tick = hal.ticks_ms()  # the tick at which engine time stands
        self.motor_on = False  # stepper driver enabled (it draws current: off when idle)
        self.synced = False  # a request ran sync() during this poll_link (app.run then skips service())
        self.resident = ()  # request modules kept loaded (boot decides, by the heap's room)
        self._kept = []  # the modules they loaded with them (given way together, see call)
        self.heap_watch = False  # diag heap_watch: measure the live heap after every module call
        self.heap_peak = 0  # the most seen while watching, bytes
        self.rotor_seen = hal.rotor_count()
        self.tick_at = hal.ticks_add(self.t_tick, TICK_MS)
        # the device's state in parts, each written by its owners only (docs/architecture.md section 8)
        s = self.safety = Part()  # safety limits and the 24 h dose history (safety/limits.py), patient bolus (requests/ptm.py)
        s.lim = None  # set at boot (core/startup.py): defaults or the saved limits
        s.hist = []
        s.past = [self.therapy.now_s(), [], [], None]  # the scheduled doses of the last 24 h (therapy/schedule.py)
        s.ptm = None
        s.ptm_used = []
        s.low_reservoir_nl = 2000000  # low-reservoir alarm threshold (clinician limit)
        s = self.session = Part()  # authentication (safety/auth.py) and two-phase programming (safety/two_phase.py, safety/review.py)
        s.auth = None  # [role, session key, last counter] (RAM only)
        s.nonce = None  # (role, nonce) of the open challenge
        s.auth_fails = 0  # (saved with the state, as the lockout)
        s.auth_lock = 0  # device time until which auth is locked
        s.pending = None  # the prepared change waiting for its commit (RAM only)
        s.expect = None  # during a commit: the review the prepare showed
        s.fp = None  # the last review built
        s = self.storage = Part()  # bookkeeping of the state copies (storage/state.py) and the event log (storage/event_log.py)
        s.ckpt_floor = -1  # reservoir nL at which the next checkpoint is due (storage/state.py)
        s.store_seq = 0  # sequence number of the last saved copy
        s.log_seq = None  # last event-log sequence number; None until storage/event_log.py has scanned
        s.log_failures = 0  # event-log appends that failed (reported by diag)
        self.commands = commands

    # -- boot ----------------------------------------------------------------
    def boot(self):
        """Self-test and restore, with code loaded for boot only (core/startup.py); then the modules
        of the frequent reads, kept loaded from here on."""
        self.call_in("core", "startup", "run")
        free = getattr(gc, "mem_free", None)  # MicroPython's (CPython tests have none: per request)
        if free is not None and free() >= _RESIDENT_MIN_FREE:
            self.resident = tuple("requests." + m for m in _RESIDENT)
            self._keep()

    def _keep(self):
        """Load the resident modules (again, after they gave way), noting what came with them."""
        loaded = list(sys.modules)
        gc.collect()
        for module in self.resident:
            load(module)
        self._kept = [name for name in sys.modules if name not in loaded]
        gc.collect()

    def call(self, module, fn, *args):
        """module.fn(self, *args) with the module loaded for this call only, then dropped.

        Only the delivery core stays in the heap; everything else (requests, boot,
        the event log, checkpoints) is loaded when needed, so the peak is the core
        plus one module. Loading runs after a collection: the heap never moves, and
        bytecode wants contiguous blocks. The resident modules give way to a load that
        leaves its call too little of the heap budget, and come back with the next read.
        """
        if module in self.resident:
            if module not in sys.modules:
                self._keep()  # they gave way to a large load: the next read loads them again
            return getattr(load(module), fn)(self, *args)  # loaded: no load, no collection
        loaded = list(sys.modules)
        gc.collect()
        try:
            code = load(module)
            if self._kept and gc.mem_alloc() > _HEAP_BUDGET - _CALL_ROOM:  # too little room: they give way
                for name in self._kept:
                    drop(name)
                self._kept = []
                gc.collect()
            return getattr(code, fn)(self, *args)
        finally:
            if self.heap_watch:  # diag's heap watch: the live heap with the module still loaded
                gc.collect()
                self.heap_peak = max(self.heap_peak, gc.mem_alloc())
            for name in list(sys.modules):
                if name not in loaded:
                    drop(name)
            gc.collect()

    def call_in(self, package, module, fn, *args):
        """call() of package.module. The core names the modules it loads in two parts: a dotted
        name written as one constant would stay in the heap as a string for as long as the core is
        loaded (MicroPython interns constants of up to 10 characters only, and a module's name
        once it is imported), about 1.4 KB for the core's names on the 64-bit virtual Pico."""
        return self.call(package + "." + module, fn, *args)

    def log(self, event, n=(), codes="", text=""):
        """Append an entry to the event log (storage/event_log.py: its integers n in device units, its codes,
        its reason); never lets a log failure stop the pump."""
        try:
            self.call_in("storage", "event_log", "append", event, n, codes, text)
        except Exception:  # noqa: BLE001 - logging must not take delivery down
            self.storage.log_failures += 1

    def next_deadline(self):
        """Ticks of the next stroke, rate change, buzzer change or housekeeping tick."""
        hal = self.hal
        soonest = self.tick_at
        dt = self.therapy.next_event()
        if dt >= 0:
            at = hal.ticks_add(self.t_tick, dt * 100)
            if hal.ticks_diff(at, soonest) < 0:
                soonest = at
        tone = self.alarms.tone_at
        if tone >= 0 and hal.ticks_diff(tone, soonest) < 0:
            soonest = tone
        return soonest

    def service(self):
        """Run everything that is due: the steady-state stroke step allocates nothing."""
        th = self.therapy
        hal = self.hal
        al = self.alarms  # its watch points (alarms/rules.py) and tones (alarms/tones.py)
        while True:
            dt = th.next_event()
            if dt < 0:
                break
            ms = dt * 100
            if hal.ticks_diff(hal.ticks_ms(), self.t_tick) < ms:
                break
            self.t_tick = hal.ticks_add(self.t_tick, ms)
            if th.step():
                self._stroke()
            if th.events:
                self._therapy_events()
        now = hal.ticks_ms()
        if al.tone_at >= 0 and hal.ticks_diff(now, al.tone_at) >= 0:
            al.tone_at = -1
            self.call_in("alarms", "tones", "step")
        if hal.ticks_diff(now, self.tick_at) >= 0:
            self.tick_at = hal.ticks_add(self.tick_at, TICK_MS)
            # device time now: engine time stands at the last event, ticks run on
            now_s = th.now_s() + hal.ticks_diff(now, self.t_tick) // 1000
            if hal.battery_mv() <= al.battery_floor or 0 <= al.wake_s <= now_s:
                self.call_in("alarms", "rules", "tick")
        if al.dates[2]:  # the therapy, the reservoir or a threshold changed: predict again
            self.call_in("therapy", "dates", "keep")

    def _stroke(self):
        hal = self.hal
        if not self.motor_on:
            self.motor_on = True
            hal.motor_enable(True)
        hal.stroke()
        rotor = hal.rotor_count()
        if rotor == self.rotor_seen:
            self.call_in("alarms", "rules", "stroke_missed")  # no rotor pulse: a motor stall, no drug moved
        else:
            self.rotor_seen = rotor
            self.therapy.stroked()  # only a stroke the rotor confirmed is delivered
        if self.therapy.reservoir_nl <= self.alarms.reservoir_floor:
            self.call_in("alarms", "rules", "reservoir")
        if self.therapy.reservoir_nl <= self.storage.ckpt_floor:
            self.call_in("storage", "state", "checkpoint")

    def _therapy_events(self):
        ev = self.therapy.events
        self.therapy.events = 0
        if ev & EV_PRIMED and self.fsm.state == "priming":
            self.fsm.fire("primed_stopped" if self.therapy.mode == "stopped" else "primed_resume")
            self.log("primed", (self.therapy.prime_volume,))
        if ev & EV_BRIDGE_DONE:
            self.log("bridge_done", (self.therapy.conc,))
        if ev & (EV_PRIMED | EV_BRIDGE_DONE):
            self.alarms.dates[2] = True
            self.call_in("storage", "state", "save")

    def sync(self):
        """Bring engine time up to now (events first), before a request reads or changes therapy."""
        self.service()
        self.synced = True
        hal = self.hal
        ds = hal.ticks_diff(hal.ticks_ms(), self.t_tick) // 100
        if ds > 0:
            self.therapy.idle(ds)
            self.t_tick = hal.ticks_add(self.t_tick, ds * 100)

    def _on_demand(self, module, cmd, args):
        """A request: engine time brought up to now, then module.cmd(self, args) (see call).

        A two-phase request only prepares: it answers the review and changes nothing; the
        commit runs it again, for real, with the review it must still match.
        """
        self.sync()
        try:
            if cmd in _TWO_PHASE and (args or cmd != "ptm"):
                out = self.change(module, cmd, args, False)
                out["token"], out["expires_s"] = self.call_in("safety", "two_phase", "hold", cmd, module, args)
                return out  # nothing changed: nothing to save
            if cmd == "commit":
                self._review = (0, -1, b"")  # its retry answer is no longer needed: heap for the commit
                module, cmd, args = self.call_in("safety", "two_phase", "take", args)
                try:
                    out = self.change(module, cmd, args, True)
                finally:
                    self.session.expect = None
                out["committed"] = cmd
            else:
                # a resident module (status: the frequent read) is called straight, not through
                # call()'s loading and star arguments (~0.3 ms on a Pico)
                code = sys.modules.get(module) if module in self.resident else None  # None: gave way
                out = getattr(code, cmd)(self, args) if code else self.call(module, cmd, args)
            if cmd not in _NO_SAVE and (args or cmd not in _READ_WHEN_EMPTY):
                self.alarms.dates[2] = True  # predicted again by the next service()
                self.call_in("storage", "state", "save")  # a committed change survives any power cut from now
            return out
        finally:
            self.motor_idle()

    def motor_idle(self):
        """Disable the stepper driver when nothing is delivered (it draws current, and a jammed
        rotor must not stay energised): after a request, and when an alarm halts delivery."""
        if self.motor_on and not self.therapy.d.rate:
            self.motor_on = False
            self.hal.motor_enable(False)

    def change(self, module, cmd, args, commit):
        """A two-phase request in loads that never share the heap: the module's check (its
        plan), the review (safety/review.py, with the limits), then on a commit the module's apply.
        Without commit: the review with its dates (therapy/dates.py; a commit's are predicted after it,
        by service()), and nothing changed."""
        plan = self.call(module, cmd, args)
        review = self.call_in("safety", "review", "build", plan)
        if not commit:
            self.call_in("therapy", "dates", "sides", plan, review)  # the alarm and refill dates, now and once applied
            return review
        if "prog" in plan:  # a new prescription: the running one's last 24 h go into the record first
            self.call_in("therapy", "schedule", "close", plan)
        # apply needs only the verdict: the rest of the review goes before its loads (heap)
        review = {"warnings": review["warnings"], "overrides": review["overrides"]}
        return self.call(module, "apply", plan, review)

    # -- link ----------------------------------------------------------------
    def poll_link(self):
        """Serve the frames waiting on the link, up to _LINK_BUDGET bytes: a host that never
        stops sending must not keep the main loop from its strokes and the watchdog's feed.
        True when a request brought engine time up to now (sync()) on the way."""
        rx = self._rx
        deframer = self.deframer
        self.synced = False
        turns = _LINK_BUDGET // len(rx)
        while turns:  # (not a range: an allocation each main-loop pass)
            turns -= 1
            n = self.hal.link_read(rx)
            i = 0
            while i < n:  # a frame's bytes in one go, up to its delimiter
                r = deframer.feed_from(rx, i, n)
                i = deframer.used
                if r == link.FRAME:
                    self._handle_frame()
                elif r < 0:
                    self._send(link.KIND_ERROR, 0, self._link_error(r))
            if n < len(rx):
                break
        return self.synced

    def _link_error(self, r):
        """The error body of a bad frame. Its words are refusals.py's, loaded at the first bad frame
        and kept while bad frames keep coming (line noise or a burst brings them by the thousand:
        one load, not one per frame), dropped at the next good frame (_handle_frame)."""
        if self._noise is None:
            gc.collect()
            self._noise = load("core." + "refusals")
        return self._error_body(*self._noise.link_error(r))

    def _handle_frame(self):
        if self._noise is not None:  # the bad frames are over: their words can go
            self._noise = None
            drop("core." + "refusals")
            gc.collect()
        p = self.deframer.payload
        n = self.deframer.length
        req_id = (p[2] << 8) | p[3]
        if p[0] != PROTOCOL_VERSION:
            self._send(link.KIND_ERROR, req_id, self._refuse(errors.UNSUPPORTED_VERSION, "version", p[0]))
            return
        if p[1] != link.KIND_REQUEST:
            self._send(link.KIND_ERROR, req_id, self._refuse(errors.BAD_KIND, "kind", p[1]))
            return
        if req_id == 0:
            self._send(link.KIND_ERROR, 0, self._refuse(errors.BAD_REQUEST, "req_id"))
            return
        try:
            body = self._last[0]
            if body is not None and n - link.HEADER_LEN == len(body) and p.find(body, link.HEADER_LEN, n) == link.HEADER_LEN:
                # the last short read again (compared in place: no copy): reads are never kept, so
                # no retry to look up
                crc = -1
            else:
                body = bytes(p[link.HEADER_LEN:n])
                crc = link.crc16(p, n)
                for entry in self._recent:
                    if entry[0] == req_id and entry[1] == crc:
                        self.hal.link_write(entry[2])  # a retry: same answer, not applied again
                        return
                if self._review[0] == req_id and self._review[1] == crc:
                    self.hal.link_write(self._review[2])
                    return
            kind, keep, body = self._execute(body)
            if len(body) > link.MAX_PAYLOAD - link.HEADER_LEN:
                kind, body = link.KIND_ERROR, self._refuse(errors.INTERNAL, "too_big", len(body))
            # an answer kept for retries gets its own buffer; any other is written into the
            # deframer's, free once the request is taken (no allocation of the answer's size)
            frame = link.encode(kind, req_id, body, None if keep else self.deframer.payload, True)
        except MemoryError:  # no room to build the answer: say so in a small one
            keep = False
            body = None
            gc.collect()
            frame = link.encode(link.KIND_ERROR, req_id, b'{"code":10,"error":"internal",'
                                b'"text":"out of memory building the answer"}', self.deframer.payload, True)
        if keep == _REVIEW:
            self._review = (req_id, crc, frame)
        elif keep:
            self._recent[self._recent_next] = (req_id, crc, frame)
            self._recent_next = (self._recent_next + 1) % _RECENT
        self.hal.link_write(frame)

    def _execute(self, body):
        last = self._last
        if body is last[0]:  # the same short read as the last request (_handle_frame): parsed and checked then
            cmd, args, handler = last[1], last[2], last[3]
            keep = need = False
        else:
            try:
                req = json.loads(body)
            except ValueError:
                return link.KIND_ERROR, False, self._refuse(errors.BAD_REQUEST, "not_json")
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                return link.KIND_ERROR, False, self._refuse(errors.BAD_REQUEST, "no_cmd")
            cmd = req["cmd"]
            args = req.get("args", {})
            if not isinstance(args, dict):
                return link.KIND_ERROR, False, self._refuse(errors.BAD_REQUEST, "args")
            handler = self.commands.get(cmd)
            if handler is None:
                return link.KIND_ERROR, False, self._refuse(errors.UNKNOWN_COMMAND, "unknown", cmd)
            # a module of requests/ by its name, another by its dotted name (kept so in _last)
            handler = handler if "." in handler else "requests." + handler
            # reads are not kept for retries (repeating them changes nothing); a review is, in its own
            # slot: a signed prepare cannot run twice (its counter), and reviews are large answers
            keep = _REVIEW if cmd in _TWO_PHASE and (args or cmd != "ptm") else cmd not in _READS
            need = _ROLE.get(cmd)
            if not args and not keep and not need and len(body) <= _LAST_MAX:
                # a read without args (no role, nothing kept, its args never changed): the next
                # identical body skips json.loads and the checks (status every few seconds)
                self._last = (body, cmd, args, handler)
        try:
            if need and (args or cmd not in _READ_WHEN_EMPTY):
                if cmd == "limits" and "hard_max_mcg" in args:
                    need = "service"  # a factory limit
                self.call_in("safety", "auth", "verify", body, req, cmd, need)
            result = self._on_demand(handler, cmd, args)
        except CommandError as e:
            return link.KIND_ERROR, keep, self._error_body(e.code, e.text, e.detail)
        except Exception as e:  # a firmware bug must not take the link down
            return link.KIND_ERROR, keep, self._error_body(errors.INTERNAL, "internal error: " + repr(e))
        if isinstance(result, memoryview):  # JSON text already (status: requests/info.py)
            return link.KIND_RESPONSE, keep, result
        return link.KIND_RESPONSE, keep, json.dumps(result, separators=separators).encode()

    def _refuse(self, code, why, value=None):
        """An error body whose text refusals.py words (loaded for it: a well-formed frame refused
        is rare, and the sentences are long)."""
        return self._error_body(code, self.call_in("core", "refusals", "text", why, value))

    @staticmethod
    def _error_body(code, text, detail=None):
        body = {"code": code, "error": errors.NAMES[code], "text": text}
        if detail:
            body.update(detail)
        return json.dumps(body, separators=separators).encode()

    def _send(self, kind, req_id, body):
        self.hal.link_write(link.encode(kind, req_id, body, None, True))

    def _alarm_frame(self, event, code, priority, since):
        body = {"event": event, "code": code, "priority": priority, "since": since}
        self._send(link.KIND_ALARM, 0, json.dumps(body, separators=separators).encode())

    # -- what stays resident for every request --------------------------------
    def identity(self):
        return self.ident

    def summary(self):
        """What the prescription amounts to: the answer to every programming request."""
        return dict(zip(SUMMARY, self.summary_values()))

    def summary_values(self):
        """summary()'s values in SUMMARY's order, without the dict (status writes them itself)."""
        th = self.therapy
        return self.fsm.state, th.mode, (th.daily_x1440 + 720) // 1440, th.d.rate, th.conc or None

    def new_session(self):
        """Forget answers kept for retries, the authenticated role and a prepared change:
        they belong to another session."""
        for i in range(_RECENT):
            self._recent[i] = (0, -1, b"")
        self._review = (0, -1, b"")
        s = self.session
        s.auth = None
        s.nonce = None
        s.pending = None

"""Alarms (spec §5, §12) under CPython with the in-memory HAL: rules, effects, tones, log, timing.

The device runs as its main loop does (wake at each deadline, service); the HAL's RTC follows
its tick counter, so alarm times are virtual times. dev.log is wrapped to see what is logged.
"""

from __future__ import annotations

from alarms import rules as alarm_rules
from alarms import tones as buzzer
import pytest
from core.device import TICK_MS, Device
from device_harness import ClockHal, run_ms
from device_session import session


HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DAY_S = 86_400
T0 = 800_000_000  # the HAL's RTC at boot
CRITICAL = [(1320, 500), (880, 500)] * 3 + [(0, None)]  # (Hz, ms until the next change)
NON_CRITICAL = [(1000, 1000), (0, None)]

pytestmark = pytest.mark.usefixtures("fast_calls")


class IntermittentHal(ClockHal):
    """The 2012/2019 plant: the rotor sticks for the first 20 min of every 2 hours."""

    def stroke(self):
        self.strokes += 1
        self.missed += (self.ms - self.ms0) % (2 * HOUR_MS) < 20 * 60_000


class Pump:
    def __init__(self, hal: ClockHal):
        self.hal = hal
        self.dev = Device(hal)
        self.dev.boot()
        alarm_rules.arm(self.dev)
        self.logged: list[tuple[int, str, str]] = []  # (device s, event, "codes numbers")
        real = self.dev.log

        def log(event, n=(), codes="", text=""):
            record = " ".join(codes.split() + [str(x) for x in n]) + ("; " + text if text else "")
            self.logged.append((self.dev.therapy.now_s(), event, record))
            real(event, n, codes, text)

        self.dev.log = log  # type: ignore[method-assign]
        self.frames: list[dict] = []  # unsolicited alarm frames
        self._ids = iter(range(1, 60000))

    def ask(self, cmd: str, **args) -> dict:
        good, body = self.request(cmd, **args)
        assert good, body
        return body

    def request(self, cmd: str, **args) -> tuple[bool, dict]:
        """A clinician's request (authenticated; two-phase ones prepared and committed)."""
        s = session(self.dev)
        s.unsolicited = self.frames
        return s.ask(cmd, **args)

    def run(self, ms: int) -> None:
        """Let ms pass as app.run does: sleep to the next deadline, serve what is due."""
        run_ms(self.dev, ms)

    def now_s(self) -> int:
        return self.hal.rtc_seconds()

    def alarms(self) -> dict[str, dict]:
        return {a["code"]: a for a in self.ask("status")["alarms"]}

    def events(self, event: str) -> list[tuple[int, str]]:
        return [(t, text) for t, e, text in self.logged if e == event]

    def tones_since(self, mark: int) -> list[tuple[int, int]]:
        """Buzzer changes after the mark-th one, as (s since T0 in ms, Hz)."""
        return [(ms - self.hal.ms0, hz) for ms, hz in self.hal.tones[mark:]]


@pytest.fixture
def pump(flash):
    return Pump(ClockHal(flash))


def running(pump: Pump, added_nl: int = 20_000_000, dose: int = 500, conc: int = 500) -> None:
    pump.ask("refill", removed_nl=0, added_nl=added_nl, concentration=conc)
    pump.ask("program", mode="continuous", dose_mcg=dose)


def pattern(tones: list[tuple[int, int]], start: int) -> list[tuple[int, int | None]]:
    """Tones from index start up to the next silence, as (Hz, ms to the next change)."""
    out: list[tuple[int, int | None]] = []
    for i in range(start, len(tones)):
        hz = tones[i][1]
        nxt = tones[i + 1][0] - tones[i][0] if hz and i + 1 < len(tones) else None
        out.append((hz, nxt))
        if not hz:
            return out
    return out


# -- reservoir ---------------------------------------------------------------------------------

def test_low_reservoir_at_the_threshold_non_critical_hourly_tone(pump):
    running(pump, added_nl=3_000_000)  # 1 mL/day: a stroke every 21.6 s
    st = pump.ask("status")
    assert st["alarm_date"] == st["clock"] + DAY_S and st["refill_date"] == st["clock"] + 5 * DAY_S // 2
    pump.run(DAY_MS - 1000)
    assert pump.alarms() == {}
    pump.run(2000)  # the 4000th stroke leaves 2.000 mL
    low = pump.alarms()["low_reservoir"]
    assert low["priority"] == "non_critical" and low["since"] == T0 + DAY_S and not low["acknowledged"]
    assert pump.dev.fsm.state == "running" and pump.dev.therapy.d.rate == 1_000_000  # no effect on delivery
    assert pump.events("alarm_raised") == [(T0 + DAY_S, "low_reservoir 2000000")]
    assert {"event": "raised", "code": "low_reservoir", "priority": "non_critical", "since": T0 + DAY_S} in pump.frames
    pump.run(3 * HOUR_MS)
    tones = pump.tones_since(0)
    starts = [t for t, hz in tones if hz]
    assert starts == [DAY_MS + h * HOUR_MS for h in range(4)]  # at once, then every 60 min
    assert pattern(tones, 0) == NON_CRITICAL


def test_empty_reservoir_goes_to_minimum_rate_with_the_critical_tone(pump):
    running(pump, added_nl=3_000_000)
    pump.run(5 * DAY_MS // 2 - 1000)
    assert "empty_reservoir" not in pump.alarms()
    mark = len(pump.hal.tones)
    pump.run(HOUR_MS - 10_000)  # the 10 000th stroke leaves 0.5 mL
    al = pump.alarms()
    assert al["empty_reservoir"]["priority"] == "critical" and al["empty_reservoir"]["since"] == T0 + 5 * DAY_S // 2
    assert "low_reservoir" in al
    st = pump.ask("status")
    assert st["state"] == "minimum_rate" and st["rate_nl_per_day"] == 48_000  # 0.048 mL/day
    # both levels reached: the dates are when their alarms fired, not "now" (issue 11 item 4)
    assert st["alarm_date"] == al["low_reservoir"]["since"] < st["refill_date"] == T0 + 5 * DAY_S // 2 < st["clock"]
    assert pump.events("alarm_raised")[-1] == (T0 + 5 * DAY_S // 2, "empty_reservoir 500000")
    tones = pump.tones_since(mark)
    assert len(tones) == 6 * 7  # at once, then every 10 min: 6 patterns of 7 changes in 59 min
    for k in range(6):
        assert tones[7 * k][0] == 5 * DAY_MS // 2 + k * 600_000
        assert pattern(tones, 7 * k) == CRITICAL


def test_acknowledged_alarms_are_silent_listed_logged_and_a_new_one_sounds(pump):
    running(pump, added_nl=3_000_000)
    pump.run(5 * DAY_MS // 2 + 1000)
    answer = pump.ask("alarms", ack=True)
    assert sorted(answer["acknowledged"]) == ["empty_reservoir", "low_reservoir"]
    assert [a["code"] for a in answer["alarms"]] == ["empty_reservoir", "low_reservoir"]  # critical first
    assert all(a["acknowledged"] for a in answer["alarms"])
    assert pump.hal.tone == 0
    assert sorted(text for _, text in pump.events("alarm_acked")) == ["empty_reservoir", "low_reservoir"]
    mark = len(pump.hal.tones)
    pump.run(2 * HOUR_MS)
    assert pump.tones_since(mark) == []  # silent
    assert pump.ask("status")["state"] == "minimum_rate"  # acknowledging changes no effect
    assert pump.ask("alarms")["acknowledged"] == []
    pump.hal.battery = 2650  # a new alarm sounds again
    pump.run(TICK_MS)
    assert pattern(pump.tones_since(mark), 0) == NON_CRITICAL


def test_refill_clears_reservoir_alarms_and_undoes_minimum_rate(pump):
    running(pump, added_nl=3_000_000)
    pump.run(3 * DAY_MS)
    assert pump.ask("status")["state"] == "minimum_rate"
    left = pump.dev.therapy.reservoir_nl
    answer = pump.ask("refill", removed_nl=left, added_nl=20_000_000, concentration=500)
    assert answer["state"] == "running" and answer["rate_nl_per_day"] == 1_000_000
    assert not answer["warnings"]
    assert pump.alarms() == {}
    assert sorted(text.split()[0] for _, text in pump.events("alarm_clear")) == ["empty_reservoir", "low_reservoir"]
    assert pump.dev.alarms.reservoir_floor == 2_000_000  # watching for the low threshold again


def test_refill_below_the_low_threshold_raises_it_at_once(pump):
    running(pump, added_nl=1_500_000)
    assert set(pump.alarms()) == {"low_reservoir"}
    assert pump.dev.alarms.reservoir_floor == 500_000


def test_a_never_filled_pump_has_no_reservoir_alarm_and_no_dates(pump):
    assert pump.dev.alarms.reservoir_floor == -1
    st = pump.ask("status")
    assert st["alarms"] == [] and st["alarm_date"] is None and st["refill_date"] is None
    pump.ask("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    st = pump.ask("status")  # stopped: nothing delivered, no date
    assert st["alarm_date"] is None and st["refill_date"] is None


def test_dates_follow_the_daily_dose_and_the_minimum_rate(pump):
    running(pump, added_nl=20_000_000, dose=250, conc=1000)  # 0.25 mL/day
    st = pump.ask("status")
    assert st["alarm_date"] == st["clock"] + 18_000_000 * DAY_S // 250_000
    assert st["refill_date"] == st["clock"] + 19_500_000 * DAY_S // 250_000
    pump.hal.battery = 2100
    pump.run(TICK_MS)
    st = pump.ask("status")  # minimum rate: the volume rate now, 0.048 mL/day
    left = st["reservoir_nl"]
    # the stroke that reaches 0.5 mL, less the fraction of a stroke already in the accumulator
    acc = pump.dev.therapy.d.acc // 10  # nL x 86400
    assert st["refill_date"] == st["clock"] - (-((left - 500_000) * DAY_S - acc) // 48_000)
    assert 0 <= st["clock"] + (left - 500_000) * DAY_S // 48_000 - st["refill_date"] < 450  # a stroke: 450 s


# -- motor stall (2012, 2019) ------------------------------------------------------------------

def test_incident_2012_2019_permanent_stall(pump):
    running(pump)
    pump.run(HOUR_MS)
    res = pump.dev.therapy.reservoir_nl
    pump.hal.stalled = True
    pump.run(30_000)  # the next stroke (21.6 s) has no rotor pulse
    assert not pump.hal.motor  # the driver is off at once, not energised against the jam
    al = pump.alarms()["motor_stall"]
    assert al["priority"] == "critical"
    st = pump.ask("status")
    assert st["state"] == "alarm_critical" and st["rate_nl_per_day"] == 0  # delivery stops
    assert pump.dev.therapy.reservoir_nl == res  # the stalled stroke moved no drug
    assert len(pump.events("alarm_raised")) == 1 and "motor_stall" in pump.events("alarm_raised")[0][1]
    assert pattern(pump.tones_since(0), 0) == CRITICAL
    before = pump.hal.strokes
    pump.run(6 * HOUR_MS)
    attempts = pump.hal.strokes - before
    assert 35 <= attempts <= 37  # a restart attempt at every 10-minute tick
    assert pump.hal.missed == attempts + 1
    assert pump.dev.therapy.reservoir_nl == res
    assert [text for _, text in pump.events("stall_retry")] == [
        "%d" % n for n in (1, 2, 4, 8, 16, 32)]  # logged, without flooding the log
    assert pump.ask("status")["state"] == "alarm_critical"
    pump.hal.stalled = False  # the motor turns again: the next attempt's stroke resumes delivery
    pump.run(TICK_MS + 30_000)
    assert pump.alarms() == {}
    st = pump.ask("status")
    assert st["state"] == "running" and st["rate_nl_per_day"] == 1_000_000
    (cleared,) = pump.events("alarm_clear")
    assert cleared[1] == "motor_stall %d" % attempts  # the failed restart attempts
    pump.run(HOUR_MS)
    assert pump.dev.therapy.d.rate == 1_000_000 and pump.alarms() == {}


def test_incident_2012_2019_intermittent_stall(flash):
    pump = Pump(IntermittentHal(flash))
    running(pump)
    pump.run(8 * HOUR_MS)
    raised = [t for t, text in pump.events("alarm_raised") if text.startswith("motor_stall")]
    cleared = [t for t, text in pump.events("alarm_clear") if text.startswith("motor_stall")]
    assert len(raised) == len(cleared) == 4  # each 20-minute stick: raised, retried, cleared
    for up, down in zip(raised, cleared):
        assert (up - T0) % 7200 < 30  # at the first stroke of the stuck window
        assert 1200 <= down - up <= 1800  # the first attempt after the window succeeds
    assert len(pump.events("stall_retry")) >= 4
    st = pump.ask("status")
    assert st["state"] == "running" and st["alarms"] == []
    # delivery lost only the stuck windows and the wait for the next attempt
    strokes = pump.hal.strokes - pump.hal.missed  # 1333 in 8 h at 21.6 s; 20 min stuck is 55 strokes
    assert 1333 - 4 * 60 <= strokes <= 1333 - 4 * 55


# -- battery (2009/2011) -----------------------------------------------------------------------

def test_incident_2009_2011_battery_fault_goes_to_minimum_rate(pump):
    running(pump)
    pump.run(HOUR_MS)
    pump.hal.battery = 2100  # a sudden sag
    pump.run(TICK_MS + 10_000)
    al = pump.alarms()["battery_fault"]
    assert al["priority"] == "critical"
    st = pump.ask("status")
    assert st["state"] == "minimum_rate" and st["rate_nl_per_day"] == 48_000
    assert pump.events("alarm_raised")[-1][1] == "battery_fault 2100"
    assert pattern(pump.tones_since(0), 0) == CRITICAL
    strokes = pump.hal.strokes
    pump.run(DAY_MS)
    assert pump.hal.strokes - strokes in (191, 192, 193)  # 0.048 mL/day = 192 strokes
    pump.hal.battery = 3000
    pump.run(TICK_MS)
    st = pump.ask("status")
    assert st["state"] == "running" and st["rate_nl_per_day"] == 1_000_000 and st["alarms"] == []
    assert pump.events("alarm_clear")[-1][1] == "battery_fault 3000"


def test_battery_eri_then_eos_90_days_later_stops_the_pump(pump):
    running(pump, added_nl=20_000_000, dose=3, conc=50)  # 0.06 mL/day: 90 days fit the reservoir
    pump.hal.battery = 2650
    pump.run(TICK_MS + 10_000)
    eri = pump.alarms()["battery_eri"]
    assert eri["priority"] == "non_critical"
    assert pump.dev.alarms.eri_s is not None and abs(pump.dev.alarms.eri_s - eri["since"]) <= 1
    assert pump.ask("status")["state"] == "running"
    assert pattern(pump.tones_since(0), 0) == NON_CRITICAL
    pump.run(90 * DAY_MS - 2 * TICK_MS)
    assert "battery_eos" not in pump.alarms()
    pump.run(3 * TICK_MS)
    al = pump.alarms()
    assert al["battery_eos"]["priority"] == "critical"
    assert 0 <= al["battery_eos"]["since"] - (pump.dev.alarms.eri_s + 90 * DAY_S) <= TICK_MS // 1000
    st = pump.ask("status")
    assert st["state"] == "alarm_critical" and st["rate_nl_per_day"] == 0  # the pump stops
    pump.hal.battery = 3000  # a new battery (on the sim)
    pump.run(HOUR_MS + TICK_MS)
    st = pump.ask("status")
    assert st["alarms"] == [] and st["state"] == "running" and pump.dev.alarms.eri_s is None
    assert {text.split()[0] for _, text in pump.events("alarm_clear")} == {"battery_eri", "battery_eos"}


def test_battery_eos_by_voltage(pump):
    running(pump)
    pump.hal.battery = 2400
    pump.run(TICK_MS)
    assert {"battery_eri", "battery_eos"} <= set(pump.alarms())
    assert pump.ask("status")["state"] == "alarm_critical"


# -- alarm test, requests --------------------------------------------------------------------

def test_alarm_test_plays_both_patterns_once(pump):
    answer = pump.ask("alarm_test")
    assert answer == {"playing": ["critical", "non_critical"], "duration_ms": 5000}
    pump.run(2 * HOUR_MS)
    tones = pump.tones_since(0)
    hz = [(f, n) for f, n in pattern(tones, 0)]
    assert hz == [(1320, 500), (880, 500)] * 3 + [(0, None)]
    assert pattern(tones, 7) == NON_CRITICAL and tones[7][0] - tones[6][0] == 1000
    assert len(tones) == 9  # once
    assert pump.events("alarm_test")


def test_alarms_request_refuses_a_non_boolean_ack(pump):
    good, body = pump.request("alarms", ack="yes")
    assert not good and "ack must be true or false" in body["text"]


def test_arm_sets_the_watch_points(pump):
    dev = pump.dev
    assert (dev.alarms.reservoir_floor, dev.alarms.battery_floor, dev.alarms.wake_s, dev.alarms.tone_at) == (-1, 2700, -1, -1)
    running(pump)
    dev.safety.low_reservoir_nl = 3_000_000  # a later limits command
    alarm_rules.arm(dev)
    assert dev.alarms.reservoir_floor == 3_000_000


def test_buzzer_patterns_are_the_spec_lengths():
    assert buzzer.length_ms(buzzer.CRITICAL_TONE) == 3000
    assert buzzer.length_ms(buzzer.NON_CRITICAL_TONE) == 1000
    assert buzzer.EVERY_MS[buzzer.KIND_CRITICAL] == 600_000 and buzzer.EVERY_MS[buzzer.KIND_NON_CRITICAL] == 3_600_000


# -- refill reconciliation (2011) ------------------------------------------------------------

def test_incident_2011_pocket_fill_refill_warning(pump):
    running(pump)  # 20 mL at 1 mL/day
    pump.run(15 * DAY_MS // 2)  # 7.5 days: 12.5 mL expected in the reservoir
    assert pump.dev.therapy.reservoir_nl == 12_500_000
    answer = pump.ask("refill", removed_nl=2_000_000, added_nl=20_000_000, concentration=500)
    assert answer["warnings"] == [
        "removed 2.000000 mL, expected 12.500000 mL: possible pocket fill, catheter or pump problem"]
    # one entry: removed, expected, added, concentration, the one before, the warning
    assert pump.events("refill")[-1] == (pump.dev.therapy.now_s(), "2000000 12500000 20000000 500 500 1")
    log = pump.ask("log", last=5)["entries"]  # in the device's own event log too
    assert [e["n"] for e in log if e["event"] == "refill"][-1] == [2000000, 12500000, 20000000, 500, 500, 1]


@pytest.mark.parametrize("removed_nl, warn", [
    (12_500_000, False), (10_500_000, False), (10_499_000, True),  # 2 mL is 16 %: the 2 mL rule
    (14_500_001, True),  # more left than expected: under-delivery
])
def test_refill_discrepancy_beyond_2_ml(pump, removed_nl, warn):
    running(pump)
    pump.run(15 * DAY_MS // 2)
    answer = pump.ask("refill", removed_nl=removed_nl, added_nl=20_000_000, concentration=500)
    assert bool(answer["warnings"]) == warn


def test_refill_discrepancy_beyond_20_percent(pump):
    running(pump, added_nl=5_000_000)
    pump.run(DAY_MS)  # 4 mL expected
    answer = pump.ask("refill", removed_nl=3_150_000, added_nl=20_000_000, concentration=500)
    assert answer["warnings"][0].startswith("removed 3.150000 mL, expected 4.000000 mL")  # 0.85 mL, 21 %
    pump.run(DAY_MS)
    assert not pump.ask("refill", removed_nl=18_000_000, added_nl=20_000_000, concentration=500)["warnings"]


def test_first_fill_is_never_a_discrepancy(pump):
    answer = pump.ask("refill", removed_nl=5_000_000, added_nl=20_000_000, concentration=500)
    assert not answer["warnings"]
    assert pump.events("refill") == [(pump.dev.therapy.now_s(), "5000000 -1 20000000 500 0 0")]  # nothing expected

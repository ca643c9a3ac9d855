"""Issue 5 on the virtual Pico (real VM, real pty, real client): two-phase sessions that end
early, patient boluses within their limits, and keys the programmer does or does not hold."""

from __future__ import annotations

import pytest

from host_tools.client import PumpClient
from host_tools.errors import DeviceRefused, NoKey
from host_tools.keys import KeyStore

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def _fill_and_program(c: PumpClient, dose: int = 100) -> None:
    c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
    c.program(mode="continuous", dose_mcg=dose)  # within the initial-dose cap: no override


def test_incident_2021_disconnect_between_prepare_and_commit_keeps_old_therapy(vpico, vpico_port):
    """Spec §12, 2021: pumps were left stopped by incomplete programming sessions. Here the
    programmer prepares a change and its link goes away before the commit: the pump keeps its
    old therapy, delivering at the old rate, and the orphaned token cannot be committed later."""
    with PumpClient(vpico_port) as c:
        _fill_and_program(c, 100)
    vpico.advance(HOUR_MS)
    c = PumpClient(vpico_port)
    review = c.prepare("program", mode="continuous", dose_mcg=120)
    assert review["current"]["daily_dose_mcg"] == 100 and review["new"]["daily_dose_mcg"] == 120
    strokes0 = c.status()["therapy"]["strokes"]
    c.close()  # the cable is pulled: no commit
    vpico.advance(DAY_MS)
    with PumpClient(vpico_port) as c2:  # the next session (hello) finds the old therapy running
        s = c2.status()
        assert (s["state"], s["mode"], s["daily_dose_mcg"]) == ("running", "continuous", 100)
        assert s["therapy"]["strokes"] - strokes0 == 800  # 100 mcg/day at 500 mcg/mL = 0.2 mL = 800 strokes
        with pytest.raises(DeviceRefused, match="no prepared change") as e:
            c2.commit(review["token"])
        assert e.value.name == "not_allowed"
        assert c2.status()["daily_dose_mcg"] == 100
        events = [e["event"] for e in c2.log(20)["entries"]]
        assert events.count("program") == 1  # only the first program was ever applied


def test_power_cut_between_prepare_and_commit_keeps_old_therapy(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        _fill_and_program(c, 100)
        review = c.prepare("program", mode="stop", reason="pump replacement")
        vpico.power_cut()
    with PumpClient(vpico_port) as c:
        with pytest.raises(DeviceRefused, match="no prepared change"):
            c.commit(review["token"])
        s = c.status()
        assert (s["state"], s["daily_dose_mcg"]) == ("running", 100)


def test_patient_bolus_within_its_limits_on_the_virtual_pico(vpico, vpico_port, tmp_path):
    with PumpClient(vpico_port) as c:
        _fill_and_program(c, 100)
        with pytest.raises(DeviceRefused, match="patient bolus is off"):
            c.patient_bolus()  # off by default
        review = c.prepare("ptm", enable=True, dose_mcg=10, over_s=600, max_per_day=2, lockout_s=3 * 3600)
        assert any("not indicated for baclofen" in w for w in review["warnings"])
        assert review["new"]["daily_dose_mcg"] == 120  # 100 + 10 x 2 at their maximum: +20 %, within 200
        c.commit(review["token"])
        serial = c.identity["serial"]
    patient_keys = KeyStore(tmp_path / "patient.json")  # the patient's programmer holds only their key
    patient_keys.add(serial, {"patient": KeyStore().get(serial, "patient").hex()})
    with PumpClient(vpico_port, keys=patient_keys) as patient:
        assert patient.patient_bolus()["bolus"] == {"dose_mcg": 10, "over_s": 600}
        vpico.advance(HOUR_MS)
        with pytest.raises(DeviceRefused, match="locked out") as e:
            patient.patient_bolus()
        assert e.value.detail["limit"] == "ptm_lockout" and e.value.detail["retry_in_s"] == 2 * 3600
        vpico.advance(2 * HOUR_MS)
        patient.patient_bolus()
        vpico.advance(3 * HOUR_MS)
        with pytest.raises(DeviceRefused, match="daily maximum reached") as e:
            patient.patient_bolus()
        assert e.value.detail["limit"] == "ptm_daily_max"
        assert e.value.detail["retry_in_s"] == 24 * 3600 - 6 * 3600  # the first leaves the 24 h window
        with pytest.raises(NoKey):
            patient.program(mode="continuous", dose_mcg=100)  # no clinician key on this host
        with pytest.raises(DeviceRefused) as e:  # and the patient's session signing it anyway
            patient.send("program", {"mode": "stop", "reason": "x"}, signed=True)
        assert e.value.name == "unauthorized"


def test_a_programmer_without_the_key_can_read_but_not_change(vpico, vpico_port, tmp_path):
    with PumpClient(vpico_port) as c:
        _fill_and_program(c, 100)
    with PumpClient(vpico_port, keys=KeyStore(tmp_path / "none.json")) as stranger:
        assert stranger.status()["daily_dose_mcg"] == 100
        assert stranger.log(5)["entries"]
        with pytest.raises(NoKey):
            stranger.program(mode="continuous", dose_mcg=110)
        with pytest.raises(DeviceRefused) as e:  # and sending it unsigned anyway is refused by the pump
            stranger.send("program", {"mode": "stop", "reason": "x"})
        assert e.value.name == "unauthorized"
    with PumpClient(vpico_port) as c:
        assert c.status()["daily_dose_mcg"] == 100

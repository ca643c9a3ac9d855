"""The pump state machine, as plain data: the single source of truth.

The firmware's engine (core/fsm.py) runs this table; the host builds a
`transitions` machine from the same table for docs/state-machine.md and as
the reference model in tests. Edit here, nowhere else.

Boluses are not states: a clinician or periodic bolus runs on top of the
therapy and shows in status; the state says what the pump is doing overall.
"""

INITIAL = "boot"

STATES = (
    "boot",  # power-on self-test, before therapy is restored
    "stopped",  # no delivery (prescribed stop, or a new pump)
    "running",  # delivering the programmed therapy (continuous, flex or periodic)
    "priming",  # filling catheter + pump tubing at the maximum rate; therapy paused
    "minimum_rate",  # therapy cannot continue: keeping the catheter patent
    "alarm_critical",  # delivery halted by a critical alarm (motor stall, end of service)
)

# (trigger, source, destination)
TRANSITIONS = (
    ("self_test_ok", "boot", "stopped"),
    ("resume", "boot", "running"),
    ("resume_minimum", "boot", "minimum_rate"),
    ("resume_halted", "boot", "alarm_critical"),
    ("self_test_failed", "boot", "alarm_critical"),
    ("program", "stopped", "running"),
    ("program", "running", "running"),
    ("stop", "running", "stopped"),
    ("stop", "minimum_rate", "stopped"),
    ("stop", "priming", "stopped"),
    ("prime", "stopped", "priming"),
    ("prime", "running", "priming"),
    ("primed_resume", "priming", "running"),
    ("primed_stopped", "priming", "stopped"),
    ("fallback", "running", "minimum_rate"),
    ("fallback", "priming", "minimum_rate"),
    ("fallback_cleared", "minimum_rate", "running"),
    ("halt", "stopped", "alarm_critical"),
    ("halt", "running", "alarm_critical"),
    ("halt", "priming", "alarm_critical"),
    ("halt", "minimum_rate", "alarm_critical"),
    ("halt_cleared_running", "alarm_critical", "running"),
    ("halt_cleared_minimum", "alarm_critical", "minimum_rate"),
    ("halt_cleared_stopped", "alarm_critical", "stopped"),
)

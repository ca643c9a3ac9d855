"""The pump state machine, as plain data: the single source of truth.

The firmware's engine (fsm.py) runs this table; the host builds a
`transitions` machine from the same table for docs/state-machine.md and as
the reference model in tests. Edit here, nowhere else.
"""

INITIAL = "boot"

STATES = (
    "boot",  # power-on self-test, before therapy is restored
    "stopped",  # no delivery (prescribed stop, or a new pump)
    "running",  # delivering the programmed therapy
    "alarm_critical",  # a critical alarm holds delivery (stopped or minimum rate)
)

# (trigger, source, destination)
TRANSITIONS = (
    ("self_test_ok", "boot", "stopped"),
    ("resume", "boot", "running"),
    ("self_test_failed", "boot", "alarm_critical"),
    ("start", "stopped", "running"),
    ("stop", "running", "stopped"),
    ("critical", "running", "alarm_critical"),
    ("critical", "stopped", "alarm_critical"),
    ("cleared_running", "alarm_critical", "running"),
    ("cleared_stopped", "alarm_critical", "stopped"),
)

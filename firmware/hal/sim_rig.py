"""The virtual fixture board's rarer rig lines, loaded by hal/sim.py only when one arrives.

  get            -> "hw VNOW STROKES ROTOR BATTERY_MV BUZZER_HZ MOTOR_ON STALL" (STALL as set below)
  stall 0|1|N    motor stall: 1 permanent (rotor feedback stops), N >= 2 intermittent (the rotor
                 sticks for the first 20 min of every N min), 0 none; answers "ok"
  tones          -> "tones DROPPED VNOW:HZ ..." the buzzer changes since the last "tones" (oldest
                 first; DROPPED older ones did not fit the record), and forgets them
  battery MV     battery voltage seen by the ADC, answers "ok"
  cutwrite N     power fails half-way through the Nth flash write from now (0: cancel)
"""


def do(hal, words):
    op = words[0]
    if op == "get":
        hal.rig_say("hw %d %d %d %d %d %d %d" % (
            hal.now(), hal.strokes, hal.rotor_count(), hal.battery, hal.tone, int(hal.motor_on),
            1 if hal.stalled else hal.stall_cycle_ms // 60000))
    elif op == "stall":
        n = int(words[1])
        hal.stalled = n == 1
        hal.stall_cycle_ms = n * 60000 if n > 1 else 0
        hal.rig_say("ok")
    elif op == "tones":
        _tones(hal)
    elif op == "cutwrite":  # power fails during the Nth flash write from now
        n = int(words[1])
        hal._cut_write = hal.flash_writes + n if n > 0 else 0
        hal.rig_say("ok")
    elif op == "battery":
        hal.battery = int(words[1])
        hal.rig_say("ok")
    else:
        hal.rig_say("err unknown rig command " + op)


def _tones(hal):
    n = hal.tones_n
    cap = len(hal._tones) // 2 if hal._tones else 0
    keep = min(n, cap)
    out = ["tones", str(n - keep)]
    for k in range(n - keep, n):
        i = k % cap * 2
        out.append("%d:%d" % (hal._tones[i], hal._tones[i + 1]))
    hal.tones_n = 0
    hal.rig_say(" ".join(out))

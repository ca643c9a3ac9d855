"""The virtual fixture board's rarer rig lines, loaded by hal/sim.py only when one arrives.

  get            -> "hw VNOW STROKES ROTOR BATTERY_MV BUZZER_HZ MOTOR_ON STALLED"
  stall 0|1      motor stall (rotor feedback stops), answers "ok"
  battery MV     battery voltage seen by the ADC, answers "ok"
  cutwrite N     power fails half-way through the Nth flash write from now (0: cancel)
"""


def do(hal, words):
    op = words[0]
    if op == "get":
        hal.rig_say("hw %d %d %d %d %d %d %d" % (
            hal.now(), hal.strokes, hal.rotor_count(), hal.battery, hal.tone, int(hal.motor_on), int(hal.stalled)))
    elif op == "stall":
        hal.stalled = int(words[1]) != 0
        hal.rig_say("ok")
    elif op == "cutwrite":  # power fails during the Nth flash write from now
        n = int(words[1])
        hal._cut_write = hal.flash_writes + n if n > 0 else 0
        hal.rig_say("ok")
    elif op == "battery":
        hal.battery = int(words[1])
        hal.rig_say("ok")
    else:
        hal.rig_say("err unknown rig command " + op)

"""Host side of the ITB pump testbed: the clinician programmer CLI and its client library.

A simulator and engineering testbed, not a medical device.
"""

NOT_A_MEDICAL_DEVICE = "Simulator and engineering testbed: not a medical device."

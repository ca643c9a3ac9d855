"""Alarms: the catalogue and the active set (resident), the rules that raise and clear them, tones."""

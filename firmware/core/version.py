"""Firmware and protocol versions: what the device reports in its handshake."""

FIRMWARE_VERSION = "0.2.0"
PROTOCOL_VERSION = 1

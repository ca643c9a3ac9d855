"""What survives a power cut: the two state copies, the event log, the device identity."""

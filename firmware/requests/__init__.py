"""One module per request, imported for the request and dropped after it (core/device.py)."""

"""The resident core: the main loop, device dispatch, link framing and the state machine."""

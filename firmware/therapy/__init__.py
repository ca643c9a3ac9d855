"""The therapy engine: which rate now, exact-to-the-stroke timing, units; pure integer logic, no HAL."""

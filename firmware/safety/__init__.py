"""Safety checks, loaded per request: limits data and rules, field checks, the review, two-phase, auth."""

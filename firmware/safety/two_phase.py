"""Two-phase programming (spec §4): a prepared change waits for a commit that quotes its token.

The prepare ran the request's check and review (Device.change, nothing changed) and left what
the review showed in dev.session.fp; hold() keeps the request and that review's fingerprint with a fresh token. take() hands
the request back to the device for the commit, with dev.session.expect set so that the request, run
again, refuses if its review now differs. Only RAM holds a prepared change: hello, auth, a new
prepare and a power cut drop it, and the old therapy keeps running.
"""

import os
from binascii import hexlify
from core.errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED

PENDING_S = 300  # a review older than this (device time) must be prepared again


def hold(dev, cmd, module, args):
    """Keep the prepared request; (token, seconds it stays valid) for the review."""
    token = hexlify(os.urandom(8)).decode()
    dev.session.pending = (token, cmd, module, args, dev.therapy.now_s() + PENDING_S, dev.session.fp)
    return token, PENDING_S


def take(dev, args):
    """(module, cmd, args) of the prepared change the token names; a matching token uses it up."""
    token = args.get("token")
    if not isinstance(token, str) or len(token) != 16:
        raise CommandError(BAD_ARGUMENT, "commit needs the review's token: 16 hex digits, got %r" % (token,))
    p = dev.session.pending
    if p is None:
        raise CommandError(NOT_ALLOWED, "no prepared change to commit (a new session, a new prepare or a "
                           "restart drops it): nothing applied; prepare it again")
    if token != p[0]:
        raise CommandError(NOT_ALLOWED, "token %s does not match the prepared change: nothing applied" % token)
    dev.session.pending = None
    if dev.therapy.now_s() > p[4]:
        raise CommandError(NOT_ALLOWED, "the prepared change expired (%d min after its review): nothing applied; "
                           "prepare it again" % (PENDING_S // 60))
    dev.session.expect = p[5]
    return p[2], p[1], p[3]

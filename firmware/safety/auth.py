"""Who may do what (spec §7): HMAC-SHA256 challenge-response, then signed requests.

MicroPython has no hmac module: HMAC (RFC 2104) is built here on hashlib.sha256. Keys are 32
random bytes per role, provisioned into keys.json with the firmware (the virtual Pico's
supervisor does it at its first start). The session key comes from the role's key and a
device nonce that is new for every challenge, and each signed request carries a counter above
the last one: a captured frame is refused later in the session and useless in another one.
docs/protocol.md gives the byte-exact recipe.
"""

import json
import os
from hashlib import sha256
from binascii import hexlify
from core.errors import CommandError, BAD_ARGUMENT, UNAUTHORIZED, AUTH_FAILED

KEYS_FILE = "keys.json"
ROLES = ("patient", "clinician", "service")
MAY = {"patient": ("patient", "clinician"), "clinician": ("clinician",), "service": ("service",)}
MAX_FAILS = 5
LOCK_S = 600  # authentication locked this long after MAX_FAILS wrong responses in a row
_SIG = 74  # a signed body ends with ,"mac":"<64 hex>"}


def hmac_sha256(key, msg):
    if len(key) > 64:
        key = sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _same(a, b):
    """Compare without stopping at the first difference (no timing hint)."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


def _key(role):
    try:
        with open(KEYS_FILE) as f:
            return bytes.fromhex(json.load(f)[role])
    except (OSError, ValueError, KeyError):
        raise CommandError(UNAUTHORIZED, "this pump has no %s key provisioned: it can only be read" % role)


def auth(dev, args):
    """Challenge (role only): a new nonce. Response (role + response): a session, or a failure."""
    role = args.get("role")
    if role not in ROLES:
        raise CommandError(BAD_ARGUMENT, "role must be one of %s, got %r" % (", ".join(ROLES), role))
    now = dev.therapy.now_s()
    if dev.session.auth_lock > now:
        raise CommandError(AUTH_FAILED, "authentication is locked for %d more s after %d failed attempts"
                           % (dev.session.auth_lock - now, MAX_FAILS), {"retry_in_s": dev.session.auth_lock - now})
    dev.session.auth = None
    dev.session.pending = None
    response = args.get("response")
    if response is None:
        nonce = hexlify(os.urandom(16)).decode()
        dev.session.nonce = (role, nonce)
        return {"role": role, "nonce": nonce, "serial": dev.identity()}
    challenge = dev.session.nonce
    dev.session.nonce = None  # one response per nonce
    if challenge is None or challenge[0] != role:
        raise CommandError(BAD_ARGUMENT, "no challenge for role %s: ask for a nonce first" % role)
    key = _key(role)
    want = hexlify(hmac_sha256(key, ("itbpump-auth|%s|%s|%s" % (dev.identity(), role, challenge[1])).encode()))
    if not isinstance(response, str) or not _same(want, response.encode()):
        _failed(dev, now, role)
    if dev.session.auth_fails:  # saved, as the failures were: a restart must not bring the count back
        dev.session.auth_fails = 0
        dev.call("storage.state", "save")
    dev.session.auth = [role, hmac_sha256(key, ("itbpump-session|" + challenge[1]).encode()), 0]
    return {"role": role, "session": True}


def _failed(dev, now, role):
    dev.session.auth_fails += 1
    dev.log("auth_fail", (dev.session.auth_fails,), "wrong_response " + role)
    if dev.session.auth_fails >= MAX_FAILS:
        dev.session.auth_fails = 0
        dev.session.auth_lock = now + LOCK_S
        dev.log("auth_locked", (LOCK_S, MAX_FAILS))
    dev.call("storage.state", "save")  # a restart must not reset the count
    raise CommandError(AUTH_FAILED, "authentication failed: wrong response for role %s (a wrong key)" % role)


def verify(dev, body, req, cmd, need):
    """Refuse unless this session's role may run cmd and the body is signed by it, fresh."""
    s = dev.session.auth
    if s is None or s[0] not in MAY[need]:
        raise CommandError(UNAUTHORIZED, "%s needs the %s key; %s" % (
            cmd, need, "authenticate first (no session)" if s is None else "this session is %s" % s[0]))
    n = len(body)
    if n < _SIG + 2 or body[n - _SIG:n - 66] != b',"mac":"' or body[n - 2:] != b'"}':
        raise CommandError(AUTH_FAILED, "%s must be signed: the body must end with ,\"mac\":\"<64 hex>\"}" % cmd)
    if not _same(hexlify(hmac_sha256(s[1], body[:n - _SIG])), body[n - 66:n - 2]):
        dev.log("auth_fail", (), "bad_signature " + cmd)
        raise CommandError(AUTH_FAILED, "message authentication failed on %s (wrong session key or altered "
                           "request)" % cmd)
    ctr = req.get("ctr")
    if not isinstance(ctr, int) or isinstance(ctr, bool) or ctr <= s[2]:
        dev.log("auth_fail", (ctr if isinstance(ctr, int) and not isinstance(ctr, bool) and 0 <= ctr < 0x3FFFFFFF
                              else -1,), "replay " + cmd)
        raise CommandError(AUTH_FAILED, "replayed request refused: counter %r is not above %d" % (ctr, s[2]))
    s[2] = ctr

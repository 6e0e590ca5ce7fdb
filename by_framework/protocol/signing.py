"""Command signing: an HMAC over the envelope, so that write access to Redis alone cannot forge a
command. The signature travels in its own field beside the envelope's bytes, which it covers
exactly (no canonical form to get wrong).

It also binds the stream the entry was written to and the time it was issued, so that a signed
entry copied to another stream, or added again once its execution record has expired, is
refused. The field reads ``<issued-at ms>:<hex HMAC-SHA256>:<stream>``.
"""

import hashlib
import hmac
import time

SIGNATURE_FIELD = b"s"


def sign(envelope: bytes, key: bytes, stream: str, issued_at: float | None = None) -> bytes:
    """The signature field of ``envelope`` written to ``stream`` at ``issued_at`` (now)."""
    issued_ms = int((time.time() if issued_at is None else issued_at) * 1000)
    target = stream.encode()
    return b"%d:%s:%s" % (issued_ms, _mac(key, target, b"%d" % issued_ms, envelope), target)


def signature_problem(
    envelope: bytes,
    signature: bytes | None,
    key: bytes,
    stream: str,
    max_age: float,
    added_at: float | None = None,
) -> str | None:
    """Why the entry found on ``stream`` is not a signed command that Redis added there (at
    ``added_at``, its entry id's time; None: now) less than ``max_age`` seconds after it was
    issued, or None when it is.

    The age runs to when the entry was added, not to when it is read: an entry pending for days
    behind a long task is still good when a live worker reclaims it, while the same bytes added
    again later get a new, later entry id."""
    if signature is None:
        return "unsigned command: this worker accepts only signed commands (BYAI_SIGNING_KEY)"
    signed_for = signed_stream(envelope, signature, key)
    if signed_for is None:
        return "bad signature: the command was forged, altered, or signed with another key"
    if signed_for != stream:
        return f"signed for another stream ({signed_for}): a copied or moved entry"
    added = time.time() if added_at is None else added_at
    age = added - int(signature.split(b":", 1)[0]) / 1000
    if age > max_age:
        return (
            f"expired: added {age:.0f} s after it was signed, over the {max_age:.0f} s window "
            "(BYAI_COMMAND_MAX_AGE): a replayed or long-held entry"
        )
    return None


def signed_stream(envelope: bytes, signature: bytes, key: bytes) -> str | None:
    """The stream a genuine signature of ``envelope`` was made for, whatever its age; None
    when the signature does not hold."""
    issued, _, rest = signature.partition(b":")
    mac, _, target = rest.partition(b":")
    if not issued.isdigit() or not hmac.compare_digest(mac, _mac(key, target, issued, envelope)):
        return None
    return target.decode(errors="replace")


def sign_data(data: bytes, key: bytes, name: str) -> bytes:
    """The signature of a value stored under the key ``name`` (a config snapshot)."""
    return _mac(key, name.encode(), data)


def data_signature_holds(data: bytes, signature: bytes, key: bytes, name: str) -> bool:
    return hmac.compare_digest(signature, sign_data(data, key, name))


def _mac(key: bytes, *parts: bytes) -> bytes:
    """Hex HMAC-SHA256 of the parts, each length-prefixed so that no two lists collide."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(b"%d:" % len(part))
        mac.update(part)
    return mac.hexdigest().encode()

"""Command signing: an HMAC over the envelope, so that write access to Redis alone cannot forge a
command. The signature travels in its own field beside the envelope's bytes, which it covers
exactly (no canonical form to get wrong)."""

import hashlib
import hmac

SIGNATURE_FIELD = b"s"


def sign(envelope: bytes, key: bytes) -> bytes:
    return hmac.new(key, envelope, hashlib.sha256).hexdigest().encode()


def signature_problem(envelope: bytes, signature: bytes | None, key: bytes) -> str | None:
    """Why the entry's signature does not hold, or None when it does."""
    if signature is None:
        return "unsigned command: this worker accepts only signed commands (BYAI_SIGNING_KEY)"
    if not hmac.compare_digest(signature, sign(envelope, key)):
        return "bad signature: the command was forged, altered, or signed with another key"
    return None

"""Secrets at rest: password hashing (argon2id), bearer tokens, one-time codes, signed tokens.

- Passwords: argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane: about
  25 ms here), hashed and verified off the event loop; older parameters are rehashed at sign-in.
  `verify_password(None, ...)` spends the same time on a dummy hash, so an unknown email and a
  wrong password cannot be told apart by timing.
- Bearer tokens and link tokens: 256 random bits; only their SHA-256 is stored.
- One-time codes (6-digit OTPs) and link tokens are stored as HMAC-SHA256 under SECRET_KEY,
  so a leaked table does not give away codes (1,000,000 OTPs are otherwise easy to try).
- Signed tokens (page tokens): compact JSON + HMAC, tamper-evident.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not a real password: timing equaliser")


def hash_password_blocking(password: str) -> str:
    """For scripts (the seed); servers use `hash_password`."""
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, as slow as a real check."""
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_token() -> str:
    """A bearer or link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_otp() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(secret_key: str, purpose: str, subject: str, code: str) -> bytes:
    """The stored form of a one-time code or link token, bound to its purpose and subject."""
    message = f"{purpose}\x00{subject}\x00{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).digest()


def sign(secret_key: str, payload: dict[str, Any]) -> str:
    """A URL-safe token carrying `payload` that the client can read but not alter."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(
        b"="
    )
    mac = hmac.new(secret_key.encode(), body, hashlib.sha256).digest()[:16]
    return f"{body.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def unsign(secret_key: str, token: str) -> dict[str, Any] | None:
    """The payload of a token made by `sign`, or None when it was altered or is malformed."""
    body, _, mac = token.partition(".")
    if not body or not mac:
        return None
    expected = hmac.new(secret_key.encode(), body.encode(), hashlib.sha256).digest()[:16]
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        if not hmac.compare_digest(expected, given):
            return None
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None

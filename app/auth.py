"""Bearer tokens: HS256 JWTs whose `sub` is a user key."""

import functools
import time
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
LEEWAY_SECONDS = 2


def issue_token(secret: str, user_key: str, ttl_seconds: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": user_key, "iat": now, "exp": now + timedelta(seconds=ttl_seconds)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def token_subject(secret: str, token: str) -> str | None:
    """The user key of a valid token; None for anything else (bad signature, expired, no exp)."""
    claims = _claims(secret, token)
    return claims["sub"] if claims else None


def token_expiry(secret: str, token: str) -> datetime | None:
    """When a valid token stops being accepted (its `exp` plus the leeway); None if invalid."""
    claims = _claims(secret, token)
    if claims is None:
        return None
    return datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=LEEWAY_SECONDS)


def _claims(secret: str, token: str) -> dict | None:
    """The claims of a valid token, or None. A token once valid stays so until its `exp`
    (with the leeway): every other check (signature, claims, `nbf`, `iat`) gives the same
    answer later, so only `exp` is checked again when the token comes back, which most
    requests' tokens do (PyJWT decoded and checked the token again in every request)."""
    try:
        claims = _valid_claims(secret, token)
    except jwt.PyJWTError:
        return None
    return claims if claims["exp"] > time.time() - LEEWAY_SECONDS else None


# Only valid tokens are kept (an exception is not cached): one refused now, as not valid
# yet (`nbf`), may be accepted later.
@functools.lru_cache(maxsize=4096)
def _valid_claims(secret: str, token: str) -> dict:
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "sub"]},
    )
    subject = claims.get("sub")
    if not (isinstance(subject, str) and subject and isinstance(claims["exp"], int | float)):
        raise jwt.InvalidTokenError("sub must be a non-empty string, exp a number")
    return claims


def bearer_token(header_value: str | None) -> str | None:
    """`Bearer TOKEN` -> TOKEN (scheme case-insensitive)."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None

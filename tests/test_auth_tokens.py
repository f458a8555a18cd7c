"""app/auth.py: a valid token's claims are decoded once and kept; what time can change (the
expiry, a token not valid yet) is decided again at every use."""

import datetime
import time

import jwt
import pytest

from app import auth

SECRET = "token-tests-secret-0123456789-0123456789"


@pytest.fixture
def clock(monkeypatch):
    """The clock of app.auth and of PyJWT's own checks, set by the test."""
    now = [time.time()]

    class Clocked(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.fromtimestamp(now[0], tz)

    monkeypatch.setattr(auth.time, "time", lambda: now[0])
    monkeypatch.setattr(jwt.api_jwt, "datetime", Clocked)
    return now


def _token(**claims) -> str:
    return jwt.encode(claims, SECRET, algorithm=auth.ALGORITHM)


def test_a_kept_token_expires_on_time(clock):
    token = _token(sub="ann", exp=int(clock[0]) + 10)
    assert auth.token_subject(SECRET, token) == "ann"
    decodes = auth._valid_claims.cache_info().misses
    clock[0] += 11  # past exp, within the leeway
    assert auth.token_subject(SECRET, token) == "ann"
    clock[0] += auth.LEEWAY_SECONDS
    assert auth.token_subject(SECRET, token) is None
    assert auth.token_expiry(SECRET, token) is None
    # Decided from the kept claims: the token was not decoded again.
    assert auth._valid_claims.cache_info().misses == decodes


def test_a_token_not_valid_yet_is_accepted_once_it_is(clock):
    token = _token(sub="bob", exp=int(clock[0]) + 600, nbf=int(clock[0]) + 60)
    assert auth.token_subject(SECRET, token) is None
    clock[0] += 61
    assert auth.token_subject(SECRET, token) == "bob"


def test_refused_tokens_are_not_kept():
    auth._valid_claims.cache_clear()
    for token in ("garbage", _token(sub="ann"), _token(sub="", exp=int(time.time()) + 60)):
        assert auth.token_subject(SECRET, token) is None
    assert auth._valid_claims.cache_info().currsize == 0
    assert (
        auth.token_subject("another-secret-0123456789-0123456789", _token(sub="a", exp=2**31))
        is None
    )

"""Deprecation and sunset notices: their header values (RFC 9745, RFC 8594) and settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.config import SettingsError, load_settings
from server.interceptors.deprecation import DeprecationInterceptor, Notice, notices_from

GOOD = {"database_url": "postgresql://u@localhost:5432/db", "redis_url": "redis://localhost:6379/0"}


def test_headers_of_a_deprecation_and_a_sunset() -> None:
    notice = Notice(
        deprecated_at=datetime(2027, 1, 1, tzinfo=UTC),
        # the sunset is an HTTP-date in GMT whatever zone it was given in
        sunset_at=datetime(2027, 12, 31, 18, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
        link="https://docs.hustle.app/versioning",
    )
    assert notice.headers() == (
        ("deprecation", "@1798761600"),
        ("sunset", "Fri, 31 Dec 2027 23:59:59 GMT"),
        (
            "link",
            '<https://docs.hustle.app/versioning>; rel="deprecation"; type="text/html", '
            '<https://docs.hustle.app/versioning>; rel="sunset"; type="text/html"',
        ),
    )


def test_a_deprecation_alone() -> None:
    notice = Notice(deprecated_at=datetime(2026, 12, 1, 12, 30, tzinfo=UTC))
    assert notice.headers() == (("deprecation", "@1796128200"),)


def test_settings_from_the_environment_make_the_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V1_DEPRECATED_AT", "2027-01-01T00:00:00Z")
    monkeypatch.setenv("V1_SUNSET_AT", "2027-12-31T23:59:59+00:00")
    monkeypatch.setenv("V1_DEPRECATION_LINK", "https://docs.hustle.app/versioning")
    notices = notices_from(load_settings(**GOOD))
    assert list(notices) == ["hustle.v1"]
    assert notices["hustle.v1"].headers()[:2] == (
        ("deprecation", "@1798761600"),
        ("sunset", "Fri, 31 Dec 2027 23:59:59 GMT"),
    )


def test_nothing_configured_installs_nothing() -> None:
    settings = load_settings(**GOOD)
    assert notices_from(settings) == {}
    assert DeprecationInterceptor.configured(settings) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"v1_sunset_at": "2027-12-31T00:00:00Z"}, "V1_SUNSET_AT needs V1_DEPRECATED_AT"),
        (
            {"v1_deprecated_at": "2027-12-31T00:00:00Z", "v1_sunset_at": "2027-01-01T00:00:00Z"},
            "V1_SUNSET_AT must not be earlier than V1_DEPRECATED_AT",
        ),
        (
            {"v1_deprecated_at": "2027-01-01T00:00:00"},
            "V1_DEPRECATED_AT: input should have timezone",
        ),
        (
            {"v1_deprecation_link": "https://docs.hustle.app/versioning"},
            "V1_DEPRECATION_LINK needs V1_DEPRECATED_AT",
        ),
        (
            {"v1_deprecated_at": "2027-01-01T00:00:00Z", "v1_deprecation_link": "not a url"},
            "V1_DEPRECATION_LINK",
        ),
    ],
)
def test_inconsistent_dates_stop_start_up(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(**GOOD, **settings)

"""Settings are read from the environment once and a bad one is named in a single line."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from ridehail.settings import Settings, describe_error


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RIDEHAIL_") or name == "REDIS_URL":
            monkeypatch.delenv(name)


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    return describe_error(caught.value)


def test_with_nothing_set_every_setting_has_its_documented_default() -> None:
    settings = Settings()
    assert settings.redis_url is None
    assert settings.admin_token is None
    assert settings.stale_after_s == 30.0
    assert settings.stale_after_ms == 30_000
    assert settings.max_batch_updates == 1000
    assert settings.max_body_bytes == 1_048_576
    assert settings.future_tolerance_s == 5.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "http://x"),
        ("REDIS_URL", "localhost:6379"),
        ("RIDEHAIL_STALE_AFTER_S", "-1"),
        ("RIDEHAIL_STALE_AFTER_S", "0"),
        ("RIDEHAIL_STALE_AFTER_S", "nan"),
        ("RIDEHAIL_STALE_AFTER_S", "soon"),
        ("RIDEHAIL_SWEEP_INTERVAL_S", "inf"),
        ("RIDEHAIL_MAX_BATCH_UPDATES", "-1"),
        ("RIDEHAIL_MAX_BATCH_UPDATES", "0"),
        ("RIDEHAIL_MAX_BODY_BYTES", "10"),
        ("RIDEHAIL_REDIS_MAX_CONNECTIONS", "-5"),
        ("RIDEHAIL_SEARCH_MAX_RADIUS_M", "50001"),
        ("RIDEHAIL_FUTURE_TOLERANCE_S", "-0.5"),
        ("RIDEHAIL_KEY_PREFIX", "Not A Prefix"),
        ("RIDEHAIL_LOG_LEVEL", "loud"),
        ("RIDEHAIL_ADMIN_TOKEN", "short"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_that_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    line = refused(monkeypatch, **{name: value})
    assert "\n" not in line
    assert line.startswith("invalid settings: ")
    assert f"{name}: " in line


def test_a_bad_admin_token_is_never_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    line = refused(monkeypatch, RIDEHAIL_ADMIN_TOKEN="hunter2-secret")
    assert "hunter2-secret" not in line
    assert "RIDEHAIL_ADMIN_TOKEN" in line


def test_every_bad_setting_is_named_on_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = refused(monkeypatch, REDIS_URL="http://x", RIDEHAIL_MAX_BATCH_UPDATES="-1")
    assert "\n" not in line
    assert "REDIS_URL: " in line
    assert "RIDEHAIL_MAX_BATCH_UPDATES: " in line


def test_a_bad_value_passed_in_code_is_refused_like_one_from_the_environment() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(max_batch_updates=-1)
    assert "RIDEHAIL_MAX_BATCH_UPDATES" in describe_error(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380", "unix:///run/redis.sock"]
)
def test_redis_urls_of_the_three_schemes_are_accepted(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    assert Settings().redis_url == url


def test_an_empty_redis_url_means_the_embedded_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "")
    assert Settings().redis_url is None


def test_settings_are_read_from_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIDEHAIL_STALE_AFTER_S", "0.25")
    monkeypatch.setenv("RIDEHAIL_MAX_BATCH_UPDATES", "7")
    monkeypatch.setenv("RIDEHAIL_ADMIN_TOKEN", "a-long-enough-admin-token")
    settings = Settings()
    assert settings.stale_after_ms == 250
    assert settings.max_batch_updates == 7
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "a-long-enough-admin-token"


def test_an_error_that_is_not_about_validation_is_still_described_in_one_line() -> None:
    line = describe_error(RuntimeError("the disk is on fire"))
    assert line == "invalid settings: the disk is on fire"

"""Secrets never leave: URLs lose their passwords, error text is scrubbed, run records redact."""

from __future__ import annotations

import pytest

from storecast.delivery.warehouse import Warehouse
from storecast.errors import ConfigError
from storecast.redaction import redact_url, redact_webhook, scrub, url_secrets

PASSWORD = "Pw-s3cret-9"


@pytest.mark.parametrize(("url", "shown"), [
    (f"postgresql+psycopg://app:{PASSWORD}@db:5432/sales", "postgresql+psycopg://app:***@db:5432/sales"),
    (f"postgresql+psycopg://app@db/sales?password={PASSWORD}&sslmode=require",
     "postgresql+psycopg://app@db/sales?password=***&sslmode=require"),
    (f"https://user:{PASSWORD}@mlflow.example/", "https://user:***@mlflow.example/"),
    ("duckdb:///outputs/storecast.duckdb", "duckdb:///outputs/storecast.duckdb"),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    ("not a url", "not a url"),
])
def test_redact_url_hides_passwords_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_percent_encoded_passwords_are_found_in_both_forms() -> None:
    url = "postgresql+psycopg://app:p%40ss%2Fword-1@db/sales"
    assert set(url_secrets(url)) == {"p%40ss%2Fword-1", "p@ss/word-1"}
    assert scrub("failed for p@ss/word-1 and p%40ss%2Fword-1", url_secrets(url)) == "failed for *** and ***"
    assert redact_webhook("https://hooks.example.com/services/T0/B0/tok") == "https://hooks.example.com/***"


def test_warehouse_errors_name_the_url_without_its_password() -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5999/db?password={PASSWORD}"
    with pytest.raises(ConfigError) as info:
        Warehouse(url)
    assert PASSWORD not in info.value.message and "127.0.0.1:5999" in info.value.message


def test_log_lines_are_scrubbed_including_uvicorn_access_logs(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import logging.config

    from storecast.cli.service import _log_config

    key = "Zq8v-2PLm-x9Tr-44ke"
    config = _log_config([key, PASSWORD])
    logging.config.dictConfig({**config, "disable_existing_loggers": False})
    scrubber = logging.getLogger("uvicorn.access").handlers[0].filters[0]
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "GET /dashboard?key=%s HTTP/1.1" %d',
                               ("127.0.0.1", key, 200), None)
    assert scrubber.filter(record)
    assert record.getMessage() == '127.0.0.1 - "GET /dashboard?key=*** HTTP/1.1" 200'

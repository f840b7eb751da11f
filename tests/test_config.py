"""Settings: sources, validation, and that every setting is documented in the README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.config import Settings, load_settings, settings_reference
from storecast.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_HORIZON", "8")
    monkeypatch.setenv("STORECAST_API_KEYS", "key-one-7Hq2-xP9d, key-two-Lm4z-8cWe")
    monkeypatch.setenv("STORECAST_DATA__DATE", "week_start")
    monkeypatch.setenv("STORECAST_DATA__KEYS", "store,brand")
    s = load_settings()
    assert s.horizon == 8
    assert s.api_keys == ["key-one-7Hq2-xP9d", "key-two-Lm4z-8cWe"]
    assert s.data.date == "week_start" and s.data.keys == ["store", "brand"]


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text('horizon = 6\nseed = 5\n[data]\nkeys = ["shop", "item"]\nweek_label = "start"\n')
    monkeypatch.setenv("STORECAST_CONFIG", str(cfg))
    monkeypatch.setenv("STORECAST_SEED", "9")
    s = load_settings()
    assert (s.horizon, s.seed, s.data.keys, s.data.week_label) == (6, 9, ["shop", "item"], "start")


def test_explicit_overrides_win_and_none_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_HORIZON", "8")
    assert load_settings(horizon=3).horizon == 3
    assert load_settings(horizon=None).horizon == 8


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("STORECAST_API_KEYS", "changeme", "api_keys"),
        ("STORECAST_HORIZON", "0", "horizon"),
        ("STORECAST_HORIZON", "soon", "horizon"),
        ("STORECAST_DATA_FORMAT", "xlsx", "data_format"),
        ("STORECAST_NOT_A_SETTING", "1", None),
    ],
)
def test_bad_settings_fail_at_start_with_the_name(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str | None
) -> None:
    monkeypatch.setenv(env, value)
    if fragment is None:  # unknown env vars are ignored (only the TOML file is strict)
        load_settings()
        return
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_unknown_key_in_toml_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "storecast.toml"
    cfg.write_text("horizn = 6\n")
    monkeypatch.setenv("STORECAST_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="horizn"):
        load_settings()


def test_derived_locations_follow_out_dir(tmp_path: Path) -> None:
    s = Settings(out_dir=tmp_path / "o")
    assert s.resolved_warehouse_url == f"duckdb:///{(tmp_path / 'o' / 'storecast.duckdb').as_posix()}"
    assert s.resolved_tracking_uri.startswith("sqlite:///") and s.resolved_tracking_uri.endswith("mlflow.db")


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [row["env"] for row in settings_reference() if f"`{row['env']}`" not in text]
    assert not missing, f"README's Configuration table lacks: {missing}"


def test_config_command_hides_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_API_KEYS", "very-secret-key-1")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "very-secret-key-1" not in result.output
    assert "hidden" in result.output


SECRETS = {
    "STORECAST_API_KEYS": ("Xk2-very-secret-key-1", "Xk2-very-secret-key-1"),
    "STORECAST_WAREHOUSE_URL": ("postgresql+psycopg://app:pa55-w0rd-wh@db.example:5432/sales", "pa55-w0rd-wh"),
    "STORECAST_MLFLOW_TRACKING_URI": ("postgresql://ml:ml-pa55-w0rd@db.example/ml", "ml-pa55-w0rd"),
    "STORECAST_ALERT_WEBHOOK_URL": ("https://hooks.example.com/services/T0/B0/hook-t0ken-zz", "hook-t0ken-zz"),
}


@pytest.mark.parametrize("args", [["config"], ["config", "--json"]])
def test_config_never_prints_keys_or_passwords(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    for env, (value, _) in SECRETS.items():
        monkeypatch.setenv(env, value)
    from storecast.cli._common import console

    monkeypatch.setattr(console, "width", 400)  # no wrapping: a secret split over two lines would slip through
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for env, (_, secret) in SECRETS.items():
        assert secret not in result.output, env
    assert "db.example" in result.output  # the rest of the URL stays readable
    if "--json" in args:
        body = json.loads(result.output)
        assert body["warehouse_url"] == "postgresql+psycopg://app:***@db.example:5432/sales"
        assert body["api_keys"] == ["***"]


@pytest.mark.parametrize("key", [
    "12345678", "short-key-1", "aaaaaaaaaaaaaaaa", "0123456789abcdef", "abcdefghijklmnopq",
    "abababababababab", "1234567812345678", "fedcba9876543210", "passwordpassword", "changeme-changeme",
])
def test_weak_api_keys_are_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("STORECAST_API_KEYS", key)
    with pytest.raises(ConfigError, match="api_keys") as info:
        load_settings()
    assert key not in info.value.message  # the refusal does not echo the key


@pytest.mark.parametrize("key", ["test-key-0123456789", "Zq8v-2PLm-x9Tr-44ke", "3f9c1b7e2a6d4c8e9b0f1a2d"])
def test_strong_api_keys_are_accepted(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("STORECAST_API_KEYS", key)
    assert load_settings().api_keys == [key]


def test_invalid_setting_is_exit_2_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_HORIZON", "-1")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "horizon" in result.output and "Traceback" not in result.output

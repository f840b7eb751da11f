"""Settings: sources, validation, and that every setting is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.config import Settings, load_settings, settings_reference
from storecast.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_HORIZON", "8")
    monkeypatch.setenv("STORECAST_API_KEYS", "key-one-123, key-two-456")
    monkeypatch.setenv("STORECAST_DATA__DATE", "week_start")
    monkeypatch.setenv("STORECAST_DATA__KEYS", "store,brand")
    s = load_settings()
    assert s.horizon == 8
    assert s.api_keys == ["key-one-123", "key-two-456"]
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


def test_invalid_setting_is_exit_2_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORECAST_HORIZON", "-1")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert "horizon" in result.output and "Traceback" not in result.output

"""The `gptstore` command as an operator meets it: a clear word when nothing is configured,
settings shown with secrets masked, a wrong setting named with what it accepts, GPTs moved
between stores as JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import _register_more, app
from bot.logs import NOISY

runner = CliRunner()
_register_more()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures process-wide logging, as it should in production; put it back after."""
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {name: logging.getLogger(name).level for name in (*NOISY, "")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GPTSTORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GPTSTORE_LLM_LOCAL", "false")
    return tmp_path


def test_run_without_any_platform_says_what_to_set(env: Path) -> None:
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "GPTSTORE_DISCORD_TOKEN" in result.output and "gptstore console" in result.output


def test_config_show_masks_secrets(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTSTORE_SLACK_BOT_TOKEN", "xoxb-very-secret-token")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-also-very-secret")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert "xoxb-very-secret-token" not in result.output and "sk-also-very-secret" not in result.output
    assert "********" in result.output


def test_a_wrong_setting_is_named(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTSTORE_SLACK_PORT", "eighty")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "GPTSTORE_SLACK_PORT" in result.output


def test_toml_config_file(env: Path) -> None:
    config = env / "gptstore.toml"
    config.write_text('llm_default_model = "llama3.2"\nGPTSTORE_MAX_PROMPT_CHARS = 2000\n')
    result = runner.invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 0
    assert "llama3.2" in result.output and "2000" in result.output


def test_gpts_export_and_import_between_stores(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = env / "gpts.json"
    source.write_text(json.dumps({"gptstore": 1, "gpts": [
        {"name": "Trip Planner", "description": "Plans trips.", "instructions": "You plan trips.",
         "starters": ["A weekend in Lyon?"], "category": "Lifestyle", "model": "gpt-4o-mini", "visibility": "public",
         "knowledge": [{"name": "lyon.md", "kind": "markdown", "size": 60, "sha256": "0" * 64, "pages": None,
                        "passages": [{"text": "The traboules of Vieux Lyon are open in the morning.", "heading": "Lyon",
                                      "page": None}]}]},
        {"name": "x", "description": "Too short a name.", "instructions": "You.", "starters": [],
         "category": "Other", "model": "gpt-4o-mini", "visibility": "public"},
    ]}))
    result = runner.invoke(app, ["gpts", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "Imported 1 GPT(s)." in result.output and "x (invalid: name)" in result.output
    exported = runner.invoke(app, ["gpts", "export"])
    data = json.loads(exported.stdout)
    assert [g["name"] for g in data["gpts"]] == ["Trip Planner"]
    assert data["gpts"][0]["starters"] == ["A weekend in Lyon?"]
    # knowledge travels with the GPT: the passages, with their file's name and place
    assert data["gpts"][0]["knowledge"][0]["name"] == "lyon.md"
    assert data["gpts"][0]["knowledge"][0]["passages"][0]["text"].startswith("The traboules")

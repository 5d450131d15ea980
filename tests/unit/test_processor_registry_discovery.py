"""How the registry tells a processor package from anything else under ``procon/processors``."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procon import processors

PLUGIN_NAMED = """
from procon.processors.plugin import ProcessorPlugin, SpecText

PLUGIN = ProcessorPlugin(
    name={name!r},
    title="A test processor",
    order=1000,
    options=None,
    spec_text=SpecText(credential_keys="`key`", events="events", permissions="grants"),
    settings=(),
    driver=lambda env, context: None,
)
"""


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Adds packages, found only in a temporary directory, to ``procon.processors``."""
    added: list[str] = []

    def add(name: str, source: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
        added.append(name)

    monkeypatch.setattr(processors, "__path__", [*processors.__path__, str(tmp_path)])
    monkeypatch.setattr(processors, "_discovered", functools.cache(processors._discovered.__wrapped__))
    yield add
    for name in added:
        sys.modules.pop(f"procon.processors.{name}", None)


def test_a_package_without_a_plugin_is_passed_over(packages: Callable[[str, str], None]) -> None:
    """A helper package (sorted before the processors here) is not a processor and does not end the
    search."""
    packages("aaa_helpers", '"""Shared helpers, no PLUGIN."""\n')
    packages("zeta", PLUGIN_NAMED.format(name="zeta"))
    assert "aaa_helpers" not in processors.names()
    assert "zeta" in processors.names()
    assert {"checkout", "stripe"} <= set(processors.names())


def test_a_plugin_must_carry_its_packages_name(packages: Callable[[str, str], None]) -> None:
    packages("zeta", PLUGIN_NAMED.format(name="other"))
    with pytest.raises(TypeError) as raised:
        processors.names()
    assert str(raised.value) == "procon.processors.zeta.PLUGIN must be a ProcessorPlugin named 'zeta'"


def test_a_plugin_must_be_a_processor_plugin(packages: Callable[[str, str], None]) -> None:
    packages("zeta", "PLUGIN = object()\n")
    with pytest.raises(TypeError, match=r"procon\.processors\.zeta\.PLUGIN must be a ProcessorPlugin"):
        processors.names()


def test_an_unknown_processor_is_named_in_the_error() -> None:
    with pytest.raises(processors.UnknownProcessor) as raised:
        processors.get("nonesuch")
    assert raised.value.args == ("nonesuch",)

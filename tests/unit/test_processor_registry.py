"""The processor registry: every processor package found, and the API composed from them.

The last test adds a processor package that exists only in a temporary
directory and shows that the registry, the spec and its CEL rules take it in
with no edit anywhere else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from procon import processors
from procon.api import v1alpha1
from procon.api.crd import structural_schema
from procon.processors.plugin import ProcessorPlugin

BASE_SPEC = {
    "mode": "test",
    "credentialsSecretRef": {"name": "key"},
    "webhook": {"url": "https://hooks.example.com/x", "events": ["a"], "signingSecretRef": {"name": "hook"}},
}


def test_every_processor_package_is_found_by_its_plugin_under_its_own_name() -> None:
    found = processors.names()
    assert {"checkout", "stripe"} <= set(found)
    assert list(found) == [p.name for p in sorted(processors.plugins(), key=lambda p: (p.order, p.name))]
    for name in found:
        plugin = processors.get(name)
        assert isinstance(plugin, ProcessorPlugin)
        assert plugin.name == name
    with pytest.raises(processors.UnknownProcessor):
        processors.get("nonesuch")


def test_the_spec_offers_each_processor_and_its_block_only_with_its_own_processor() -> None:
    schema = structural_schema(v1alpha1.ProcessorConnectionSpec)
    assert schema["properties"]["processor"]["enum"] == list(processors.names())
    rules = {r["rule"] for r in schema["x-kubernetes-validations"]}
    for plugin in processors.plugins():
        if plugin.options is None:
            continue
        assert plugin.name in schema["properties"]
        assert f"!has(self.{plugin.name}) || self.processor == '{plugin.name}'" in rules
        # The model itself parses the block under the processor's name.
        spec = v1alpha1.ProcessorConnectionSpec.model_validate(
            {**BASE_SPEC, "processor": plugin.name, plugin.name: {}}
        )
        assert isinstance(getattr(spec, plugin.name), plugin.options)
    with pytest.raises(ValidationError):
        v1alpha1.ProcessorConnectionSpec.model_validate({**BASE_SPEC, "processor": "nonesuch"})


def test_the_shared_descriptions_name_every_processors_conventions() -> None:
    schema = structural_schema(v1alpha1.ProcessorConnectionSpec)
    key = schema["properties"]["credentialsSecretRef"]["properties"]["key"]["description"]
    events = schema["properties"]["webhook"]["properties"]["events"]["description"]
    permissions = schema["properties"]["requiredPermissions"]["description"]
    for plugin in processors.plugins():
        assert plugin.spec_text.credential_keys in key
        assert plugin.spec_text.events in events
        assert plugin.spec_text.permissions in permissions


PACKAGE = '''
from procon.api.schema import ApiModel
from procon.processors.plugin import EnvSetting, ProcessorPlugin, SpecText


class ZetaOptions(ApiModel):
    """Zeta-specific settings."""

    region: str | None = None


def _driver(env, context):
    raise NotImplementedError


PLUGIN = ProcessorPlugin(
    name="zeta",
    title="Zeta Pay",
    order=1000,
    options=ZetaOptions,
    spec_text=SpecText(credential_keys="`zetaKey`", events="zeta events", permissions="zeta grants"),
    settings=(EnvSetting("PROCON_ZETA_API_BASE", "apiBase", "Zeta API base URL", "https://api.zeta.example"),),
    driver=_driver,
)
'''


@pytest.fixture
def zeta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A processor package that lives only in a temporary directory."""
    (tmp_path / "zeta").mkdir()
    (tmp_path / "zeta" / "__init__.py").write_text(PACKAGE)
    monkeypatch.setattr(processors, "__path__", [*processors.__path__, str(tmp_path)])
    monkeypatch.setattr(processors, "_discovered", functools.cache(processors._discovered.__wrapped__))
    yield
    import sys

    sys.modules.pop("procon.processors.zeta", None)


@pytest.mark.usefixtures("zeta")
def test_a_new_processor_package_is_taken_in_without_an_edit_elsewhere() -> None:
    assert "zeta" in processors.names()
    spec = v1alpha1._compose_spec()
    schema = structural_schema(spec)
    assert "zeta" in schema["properties"]["processor"]["enum"]
    assert schema["properties"]["zeta"]["properties"]["region"]["type"] == "string"
    rules = {r["rule"] for r in schema["x-kubernetes-validations"]}
    assert "!has(self.zeta) || self.processor == 'zeta'" in rules
    assert "`zetaKey`" in schema["properties"]["credentialsSecretRef"]["properties"]["key"]["description"]
    parsed = spec.model_validate({**BASE_SPEC, "processor": "zeta", "zeta": {"region": "eu"}})
    assert parsed.zeta.region == "eu"  # type: ignore[attr-defined]


OPERATOR_PACKAGE = Path(processors.__file__).resolve().parents[1]


def _names_of_a_processor(plugin: ProcessorPlugin) -> re.Pattern[str]:
    """How code names a processor: its title's word (``Stripe``, ``Checkout``, ``StripeMock``) or its
    name in an identifier, module path, string or file name (``"adyen"``, ``stripe_spec``,
    ``processors.checkout``, ``stripe-mock``); the English word "checkout" ending a sentence is not one."""
    word = re.escape(plugin.title.split(".")[0])
    name = re.escape(plugin.name)
    return re.compile(rf"\b{word}|[\"'/._-]{name}\b|\b{name}[/_-]")


def test_no_module_outside_a_processors_own_packages_names_a_processor() -> None:
    """Issue 11's boundary: only ``processors/<name>/`` and ``emulators/<name>/`` name a processor."""
    own = {
        OPERATOR_PACKAGE / kind / plugin.name
        for kind in ("processors", "emulators")
        for plugin in processors.plugins()
    }
    patterns = {plugin.name: _names_of_a_processor(plugin) for plugin in processors.plugins()}
    found = []
    for path in sorted(OPERATOR_PACKAGE.rglob("*.py")):
        if any(path.is_relative_to(package) for package in own):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found += [
                f"{path.relative_to(OPERATOR_PACKAGE)}:{number}: {name}"
                for name, pattern in patterns.items()
                if pattern.search(line)
            ]
    assert found == []

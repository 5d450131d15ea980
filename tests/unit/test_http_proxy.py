"""The proxy procon's aiohttp clients use, chosen once from the environment: curl's and httpx's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from procon.http_proxy import proxy_from_environment


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proxy_variables: None) -> None:
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    empty = tmp_path / "empty-netrc"
    empty.write_text("")
    monkeypatch.setenv("NETRC", str(empty))


def test_no_variable_no_proxy() -> None:
    assert proxy_from_environment("https://api.stripe.com") is None


def test_the_variable_of_the_urls_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-egress:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-egress:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://secure-egress:3128"
    assert proxy_from_environment("http://emulator.test") == "http://plain-egress:3128"


def test_an_address_without_a_scheme_is_an_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://proxy.internal:3128"


def test_an_https_proxy_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://egress.example:8443")
    assert proxy_from_environment("https://api.stripe.com") == "https://egress.example:8443"


def test_all_proxy_when_the_scheme_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://everything:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://everything:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-egress:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://secure-egress:3128"


def test_no_proxy_exempts_a_host_and_its_subdomains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
    monkeypatch.setenv("NO_PROXY", "stripe.com,127.0.0.1")
    assert proxy_from_environment("https://api.stripe.com") is None
    assert proxy_from_environment("https://127.0.0.1:6443") is None
    assert proxy_from_environment("https://api.checkout.com") == "http://egress:3128"


def test_the_lower_case_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:3128")
    monkeypatch.setenv("https_proxy", "http://lower:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://lower:3128"


def test_credentials_from_the_url_or_from_netrc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pass@egress:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://user:pass@egress:3128"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine egress login robot password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
    assert proxy_from_environment("https://api.stripe.com") == "http://robot:s3cret@egress:3128"

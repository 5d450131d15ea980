"""Shared fixtures: the repository root and the example manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def example_files() -> list[Path]:
    files = sorted((ROOT / "examples").glob("*.yaml"))
    assert files, "examples/ holds no manifests"
    return files

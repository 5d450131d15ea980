"""tests/e2e/kind/run.sh where it cannot run: it says why and exits 0, so `make e2e-kind` is safe
everywhere. (Where Docker and kind work it runs for real; these machines have a docker client
and no engine, the second case below.)

Docker and kind are stood in for by scripts, so each path is taken whatever this machine has.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path


def _run(repo_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo_root / "tests" / "e2e" / "kind" / "run.sh")],
        env={**os.environ, **env},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _stub(path: Path, exit_code: int) -> str:
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_skips_without_docker(repo_root: Path, tmp_path: Path) -> None:
    result = _run(repo_root, DOCKER=str(tmp_path / "no-such-docker"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"SKIPPED tests/e2e/kind: docker is not installed ({tmp_path / 'no-such-docker'} not found)"
    )


def test_skips_when_docker_cannot_reach_an_engine(repo_root: Path, tmp_path: Path) -> None:
    """The case on these machines: a docker client, no daemon."""
    result = _run(repo_root, DOCKER=_stub(tmp_path / "docker", exit_code=1))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "SKIPPED tests/e2e/kind: docker cannot reach a container engine "
        f"(`{tmp_path / 'docker'} info` failed)"
    )


def test_skips_without_kind(repo_root: Path, tmp_path: Path) -> None:
    result = _run(repo_root, DOCKER=_stub(tmp_path / "docker", exit_code=0), KIND=str(tmp_path / "no-kind"))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"SKIPPED tests/e2e/kind: kind is not installed ({tmp_path / 'no-kind'} not found)"
    )


def test_make_target_runs_the_script(repo_root: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "e2e-kind"], cwd=repo_root, text=True, capture_output=True, check=True
    ).stdout
    assert "tests/e2e/kind/run.sh" in dry

"""`procon dev up`, the README's first command, brings up the whole demo; `procon dev down` stops it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from procon import processors as registry
from procon.dev import processes
from procon.dev.demo import emulator_process


def in_demo() -> list[str]:
    """The processors the demo shows, in the registry's order."""
    return [p.name for p in registry.plugins() if p.demo is not None]


def procon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "procon.cli", *args], capture_output=True, text=True, check=False, timeout=300
    )


def test_dev_up_runs_the_demo_and_dev_down_stops_it(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    up = procon("dev", "up", f"--state-dir={state}")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "kubectl get pconn -o wide" in up.stdout
        env = {
            **os.environ,
            "KUBECONFIG": str(state / "kubeconfig"),
            "PATH": f"{state / 'bin'}:{os.environ['PATH']}",
        }
        listed = json.loads(
            subprocess.run(
                ["kubectl", "get", "pconn", "-n", "default", "-o", "json"],
                env=env,
                capture_output=True,
                check=True,
            ).stdout
        )
        ready = {
            item["metadata"]["name"]: next(
                c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready"
            )
            for item in listed["items"]
        }
        assert ready == {f"quickstart-{name}": "True" for name in in_demo()}
        assert {"stripe", "checkout", "adyen"} <= set(in_demo())
        for name in ("operator", *map(emulator_process, in_demo())):
            assert processes.running(state, name), f"{name} is not running"
        # A second `up` finds everything running and changes nothing.
        again = procon("dev", "up", f"--state-dir={state}")
        assert again.returncode == 0, again.stderr
    finally:
        down = procon("dev", "down", f"--state-dir={state}")
    assert down.returncode == 0, down.stderr
    stopped = ", ".join(("operator", *map(emulator_process, in_demo())))
    assert f"stopped: {stopped}, control plane" in down.stdout
    for name in ("operator", *map(emulator_process, in_demo())):
        assert processes.running(state, name) is None

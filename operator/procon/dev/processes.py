"""Background processes of the local demo (emulators, the operator), tracked by pid files.

Each runs in its own session so it outlives the ``procon dev up`` that
started it, writes to ``STATE/logs/NAME.log``, and is found again by
``STATE/NAME.pid`` for ``procon dev down``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ProcessError(RuntimeError):
    """A demo process did not start; the message points at its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.pid"


def log_file(state_dir: Path, name: str) -> Path:
    return state_dir / "logs" / f"{name}.log"


def running(state_dir: Path, name: str) -> int | None:
    """The pid of ``name`` if it is running."""
    try:
        pid = int(_pid_file(state_dir, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return pid
    return None if waited else pid


def start(
    state_dir: Path,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    ready: Callable[[], bool],
    timeout: float = 60.0,
) -> int:
    """Start ``argv`` in the background (unless already running) and wait until ``ready()``."""
    if pid := running(state_dir, name):
        return pid
    log_path = log_file(state_dir, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    _pid_file(state_dir, name).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProcessError(f"{name} exited with {process.returncode}; see {log_path}")
        if ready():
            return process.pid
        time.sleep(0.1)
    stop(state_dir, name)
    raise ProcessError(f"{name} was not ready within {timeout:.0f}s; see {log_path}")


def stop(state_dir: Path, name: str, *, timeout: float = 20.0) -> bool:
    """Stop ``name``: SIGTERM, then SIGKILL after ``timeout``. Returns whether it was running."""
    pid = running(state_dir, name)
    _pid_file(state_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    return True

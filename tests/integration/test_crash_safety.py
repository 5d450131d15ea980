"""Crash safety: SIGKILL the operator at random points of its work, restart it, check both sides.

A short, seeded run of ``bench/crash_harness.py`` per processor (the bench runs hundreds of
kill points): the real operator process on the control plane, against emulators answering
with processor-like latency, random actions (create, URL change, events change, rotation,
deletion under Delete and Orphan), faults on some rounds, and a kill timed on the operator's
processor writes. After each round has settled: every live connection has exactly one owned
webhook matching its spec whose secret is the published one, nothing is left by a deleted
connection except an Orphan's webhook (exactly once), and the log holds no secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.crash_harness import Harness, HarnessSettings

from procon.dev import cluster as control_plane

# It runs its own operator (watching only its own namespace) and kills it.
pytestmark = pytest.mark.no_session_operator

ROUNDS = 14


@pytest.mark.parametrize("processor", ["stripe", "checkout"])
def test_random_kills_leave_one_webhook_per_connection_with_its_published_secret(
    cluster: control_plane.Cluster, crd_installed: None, tmp_path: Path, processor: str
) -> None:
    settings = HarnessSettings(seed=20261201, rounds=ROUNDS, processors=(processor,))
    report = Harness(cluster, settings, tmp_path).run()
    summary = report.summary()
    assert report.rounds == ROUNDS, summary
    assert report.kills >= ROUNDS, summary
    # The kills are timed on processor writes; a run that never hit one proved little.
    assert report.kills_during_write >= 1, summary
    assert report.violations == [], summary

"""Mutation testing of procon's pure core: ``make mutation``.

Each mutant is a small change to one function (a flipped comparison, a changed
string, a dropped argument); a mutant that no test notices marks a behaviour
nothing pins. mutmut runs each mutant against only the tests that reach the
mutated function, in forked processes, so the whole core takes about a minute.

mutmut imports its mutants from a ``src/`` (or flat) layout, and procon lives
in ``operator/procon`` (a top-level ``operator`` would also shadow the standard
library's module). So this lays out a copy in ``build/mutation``
(``src/procon``, ``tests``, ``pyproject.toml`` with the mutmut settings below),
runs mutmut there one module at a time, niced and with one worker by default
(the machine is shared), and prints killed and surviving mutants per module.

Survivors listed in ``hack/mutation-equivalent.toml`` are equivalent mutants:
no test can tell them from the original, and the file says why for each. They
are counted apart; the score is killed / (mutants - equivalent). A listed
mutant that is killed, or no longer exists (its function changed and mutmut
numbered its mutants anew), is reported so the list stays true.

Usage: ``python hack/mutation.py [--jobs N] [--show] [module ...]``; see a
survivor with ``cd build/mutation && ../../.venv/bin/mutmut show NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
EQUIVALENT_FILE = ROOT / "hack" / "mutation-equivalent.toml"

# The pure core: decisions without I/O, so fast unit tests can pin every branch. Each processor's
# webhook module (how its spec becomes a desired webhook and how that compares with an observed one)
# is found, not listed: nothing outside a processor's package names it.
NEUTRAL = (
    "procon.reconcile.conditions",
    "procon.reconcile.ownership",
    "procon.redaction",
    "procon.reconcile.webhook_plan",
    "procon.processors",  # the registry
)
PROCESSOR_WEBHOOKS = tuple(
    f"procon.processors.{path.parent.name}.webhook"
    for path in sorted((ROOT / "operator" / "procon" / "processors").glob("*/webhook.py"))
)
CORE = NEUTRAL + PROCESSOR_WEBHOOKS
# The fast unit tests of the core (a few seconds in all); mutmut runs, for each mutant, only those
# among them that reach the mutated function.
TESTS = (
    "tests/unit/reconcile",
    "tests/unit/test_redaction.py",
    *(
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests" / "unit").glob("test_processor_registry*.py"))
    ),
    *(
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests" / "unit" / "processors").glob("test_*_webhook.py"))
    ),
)

# mutmut's exit codes (mutmut.stats.status_by_exit_code): 1 and 3 are a failing test run.
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {24, 36, 152, 255, -24}


def module_of(mutant: str) -> str:
    """``procon.redaction`` of ``procon.redaction.x_redact__mutmut_3`` (or of ``...xǁClassǁmethod...``)."""
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def module_file(module: str) -> Path:
    """The module's file in the laid-out copy: ``src/procon/...py``, or a package's ``__init__.py``."""
    parts = module.split(".")
    if (ROOT / "operator" / Path(*parts)).is_dir():
        return Path("src", *parts, "__init__.py")
    return Path("src", *parts).with_suffix(".py")


def lay_out(modules: list[str]) -> None:
    """A fresh copy of the package and the tests in a src/ layout, with mutmut's settings."""
    shutil.rmtree(WORK, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "operator" / "procon", WORK / "src" / "procon", ignore=ignore)
    shutil.copytree(ROOT / "tests", WORK / "tests", ignore=ignore)
    settings = {
        "source_paths": ["src/procon"],
        "only_mutate": [str(module_file(m)) for m in modules],
        "pytest_add_cli_args_test_selection": list(TESTS),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q"],
        # Each run starts from an empty build/mutation: nothing cached to invalidate.
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    # The project's own pytest settings (markers, warning filters) apply to the mutants' runs too.
    (WORK / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + "\n".join(lines) + "\n")


@dataclass
class Tally:
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(x) for x in (self.killed, self.survived, self.equivalent, self.untested, self.other))

    @property
    def score(self) -> float:
        counted = self.total - len(self.equivalent)
        return 100.0 * len(self.killed) / counted if counted else 100.0


def tally(module: str, equivalent: dict[str, str], *, reached: bool = True) -> Tally:
    """The module's mutants by outcome; ``reached`` False: no selected test reaches any of them."""
    meta = WORK / "mutants" / module_file(module).with_suffix(".py.meta")
    if not meta.exists():  # a module without functions to mutate
        return Tally()
    results: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    t = Tally()
    for name, code in sorted(results.items()):
        if code in KILLED or code in TIMEOUT:
            t.killed.append(name)
        elif code in SURVIVED:
            (t.equivalent if name in equivalent else t.survived).append(name)
        elif code in NO_TESTS or (code is None and not reached):
            (t.equivalent if name in equivalent else t.untested).append(name)
        else:
            t.other.append(f"{name} (exit code {code})")
    return t


# What mutmut says, exiting 1, when no selected test reaches any of the module's functions.
NOTHING_REACHED = "could not find any test case for any mutant"


def run_module(module: str, jobs: int) -> bool:
    """Runs mutmut on ``module``'s mutants; False when no selected test reaches any of them."""
    log = WORK / f"{module}.log"
    # mutmut names a mutant module.x_function__mutmut_N or module.xǁClassǁmethod__mutmut_N (a
    # package's module without its __init__): these patterns leave out the package's submodules.
    patterns = [f"{module}.x_*", f"{module}.xǁ*"]
    command = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(jobs), *patterns]
    with log.open("w") as out:
        done = subprocess.run(command, cwd=WORK, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 and NOTHING_REACHED in log.read_text():
        return False
    if done.returncode != 0:
        sys.stdout.write(log.read_text()[-4000:])
        sys.exit(f"mutmut failed on {module} (exit code {done.returncode}); its output is in {log}")
    return True


def show(name: str) -> str:
    mutmut = str(Path(sys.executable).parent / "mutmut")
    return subprocess.run(
        [mutmut, "show", name], cwd=WORK, capture_output=True, text=True, check=False
    ).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(CORE), help="modules to mutate (default: all)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "1")))
    parser.add_argument("--show", action="store_true", help="print the diff of every survivor")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in CORE]
    if unknown:
        parser.error(f"not in the core: {', '.join(unknown)} (the core is {', '.join(CORE)})")
    os.nice(10)
    equivalent: dict[str, str] = tomllib.loads(EQUIVALENT_FILE.read_text()).get("equivalent", {})

    lay_out(args.modules)
    tallies: dict[str, Tally] = {}
    for module in args.modules:
        print(f"mutating {module} ...", flush=True)
        reached = run_module(module, args.jobs)
        tallies[module] = tally(module, equivalent, reached=reached)

    print()
    columns = ("mutants", "killed", "survived", "no test", "equiv.", "score")
    header = f"{'module':34} " + " ".join(f"{c:>8}" for c in columns)
    print(header)
    print("-" * len(header))
    for module, t in tallies.items():
        print(
            f"{module:34} {t.total:8} {len(t.killed):8} {len(t.survived):8} {len(t.untested):8} "
            f"{len(t.equivalent):8} {t.score:7.1f}%"
        )
    every = Tally()
    for t in tallies.values():
        for name in ("killed", "survived", "equivalent", "untested", "other"):
            getattr(every, name).extend(getattr(t, name))
    print(
        f"{'all':34} {every.total:8} {len(every.killed):8} {len(every.survived):8} "
        f"{len(every.untested):8} {len(every.equivalent):8} {every.score:7.1f}%"
    )
    print("\nscore = killed / (mutants - equivalent); timeouts count as killed")

    alive = every.survived + every.untested + every.other
    if alive:
        print(f"\n{len(alive)} surviving (see one: cd build/mutation && ../../.venv/bin/mutmut show NAME):")
        for name in alive:
            print(f"  {name}")
            if args.show:
                print("    " + show(name.split(" ")[0]).replace("\n", "\n    "))
    mutated = {name for t in tallies.values() for name in t.killed + t.equivalent + t.survived + t.untested}
    listed = [n for n in equivalent if module_of(n) in args.modules]
    stale = [n for n in listed if n not in mutated]
    killed = [n for n in listed if n in set(every.killed)]
    for name in stale:
        print(f"warning: {name} is listed as equivalent but no longer exists; update {EQUIVALENT_FILE.name}")
    for name in killed:
        print(f"warning: {name} is listed as equivalent but a test kills it; remove it from the list")
    return 0


if __name__ == "__main__":
    sys.exit(main())

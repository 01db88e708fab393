"""Mutation score of the packages whose bugs the tests must catch (a script, not a test).

    .venv/bin/python benchmarks/mutation.py [TARGET ...] [--children N] [--list-survivors]
                                            [--tests PATH ...] [--fresh]

Needs the `mutation` extra (`pip install -e '.[cpu,dev,mutation]'`). Each target mutates a
few modules with mutmut 3 (every operator, constant and call a function contains, one mutant
at a time) and runs only the fast tests that exercise them: mutmut first records which tests
reach each function and then runs only those per mutant. Targets (default: all):

    domain            khfsm/domain/*
                      tests/domain, tests/test_registry.py, the SQLite store tests and the
                      synthetic exercise tests
    store             khfsm/store/* except writer.py
                      tests/store/test_recorder_{sqlite,postgres}.py, test_chain.py
    server            khfsm/server/paths.py and protocol.py
                      tests/server/test_{units,paths,protocol}.py
    exercises-common  exercises/common/{cycle,timers,levels}.py
                      tests/exercises: the rule modules' unit tests on synthetic clips

mutmut reads its settings from `[tool.mutmut]` in the pyproject.toml of the directory it runs
in, and a project has one such section; so each target runs in its own scratch copy of the
working tree under build/mutation/<target>/ with its own section appended. The scratch copy
keeps mutmut's results between runs: a rerun only re-tests functions whose code changed (or
all, when the target's test selection changed), so after adding tests to a selected folder
pass --fresh to measure the score anew. Prints per target: killed / survived / no tests /
timeouts and the score (killed + timeout) / (mutants checked); --list-survivors lists the
survivors (`cd build/mutation/<target> && mutmut show NAME` prints a survivor's diff).

Not run by CI: a full run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = REPO / "build" / "mutation"
# The real clips and the models are not what these targets test: the synthetic tests are.
SLOW_EXERCISE_TESTS = {"test_real_videos.py", "test_cli_assess.py", "test_assess_sampling.py"}


def synthetic_exercise_tests() -> list[str]:
    return sorted(
        f"tests/exercises/{p.name}"
        for p in (REPO / "tests" / "exercises").glob("test_*.py")
        if p.name not in SLOW_EXERCISE_TESTS
    )


@dataclass(frozen=True)
class Target:
    mutate: list[str]  # globs (mutmut's only_mutate) of the files to mutate
    tests: list[str]  # the pytest selection run against each mutant


def targets() -> dict[str, Target]:
    return {
        "domain": Target(
            ["khfsm/domain/*"],
            [
                "tests/domain",
                "tests/test_registry.py",
                "tests/store/test_recorder_sqlite.py",
                *synthetic_exercise_tests(),
            ],
        ),
        # The batching writer (writer.py) is left out: its tests cut a real PostgreSQL
        # connection and wait for reconnects, seconds per mutant (a run of an hour or more).
        "store": Target(
            [f"khfsm/store/{name}.py" for name in ("recorder", "sql", "urls", "engine", "migrate")],
            [
                "tests/store/test_recorder_sqlite.py",
                "tests/store/test_recorder_postgres.py",
                "tests/store/test_chain.py",
            ],
        ),
        "server": Target(
            ["khfsm/server/paths.py", "khfsm/server/protocol.py"],
            [
                "tests/server/test_units.py",
                "tests/server/test_paths.py",
                "tests/server/test_protocol.py",
            ],
        ),
        # The repetition cycle, timers and level tables every rule module is built on, against
        # the rule modules' unit tests (the hypothesis properties take a minute a mutant).
        "exercises-common": Target(
            [f"exercises/common/{name}.py" for name in ("cycle", "timers", "levels")],
            [t for t in synthetic_exercise_tests() if not t.endswith("test_properties.py")],
        ),
    }


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def sync_scratch(name: str, target: Target) -> Path:
    """A copy of the working tree for one target, with its [tool.mutmut] section; files
    are copied only when changed, so mutmut's cache stays valid between runs."""
    scratch = SCRATCH / name
    for relative in tracked_files():
        source, copy = REPO / relative, scratch / relative
        if copy.exists() and copy.stat().st_mtime == source.stat().st_mtime:
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy)
    section = {
        "source_paths": ["khfsm", "exercises", "migrations"],
        "only_mutate": target.mutate,
        "pytest_add_cli_args_test_selection": target.tests,
        # Hypothesis with a fixed seed: a mutant is killed or not the same way on every run.
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "--hypothesis-seed=0", "-q"],
    }
    pyproject = scratch / "pyproject.toml"
    text = (REPO / "pyproject.toml").read_text()
    lines = [f"{key} = {json.dumps(value)}" for key, value in section.items()]
    pyproject.write_text(text + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")
    return scratch


@dataclass(frozen=True)
class Score:
    killed: int
    survived: int
    no_tests: int
    timeout: int
    total: int

    @property
    def checked(self) -> int:
        return self.killed + self.survived + self.no_tests + self.timeout

    @property
    def percent(self) -> float:
        return 100.0 * (self.killed + self.timeout) / self.checked if self.checked else 0.0


def mutmut(scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=scratch,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def measure(name: str, target: Target, children: int, list_survivors: bool) -> Score:
    scratch = sync_scratch(name, target)
    started = time.monotonic()
    run = mutmut(scratch, "run", "--max-children", str(children))
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"mutmut run failed for {name} (exit {run.returncode})")
    mutmut(scratch, "export-cicd-stats")
    stats = json.loads((scratch / "mutants" / "mutmut-cicd-stats.json").read_text())
    score = Score(
        killed=stats["killed"],
        survived=stats["survived"],
        no_tests=stats["no_tests"],
        timeout=stats["timeout"],
        total=stats["total"],
    )
    elapsed = time.monotonic() - started
    print(
        f"{name:17s} {score.percent:5.1f}%  killed {score.killed:4d}  survived "
        f"{score.survived:4d}  no tests {score.no_tests:4d}  timeout {score.timeout:3d}  "
        f"of {score.total:4d} mutants  ({elapsed:.0f} s)  [{', '.join(target.mutate)}]",
        flush=True,
    )
    if list_survivors:
        for line in mutmut(scratch, "results").stdout.splitlines():
            if line.strip():
                print(f"    {line.strip()}")
    return score


def main() -> None:
    known = targets()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(known)} (default: all)")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--list-survivors", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results first")
    parser.add_argument(
        "--tests",
        nargs="+",
        help="run the target(s) against these tests instead (e.g. an older selection, to "
        "compare scores)",
    )
    options = parser.parse_args()
    if unknown := set(options.targets) - set(known):
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    for name in options.targets or list(known):
        target = known[name]
        if options.tests:
            target = Target(target.mutate, options.tests)
        if options.fresh:
            shutil.rmtree(SCRATCH / name / "mutants", ignore_errors=True)
        measure(name, target, options.children, options.list_survivors)


if __name__ == "__main__":
    main()

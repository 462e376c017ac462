"""Apply each deliberate bug of ``tests/mutations.md`` to a copy of the repository, run the tests named for it, and
expect a failure: one line per mutation, ``caught`` or ``MISSED``; the exit code is non-zero if any is missed.

    .venv/bin/python scripts/check_mutations.py [--only NAME ...] [--keep]

Each row of the table in ``tests/mutations.md`` gives a name, the file, the exact text to replace (``old``), its
replacement (``new``) and the pytest node ids that must fail. The copy (``git ls-files`` of this checkout) lives in a
temporary folder, so the checkout itself is never touched; tests run there with ``python -m pytest``, which puts the
copy's package first on ``sys.path`` (subprocesses the tests start run from the copy too). Not in CI: every mutation
re-runs its tests (minutes each).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tests", "mutations.md")


def read_table(path: str = TABLE) -> List[Dict[str, object]]:
    """The rows of the table: ``| name | file | `old` | `new` | `test` `test` ... |``."""
    rows = []
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) != 5 or cells[0] in ("name", "") or set(cells[0]) <= {"-"}:
            continue
        code = [re.findall(r"`([^`]*)`", c) for c in cells[2:]]
        if len(code[0]) != 1 or len(code[1]) != 1 or not code[2]:
            raise SystemExit(f"{path}: row {cells[0]!r} needs one `old`, one `new` and at least one `test`")
        rows.append(dict(name=cells[0], file=cells[1], old=code[0][0], new=code[1][0], tests=code[2]))
    if not rows:
        raise SystemExit(f"{path} holds no mutation rows")
    return rows


def copy_checkout(dest: str) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def mutate(copy: str, row: Dict) -> str:
    path = os.path.join(copy, row["file"])
    text = open(path).read()
    count = text.count(row["old"])
    if count != 1:
        raise SystemExit(f"mutation {row['name']}: `{row['old']}` occurs {count} times in {row['file']} (need 1); "
                         "update tests/mutations.md")
    original = text
    with open(path, "w") as f:
        f.write(text.replace(row["old"], row["new"]))
    return original


def pytest_run(copy: str, tests) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=copy,
                          capture_output=True, text=True)


def summary(r: subprocess.CompletedProcess) -> str:
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "no output"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="run only these mutations (by name)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = ap.parse_args(argv)
    rows = [r for r in read_table() if not args.only or r["name"] in args.only]
    copy = tempfile.mkdtemp(prefix="esz-mutations-")
    copy_checkout(copy)
    missed = 0
    try:
        control = pytest_run(copy, sorted({t for row in rows for t in row["tests"]}))
        if control.returncode != 0:  # the named tests must pass on the unmutated code, or "caught" means nothing
            raise SystemExit(f"the named tests do not pass without a mutation ({summary(control)}):\n"
                             + control.stdout[-3000:])
        print(f"control: the named tests pass unmutated ({summary(control)})", flush=True)
        for row in rows:
            original = mutate(copy, row)
            start = time.time()
            r = pytest_run(copy, row["tests"])
            with open(os.path.join(copy, row["file"]), "w") as f:
                f.write(original)
            if r.returncode in (2, 3, 4, 5):  # interrupted, internal error, usage error, nothing collected
                raise SystemExit(f"mutation {row['name']}: pytest could not run {row['tests']} (exit code "
                                 f"{r.returncode}: {summary(r)})")
            caught = r.returncode == 1 and " failed" in summary(r)
            missed += not caught
            print(f"{'caught' if caught else 'MISSED'}  {row['name']}  ({time.time() - start:.0f} s; {summary(r)})",
                  flush=True)
    finally:
        if args.keep:
            print(f"copy kept at {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

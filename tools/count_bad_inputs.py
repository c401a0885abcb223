"""Count the bad-input cases: every test marked ``bad_input``, by module.

    python tools/count_bad_inputs.py

Each such case feeds saddlescope one wrong input (through the API or the command line) and
asserts a saddlescope error, or a one-line CLI error with its exit status, whose message names
the problem. The count is what pytest collects, so it is the number that runs in CI.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collect() -> Counter[str]:
    """Collected ``bad_input`` test ids, counted per test module."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-m",
            "bad_input",
            "--collect-only",
            "-q",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Counter(line.split("::")[0] for line in out.splitlines() if "::" in line)


def main() -> None:
    """Print the count per module and in all."""
    counts = collect()
    for module, n in sorted(counts.items()):
        print(f"{n:5d}  {module}")
    print(f"{sum(counts.values()):5d}  bad-input cases in all")


if __name__ == "__main__":
    main()

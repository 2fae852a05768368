"""Kill rate per module from ``mutmut results --all true`` (read on standard input).

Usage: mutmut results --all true | python tools/mutation_summary.py
A mutant counts as killed when a test failed on it or it timed out; "no tests", "survived"
and the rest count against the module. docs/testing.md explains the survivors.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout"}
# "    service.app.authentication.xǁAuthenticatorǁauthenticate__mutmut_3: survived"
LINE = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ]\S*__mutmut_\d+: (?P<status>.+)$")


def main() -> int:
    by_module: dict[str, Counter] = defaultdict(Counter)
    for line in sys.stdin:
        match = LINE.match(line)
        if match:
            by_module[match["module"]][match["status"].strip()] += 1
    if not by_module:
        print("no mutation results; run `make mutate` first", file=sys.stderr)
        return 1
    total = Counter()
    print(f"{'module':40} {'mutants':>8} {'killed':>8} {'rate':>7}")
    for module in sorted(by_module):
        counts = by_module[module]
        total += counts
        _print_row(module, counts)
    _print_row("all listed modules", total)
    return 0


def _print_row(name: str, counts: Counter) -> None:
    mutants = sum(counts.values())
    killed = sum(counts[status] for status in KILLED)
    print(f"{name:40} {mutants:8} {killed:8} {100 * killed / mutants:6.1f}%")


if __name__ == "__main__":
    sys.exit(main())

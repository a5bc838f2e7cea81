# -*- test-case-name: tests.integration.test_helpers -*-
"""
C{python -m ctdb.helpers DIR}: write Samba's test helper programs
(L{ctdb.helpers.PROGRAMS}) into DIR, each an executable that runs with this
Python.  Point Samba's test scripts at DIR (their C{bin/}, or
C{<libexecdir>/ctdb/tests} for installed tests).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ctdb.helpers import PROGRAMS, writePrograms


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write(
            "usage: python -m ctdb.helpers DIR\n"
            f"write Samba's test helper programs into DIR: {', '.join(PROGRAMS)}\n"
        )
        return 0 if args in (["-h"], ["--help"]) else 2
    writePrograms(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())

# -*- test-case-name: tests.integration.test_helpers -*-
"""
Samba's CTDB test helper programs (``ctdb/tests/src`` in Samba 4.17),
written again on txctdb's client API, with the command lines, output and
exit codes that Samba's INTEGRATION tests expect:

================================  ==========================================
program                           module
================================  ==========================================
``dummy_client``                  L{ctdb.helpers.dummy_client}
``message_ring``                  L{ctdb.helpers.message_ring}
``tunnel_test``                   L{ctdb.helpers.tunnel_test}
``fetch_ring``                    L{ctdb.helpers.fetch_ring}
``fetch_readonly``                L{ctdb.helpers.fetch_readonly}
``update_record``                 L{ctdb.helpers.update_record}
``transaction_loop``              L{ctdb.helpers.transaction_loop}
``update_record_persistent``      L{ctdb.helpers.update_record_persistent}
``ctdb-db-test``                  L{ctdb.helpers.db_test}
================================  ==========================================

They are plain clients of a ctdbd's unix socket (ours or Samba's), found
as Samba's own helpers find it (L{ctdb.helpers.common.socketPath}).

They are not installed on C{PATH}: their names are Samba's, too generic
for a user's C{bin}.  Samba's scripts look for them in one directory
(C{CTDB_SCRIPTS_TESTS_LIBEXEC_DIR}: the C{bin/} of a build tree, or
C{<libexecdir>/ctdb/tests} when the tests are installed), so
L{writePrograms} (C{python -m ctdb.helpers DIR}) writes each of them into
a directory of your choice as a small executable that runs its module's
C{main} with this Python.  Each module also runs as
C{python -m ctdb.helpers.<module>}.
"""

from __future__ import annotations

import os
import sys

#: Samba's program name -> the module whose C{main()} it runs.
MODULES = {
    "dummy_client": "ctdb.helpers.dummy_client",
    "message_ring": "ctdb.helpers.message_ring",
    "tunnel_test": "ctdb.helpers.tunnel_test",
    "fetch_ring": "ctdb.helpers.fetch_ring",
    "fetch_readonly": "ctdb.helpers.fetch_readonly",
    "update_record": "ctdb.helpers.update_record",
    "transaction_loop": "ctdb.helpers.transaction_loop",
    "update_record_persistent": "ctdb.helpers.update_record_persistent",
    "ctdb-db-test": "ctdb.helpers.db_test",
}

#: The program names, as Samba's build names the programs.
PROGRAMS = tuple(MODULES)


def programText(name: str, python: str) -> str:
    """
    The executable for program C{name}: the same few lines a console script
    has, so that the program's PID is that of the Python running it (Samba's
    basics.005 asks ctdbd about C{$!}).
    """
    if not python or any(ch.isspace() for ch in python):
        raise ValueError(f"cannot name {python!r} on a #! line")
    return (
        f"#!{python}\n"
        f"# Samba's {name}, written by ctdb.helpers.writePrograms\n"
        "import sys\n"
        "\n"
        f"from {MODULES[name]} import main\n"
        "\n"
        "sys.exit(main())\n"
    )


def writePrograms(directory: str, python: str | None = None) -> list[str]:
    """
    Write every program into C{directory} (made if missing) as an
    executable that runs with C{python} (default: this interpreter, which
    must be one that imports C{ctdb}); return their paths.  An existing
    file of the same name is replaced.
    """
    python = python or sys.executable
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name in PROGRAMS:
        path = os.path.join(directory, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(programText(name, python))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        paths.append(path)
    return paths

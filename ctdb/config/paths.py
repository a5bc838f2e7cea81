# -*- test-case-name: tests.test_config -*-
"""
ctdbd's directories and files, as Samba 4.17's C{ctdb/common/path.c}
finds them (C{CTDB_BASE}, C{CTDB_TEST_MODE}, C{CTDB_SOCKET}).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: Debian's compiled-in directories (``ctdb-path etcdir`` ... without test mode)
ETCDIR = "/etc/ctdb"
RUNDIR = "/run/ctdb"
VARDIR = "/var/lib/ctdb"
DATADIR = "/usr/share/ctdb"
LOGDIR = "/var/log/ctdb"
HELPER_BINDIR = "/usr/libexec/ctdb"


@dataclass(frozen=True, slots=True)
class CTDBPaths:
    """
    ctdbd's directories.  With C{CTDB_TEST_MODE} set, every one of them is
    under C{CTDB_BASE}: etcdir = base, rundir = base/run, vardir = base/var,
    datadir = base/share.  Otherwise they are the compiled-in ones, and
    C{CTDB_BASE} only says where ctdbd finds C{nodes}, C{events/} and
    C{notify.sh}.
    """

    base: str
    etcdir: str
    rundir: str
    vardir: str
    datadir: str
    testMode: bool
    socketOverride: str | None = None

    @classmethod
    def fromEnvironment(cls, environ: Mapping[str, str]) -> CTDBPaths:
        base = environ.get("CTDB_BASE") or ETCDIR
        testMode = "CTDB_TEST_MODE" in environ
        if testMode:
            return cls(
                base,
                base,
                os.path.join(base, "run"),
                os.path.join(base, "var"),
                os.path.join(base, "share"),
                True,
                environ.get("CTDB_SOCKET"),
            )
        return cls(
            base, ETCDIR, RUNDIR, VARDIR, DATADIR, False, environ.get("CTDB_SOCKET")
        )

    @property
    def configFile(self) -> str:
        return os.path.join(self.etcdir, "ctdb.conf")

    @property
    def tunablesFile(self) -> str:
        return os.path.join(self.etcdir, "ctdb.tunables")

    @property
    def nodesFile(self) -> str:
        return os.path.join(self.base, "nodes")

    @property
    def publicAddressesFile(self) -> str:
        return os.path.join(self.base, "public_addresses")

    def socket(self, daemon: str) -> str:
        """path_socket(): C{CTDB_SOCKET} overrides the ctdbd socket only."""
        if daemon == "ctdbd" and self.socketOverride is not None:
            return self.socketOverride
        return os.path.join(self.rundir, f"{daemon}.socket")

    def pidFile(self, daemon: str) -> str:
        return os.path.join(self.rundir, f"{daemon}.pid")

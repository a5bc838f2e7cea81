# -*- test-case-name: tests.test_config -*-
"""
Samba 4.17's ctdbd configuration, read as ctdbd reads it: the paths of
``ctdb/common/path.c``, ``ctdb.conf`` through the ini reader of
``lib/util/tini.c`` and the option tables of ``ctdb/common/conf.c`` with the
validators of ``cluster_conf.c``, ``database_conf.c``, ``event_conf.c``,
``logging_conf.c``, ``failover_conf.c`` and ``server/legacy_conf.c``, and
``ctdb.tunables`` as ``common/tunable.c`` reads it.

Nothing here logs or exits: every reader returns its messages as
L{Message} values (the level and the text ctdbd prints), and a refusal is a
L{ConfigLoadError} that carries them, so that ``ctdbd`` can print them
before its logging is set up, as ctdbd does.

The modules, by file: L{ctdb.config.paths}, L{ctdb.config.ini},
L{ctdb.config.ctdbconf} (C{ctdb.conf}), L{ctdb.config.tunables}
(C{ctdb.tunables}), L{ctdb.config.publicaddresses}, and
L{ctdb.config.messages}.  Import from C{ctdb.config}.
"""

from __future__ import annotations

from ctdb.config.ctdbconf import (
    INT_MAX,
    OPTIONS,
    SECTIONS,
    CTDBConfig,
    Validator,
    checkDatabaseDirectories,
    defaultConfig,
    loadConfig,
    parseConfig,
    parseLogLocation,
)
from ctdb.config.ini import parseIni
from ctdb.config.messages import DEBUG, ERR, NOTICE, WARNING, Message
from ctdb.config.paths import (
    DATADIR,
    ETCDIR,
    HELPER_BINDIR,
    LOGDIR,
    RUNDIR,
    VARDIR,
    CTDBPaths,
)
from ctdb.config.publicaddresses import (
    PublicAddress,
    addressesFromFile,
    loadPublicAddresses,
    parsePublicAddresses,
)
from ctdb.config.tunables import loadTunables, parseTunables

__all__ = [
    "DATADIR",
    "DEBUG",
    "ERR",
    "ETCDIR",
    "HELPER_BINDIR",
    "INT_MAX",
    "LOGDIR",
    "NOTICE",
    "OPTIONS",
    "RUNDIR",
    "SECTIONS",
    "VARDIR",
    "WARNING",
    "CTDBConfig",
    "CTDBPaths",
    "Message",
    "PublicAddress",
    "Validator",
    "addressesFromFile",
    "checkDatabaseDirectories",
    "defaultConfig",
    "loadConfig",
    "loadPublicAddresses",
    "loadTunables",
    "parseConfig",
    "parseIni",
    "parseLogLocation",
    "parsePublicAddresses",
    "parseTunables",
]

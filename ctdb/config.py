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
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ctdb.errors import ConfigLoadError, IniSyntaxError
from ctdb.protocols.debuglevels import (
    DEBUG_DEBUG,
    DEBUG_ERR,
    DEBUG_NOTICE,
    DEBUG_WARNING,
    debugLevelName,
    parseDebugLevel,
)
from ctdb.protocols.tunables import Tunables

#: Debian's compiled-in directories (``ctdb-path etcdir`` ... without test mode)
ETCDIR = "/etc/ctdb"
RUNDIR = "/run/ctdb"
VARDIR = "/var/lib/ctdb"
DATADIR = "/usr/share/ctdb"
LOGDIR = "/var/log/ctdb"
HELPER_BINDIR = "/usr/libexec/ctdb"

#: the levels of L{Message}s, by name
ERR = debugLevelName(DEBUG_ERR)
WARNING = debugLevelName(DEBUG_WARNING)
NOTICE = debugLevelName(DEBUG_NOTICE)
DEBUG = debugLevelName(DEBUG_DEBUG)


@dataclass(frozen=True, slots=True)
class Message:
    """One line ctdbd would log while reading its configuration."""

    level: str
    text: str

    @property
    def debugLevel(self) -> int:
        """C{level} as a number (L{ctdb.protocols.debuglevels})."""
        level = parseDebugLevel(self.level)
        return DEBUG_DEBUG if level is None else level


# -- paths (common/path.c) ----------------------------------------------------


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


# -- the ini reader (lib/util/tini.c) ----------------------------------------


def _lines(text: str) -> Iterator[str]:
    """get_line(): skip leading blanks, comments and blank lines, join
    continuations, squeeze runs of blanks into one."""
    raw = text.split("\n")
    i = 0
    while i < len(raw):
        line = raw[i].lstrip(" \t\r\f\v")
        i += 1
        if not line or line[0] in "#;":
            continue
        out: list[str] = []
        while True:
            for c in line:
                if c.isspace() and out and out[-1].isspace():
                    continue
                out.append(c)
            if out and out[-1] == "\\":
                out.pop()
            elif len(out) > 1 and out[-2] == "\\" and out[-1].isspace():
                del out[-2:]
            else:
                break
            if i >= len(raw):
                break
            line = raw[i]
            i += 1
        yield "".join(out)


def _trimOneSpace(text: str) -> str:
    if text[:1].isspace():
        text = text[1:]
    if text[-1:].isspace():
        text = text[:-1]
    return text


def parseIni(
    text: str, allowEmptyValue: bool = False
) -> Iterator[tuple[str, str | None]]:
    """
    The events of tini_parse(): C{(section, None)} for C{[section]} and
    C{(name, value)} for C{name = value}.  A line without C{=} is skipped,
    or (C{allowEmptyValue}) has the value C{""}.  Raises L{IniSyntaxError}
    where tini_parse() stops: a section without C{]}, an empty name.
    """
    for line in _lines(text):
        if line.startswith("["):
            end = line.find("]", 1)
            if end < 0:
                raise IniSyntaxError(f"section without ']': {line!r}")
            yield line[1:end], None
            continue
        name, sep, value = line.partition("=")
        if not sep:
            if not allowEmptyValue:
                continue
            value = ""
        name = _trimOneSpace(name)
        if not name:
            raise IniSyntaxError(f"option without a name: {line!r}")
        yield name, (_trimOneSpace(value) if sep else "")


# -- value conversion (common/conf.c) ----------------------------------------

INT_MAX = 2**31 - 1


def _strtol(text: str) -> int:
    """C strtol(text, &end, 0): the longest valid prefix, 0 if none."""
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2 and s[2] in "0123456789abcdefABCDEF":
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    n = 0
    for c in s:
        d = digits.find(c.lower())
        if d < 0:
            break
        n = n * base + d
    return sign * n


def _toInteger(text: str) -> int:
    # conf.c's string_to_integer() accepts any non-empty string and keeps
    # what strtol() made of it; only the range is checked.
    value = _strtol(text)
    if value < 0 or value > INT_MAX:
        raise ValueError(text)
    return value


def _toBoolean(text: str) -> bool:
    lower = text.lower()
    if lower in ("true", "yes"):
        return True
    if lower in ("false", "no"):
        return False
    raise ValueError(text)


# -- the option table --------------------------------------------------------

#: validate(key, value, paths) -> error messages (empty if fine)
Validator = Callable[[str, object, CTDBPaths], list[Message]]


@dataclass(frozen=True, slots=True)
class _Option:
    section: str
    key: str
    kind: type
    default: Callable[[CTDBPaths], object]
    validate: Validator | None = None


def _validateTransport(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if value != "tcp":
        return [Message(ERR, f"Invalid value for [cluster] -> transport = {value}")]
    return []


def _validateNodeAddress(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return [Message(ERR, f"Invalid value for [cluster] -> node address = {value}")]
    return []


def _validateRecoveryLock(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    return [Message(WARNING, f"Configuration option [cluster] -> {key} is deprecated")]


def _validateLeaderTimeout(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if int(value) <= 0:  # type: ignore[call-overload]
        return [
            Message(ERR, f"Invalid value for [cluster] -> leader timeout = {value}")
        ]
    return []


def _scriptValidator(what: str) -> Validator:
    """event_conf_validate_debug_script / database lock debug script: the
    script, taken by its base name, must be an executable file in etcdir."""

    def validate(key: str, value: object, paths: CTDBPaths) -> list[Message]:
        path = os.path.join(paths.etcdir, os.path.basename(str(value)))
        try:
            st = os.stat(path)
        except OSError:
            return [Message(ERR, f"{what} {path} does not exist")]
        if not stat.S_ISREG(st.st_mode):
            return [Message(ERR, f"{what} {path} is not a file")]
        if not st.st_mode & stat.S_IXUSR:
            return [Message(ERR, f"{what} {path} is not executable")]
        return []

    return validate


def _validateDbDir(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if not os.path.isdir(str(value)):
        return [Message(ERR, f'{key} "{value}" does not exist')]
    return []


def _validateLogLevel(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if parseDebugLevel(str(value)) is None:
        # debug_level_parse() says nothing; conf.c adds the generic line.
        return [Message(DEBUG, f"invalid log level {value}")]
    return []


def parseLogLocation(text: str) -> tuple[str, str | None] | None:
    """log_backend_parse(): C{(backend, option)}, or None if unknown."""
    parts = [p for p in text.split(":") if p]
    if not parts or parts[0] not in ("file", "syslog"):
        return None
    return parts[0], (parts[1] if len(parts) > 1 else None)


def _validateLocation(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    parsed = parseLogLocation(str(value))
    bad = [Message(DEBUG, f"invalid log location {value}")]
    if parsed is None:
        return bad
    backend, option = parsed
    if backend == "syslog":
        return [] if option in (None, "nonblocking", "udp", "udp-rfc5424") else bad
    if option is None or option == "-":
        return []
    return [] if os.path.isdir(os.path.dirname(option) or ".") else bad


def _validateScriptLogLevel(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if parseDebugLevel(str(value)) is None:
        return [Message(ERR, f"Invalid script log level '{value}'")]
    return []


OPTIONS: tuple[_Option, ...] = (
    _Option(
        "logging",
        "location",
        str,
        lambda p: f"file:{LOGDIR}/log.ctdb",
        _validateLocation,
    ),
    _Option("logging", "log level", str, lambda p: NOTICE, _validateLogLevel),
    _Option("cluster", "transport", str, lambda p: "tcp", _validateTransport),
    _Option("cluster", "node address", str, lambda p: None, _validateNodeAddress),
    _Option("cluster", "cluster lock", str, lambda p: None),
    _Option("cluster", "recovery lock", str, lambda p: None, _validateRecoveryLock),
    _Option("cluster", "leader timeout", int, lambda p: 5, _validateLeaderTimeout),
    _Option("cluster", "leader capability", bool, lambda p: True),
    # The database defaults are compiled in (CTDB_VARDIR), not test-mode paths.
    _Option(
        "database",
        "volatile database directory",
        str,
        lambda p: f"{VARDIR}/volatile",
        _validateDbDir,
    ),
    _Option(
        "database",
        "persistent database directory",
        str,
        lambda p: f"{VARDIR}/persistent",
        _validateDbDir,
    ),
    _Option(
        "database",
        "state database directory",
        str,
        lambda p: f"{VARDIR}/state",
        _validateDbDir,
    ),
    _Option(
        "database",
        "lock debug script",
        str,
        lambda p: None,
        _scriptValidator("lock debug script"),
    ),
    _Option("database", "tdb mutexes", bool, lambda p: True),
    _Option(
        "event", "debug script", str, lambda p: None, _scriptValidator("debug script")
    ),
    _Option("failover", "disabled", bool, lambda p: False),
    _Option("legacy", "realtime scheduling", bool, lambda p: True),
    _Option("legacy", "lmaster capability", bool, lambda p: True),
    _Option("legacy", "start as stopped", bool, lambda p: False),
    _Option("legacy", "start as disabled", bool, lambda p: False),
    _Option("legacy", "script log level", str, lambda p: ERR, _validateScriptLogLevel),
)

SECTIONS = tuple(dict.fromkeys(o.section for o in OPTIONS))


@dataclass
class CTDBConfig:
    """ctdbd's configuration: C{values[(section, key)]}, defaults filled in."""

    paths: CTDBPaths
    values: dict[tuple[str, str], object] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    publicAddresses: list[PublicAddress] = field(default_factory=list)

    def get(self, section: str, key: str) -> object:
        return self.values[(section, key)]

    @property
    def logLocation(self) -> str:
        return str(self.get("logging", "location"))

    @property
    def logFile(self) -> str | None:
        """The file C{[logging] location} names; None for syslog or stderr."""
        parsed = parseLogLocation(self.logLocation)
        if parsed is None or parsed[0] != "file" or parsed[1] in (None, "-"):
            return None
        return parsed[1]

    @property
    def logLevel(self) -> int:
        level = parseDebugLevel(str(self.get("logging", "log level")))
        return DEBUG_NOTICE if level is None else level

    @property
    def nodeAddress(self) -> str | None:
        return self.get("cluster", "node address")  # type: ignore[return-value]

    @property
    def clusterLock(self) -> str | None:
        """C{cluster lock}, else the deprecated C{recovery lock}."""
        lock = self.get("cluster", "cluster lock")
        if lock is None:
            lock = self.get("cluster", "recovery lock")
        return lock  # type: ignore[return-value]

    @property
    def dbDirVolatile(self) -> str:
        return str(self.get("database", "volatile database directory"))

    @property
    def dbDirPersistent(self) -> str:
        return str(self.get("database", "persistent database directory"))

    @property
    def dbDirState(self) -> str:
        return str(self.get("database", "state database directory"))

    @property
    def failoverDisabled(self) -> bool:
        return bool(self.get("failover", "disabled"))

    @property
    def eventDebugScript(self) -> str | None:
        return self.get("event", "debug script")  # type: ignore[return-value]


def defaultConfig(paths: CTDBPaths) -> CTDBConfig:
    return CTDBConfig(paths, {(o.section, o.key): o.default(paths) for o in OPTIONS})


def parseConfig(text: str, paths: CTDBPaths, ignoreUnknown: bool = True) -> CTDBConfig:
    """
    conf_load() of C{text} over the defaults, as ctdbd calls it (unknown
    sections and options ignored).  Raises L{ConfigLoadError} where ctdbd
    refuses the file; every error in the file is reported, not only the
    first.  An ini syntax error makes conf.c drop the whole file silently
    and carry on with the defaults; we do the same but say so.
    """
    config = defaultConfig(paths)
    options = {(o.section, o.key): o for o in OPTIONS}
    msgs = config.messages
    errors = False
    section: str | None = None
    values = dict(config.values)
    try:
        for name, raw in parseIni(text):
            if raw is None:
                if name in SECTIONS:
                    section = name
                else:
                    section = None
                    if not ignoreUnknown:
                        msgs.append(Message(ERR, f"conf: unknown section [{name}]"))
                        errors = True
                    else:
                        msgs.append(
                            Message(DEBUG, f"conf: ignoring unknown section [{name}]")
                        )
                continue
            if section is None:
                msgs.append(
                    Message(DEBUG, f'conf: unknown section for option "{name}"')
                )
                errors = errors or not ignoreUnknown
                continue
            opt = options.get((section, name))
            if opt is None:
                level = DEBUG if ignoreUnknown else ERR
                msgs.append(
                    Message(level, f'conf: unknown option [{section}] -> "{name}"')
                )
                errors = errors or not ignoreUnknown
                continue
            if raw == "":
                msgs.append(Message(ERR, f'conf: empty value [{section}] -> "{name}"'))
                errors = True
                continue
            try:
                value: object = (
                    _toInteger(raw)
                    if opt.kind is int
                    else _toBoolean(raw)
                    if opt.kind is bool
                    else raw
                )
            except ValueError:
                msgs.append(
                    Message(
                        ERR, f'conf: invalid value [{section}] -> "{name}" = "{raw}"'
                    )
                )
                errors = True
                continue
            if value == values[(section, name)]:
                continue
            problems = opt.validate(name, value, paths) if opt.validate else []
            msgs.extend(problems)
            if any(m.level in (ERR, DEBUG) for m in problems):
                msgs.append(
                    Message(ERR, f'conf: validation for option "{name}" failed')
                )
                errors = True
                continue
            values[(section, name)] = value
    except IniSyntaxError as e:
        msgs.append(Message(WARNING, f"conf: syntax error, file ignored: {e}"))
        return config
    if errors:
        raise ConfigLoadError(msgs)
    config.values = values
    return config


def loadConfig(paths: CTDBPaths) -> CTDBConfig:
    """ctdbd_config_load(): read C{<etcdir>/ctdb.conf} (it need not exist)."""
    path = paths.configFile
    notice = Message(NOTICE, f"Reading config file {path}")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        config = defaultConfig(paths)
        config.messages.append(notice)
        return config
    except OSError as e:
        raise ConfigLoadError(
            [
                notice,
                Message(ERR, f"Failed to load configuration file {path}: {e.strerror}"),
            ]
        ) from None
    try:
        config = parseConfig(text, paths)
    except ConfigLoadError as e:
        raise ConfigLoadError(
            [
                notice,
                *e.messages,
                Message(ERR, f"Failed to load configuration file {path}"),
            ]
        ) from None
    config.messages.insert(0, notice)
    return config


def checkDatabaseDirectories(config: CTDBConfig) -> None:
    """ctdbd's own check after loading (the defaults are not validated)."""
    for what, path in (
        ("Volatile", config.dbDirVolatile),
        ("Persistent", config.dbDirPersistent),
        ("State", config.dbDirState),
    ):
        if not os.path.isdir(path):
            raise ConfigLoadError(
                [Message(ERR, f"{what} database directory {path} does not exist")]
            )


# -- ctdb.tunables (common/tunable.c) ----------------------------------------


def parseTunables(text: str) -> tuple[dict[str, int], list[Message]]:
    """
    ctdb_tunable_load_file(): C{Name=value} lines.  Every bad line is
    reported; the good ones still apply (ctdbd ignores the failure).
    """
    known = Tunables()
    func = "ctdb_tunable_load_file"
    values: dict[str, int] = {}
    msgs: list[Message] = []
    try:
        for name, raw in parseIni(text, allowEmptyValue=True):
            if raw is None:
                msgs.append(
                    Message(
                        ERR,
                        f"{func}: Invalid line for section [{name}] - sections not supported ",
                    )
                )
                continue
            if raw == "":
                msgs.append(Message(ERR, f'{func}: Invalid line containing "{name}"'))
                continue
            try:
                number = int(raw, 0)
                if number < 0:
                    raise ValueError(raw)
            except ValueError:
                msgs.append(
                    Message(ERR, f'{func}: Invalid value "{raw}" for tunable "{name}"')
                )
                continue
            canonical = known.canonical(name)
            if canonical is None:
                msgs.append(Message(ERR, f'{func}: Unknown tunable "{name}"'))
                continue
            values[canonical] = number & 0xFFFFFFFF
    except IniSyntaxError:
        msgs.append(Message(ERR, f"{func}: Syntax error"))
    return values, msgs


def loadTunables(paths: CTDBPaths) -> tuple[dict[str, int], list[Message]]:
    path = paths.tunablesFile
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return {}, []
    except OSError:
        return {}, [Message(ERR, f"Failed to open {path}")]
    values, msgs = parseTunables(text)
    return values, [Message(NOTICE, f"Loading tunables from {path}"), *msgs]


@dataclass(frozen=True)
class PublicAddress:
    """One line of ``public_addresses``: ADDRESS/MASK IFACE[,IFACE...]."""

    address: str
    mask: int
    interfaces: tuple[str, ...]


def parsePublicAddresses(text: str) -> tuple[list[PublicAddress], list[Message]]:
    """
    ctdb_set_public_addresses (server/ctdb_takeover.c): blank lines and
    ``#`` comments are skipped; a line without an interface, or whose
    address/mask does not parse, makes the whole file (and ctdbd) fail.
    """
    out: list[PublicAddress] = []
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) < 2:
            return [], [
                Message(
                    ERR,
                    f"No interface specified at line {number} of public addresses file",
                )
            ]
        addrText, _, maskText = words[0].partition("/")
        try:
            addr = ipaddress.ip_address(addrText)
            mask = int(maskText)
            if not maskText or mask < 0 or mask > addr.max_prefixlen:
                raise ValueError(maskText)
        except ValueError:
            return [], [
                Message(ERR, f"Badly formed line {number} in public address list")
            ]
        ifaces = tuple(i for i in words[1].split(",") if i)
        if not ifaces:
            return [], [
                Message(
                    ERR,
                    f"No interface specified at line {number} of public addresses file",
                )
            ]
        out.append(PublicAddress(str(addr), mask, ifaces))
    return out, []


def loadPublicAddresses(paths: CTDBPaths) -> tuple[list[PublicAddress], list[Message]]:
    """The node's public addresses; a missing file is a warning, as ctdbd."""
    path = paths.publicAddressesFile
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        return [], [Message(WARNING, f"Not loading public addresses, no file {path}")]
    except OSError:
        return [], [Message(ERR, f"Failed to load public address list '{path}'")]
    addresses, msgs = parsePublicAddresses(text)
    if msgs:
        msgs.append(Message(ERR, "Unable to setup public IP addresses"))
    return addresses, msgs

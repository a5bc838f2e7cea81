# -*- test-case-name: tests.test_config -*-
"""
C{ctdb.conf}, read as Samba 4.17's ctdbd reads it: the option tables of
C{ctdb/common/conf.c} with the validators of C{cluster_conf.c},
C{database_conf.c}, C{event_conf.c}, C{logging_conf.c},
C{failover_conf.c} and C{server/legacy_conf.c}, over the ini reader of
L{ctdb.config.ini}.  A refusal is a L{ConfigLoadError} that carries the
L{Message}s ctdbd would print.  One section is txctdb's own: C{[metrics]
endpoint}, the Twisted endpoint string of the node's metrics (off unless
set).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.endpoints import serverFromString

from ctdb.config.ini import parseIni
from ctdb.config.messages import DEBUG, ERR, NOTICE, WARNING, Message
from ctdb.config.paths import LOGDIR, VARDIR, CTDBPaths
from ctdb.config.publicaddresses import PublicAddress
from ctdb.errors import ConfigLoadError, IniSyntaxError
from ctdb.protocols.debuglevels import DEBUG_NOTICE, parseDebugLevel

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
    # 4.17's validate_transport refuses "ib" ("It is broken!"); ours works
    # (ctdb.transports.ib), so both of ctdbd's transports are allowed.
    if value not in ("tcp", "ib"):
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


def _validateLogFormat(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    # txctdb's own option (ctdbd 4.17 has none): "text" or "json".
    if value not in ("text", "json"):
        return [Message(ERR, f"Invalid value for [logging] -> format = {value}")]
    return []


def parseHeartbeat(text: str) -> tuple[float, float] | None:
    """txctdb's heartbeat setting (docs/FAILURE_DETECTION.md):
    C{INTERVAL:TIMEOUT} in seconds, or C{off} (None).

    @raise ValueError: anything else, or not 0 < INTERVAL < TIMEOUT."""
    value = text.strip()
    if value.lower() == "off":
        return None
    interval, sep, timeout = value.partition(":")
    try:
        pair = (float(interval), float(timeout))
    except ValueError:
        pair = (0.0, 0.0)
    if not sep or not 0 < pair[0] < pair[1]:
        raise ValueError(
            f"heartbeat wants INTERVAL:TIMEOUT with 0 < INTERVAL < TIMEOUT,"
            f" or off, not {value!r}"
        )
    return pair


def _validateHeartbeat(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    try:
        parseHeartbeat(str(value))
    except ValueError as e:
        return [
            Message(ERR, f"Invalid value for [cluster] -> heartbeat = {value}: {e}")
        ]
    return []


def _validateScriptLogLevel(key: str, value: object, paths: CTDBPaths) -> list[Message]:
    if parseDebugLevel(str(value)) is None:
        return [Message(ERR, f"Invalid script log level '{value}'")]
    return []


def _validateMetricsEndpoint(
    key: str, value: object, paths: CTDBPaths
) -> list[Message]:
    """txctdb's own C{[metrics] endpoint}: a Twisted server endpoint string
    (nothing is listened on here)."""
    try:
        serverFromString(object(), str(value))
    except (ValueError, TypeError, KeyError) as e:
        return [
            Message(
                ERR,
                f"Invalid value for [metrics] -> endpoint = {value}"
                f" (a Twisted endpoint such as tcp:9100:interface=127.0.0.1): {e}",
            )
        ]
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
    # txctdb's extension: how the log file is written (docs/LOGGING.md)
    _Option("logging", "format", str, lambda p: "text", _validateLogFormat),
    _Option("cluster", "transport", str, lambda p: "tcp", _validateTransport),
    # txctdb's own: the fast heartbeat between txctdb nodes, on by default as
    # in twistd ctdb (its peers that are Samba's ctdbd keep 4.17's keepalive
    # rules; "off" gives them to every peer).  docs/FAILURE_DETECTION.md.
    _Option("cluster", "heartbeat", str, lambda p: "0.25:1.5", _validateHeartbeat),
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
    # txctdb's own: the node's Prometheus metrics endpoint (docs/METRICS.md)
    _Option("metrics", "endpoint", str, lambda p: None, _validateMetricsEndpoint),
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
    def heartbeat(self) -> tuple[float, float] | None:
        """C{[cluster] heartbeat}, txctdb's own: (interval, timeout) or None."""
        return parseHeartbeat(str(self.get("cluster", "heartbeat")))

    @property
    def logFormat(self) -> str:
        """C{[logging] format}, txctdb's own: C{text} or C{json}."""
        return str(self.get("logging", "format"))

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
    def metricsEndpoint(self) -> str | None:
        """C{[metrics] endpoint}: where the node serves its metrics."""
        return self.get("metrics", "endpoint")  # type: ignore[return-value]

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

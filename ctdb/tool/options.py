# -*- test-case-name: tests.tool.test_options -*-
"""
The command line of Samba 4.17's C{ctdb} tool, parsed as popt parses it
(C{ctdb/tools/ctdb.c} C{cmdline_options}, C{main}): the global options
anywhere on the line, clustered short options, C{-n1}, C{-n=1},
C{--node=1}, integers read as C{strtoll(s, &end, 0)}, C{--} ending the
options, and popt's messages for bad options.  Two options of our own are
added: C{--json} (print one JSON document) and C{--socket PATH} (the
daemon's socket, instead of C{$CTDB_SOCKET} and the path rules).

The usage texts are byte for byte those of Debian's 4.17.12 binary.

Pure: no I/O and no Twisted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: C{SAMBA_VERSION_STRING} of the tool we stand in for (C{ctdb version})
SAMBA_VERSION = "4.17.12-Debian"

#: C{INT_MIN}/C{INT_MAX}: popt's range of a POPT_ARG_INT
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1
_ULONG_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One entry of C{ctdb_commands}: what the usage lists about it."""

    name: str
    withoutDaemon: bool
    remote: bool
    msg: str
    args: str | None = None


#: C{ctdb_commands}, in the tool's order (the usage lists them so).
COMMAND_SPECS: tuple[CommandSpec, ...] = (
    CommandSpec("version", True, False, "show version of ctdb"),
    CommandSpec("status", False, True, "show node status"),
    CommandSpec("uptime", False, True, "show node uptime"),
    CommandSpec("ping", False, True, "ping a node"),
    CommandSpec(
        "runstate",
        False,
        True,
        "get/check runstate of a node",
        "[setup|first_recovery|startup|running]",
    ),
    CommandSpec("getvar", False, True, "get a tunable variable", "<name>"),
    CommandSpec("setvar", False, True, "set a tunable variable", "<name> <value>"),
    CommandSpec("listvars", False, True, "list tunable variables"),
    CommandSpec("statistics", False, True, "show ctdb statistics"),
    CommandSpec("statisticsreset", False, True, "reset ctdb statistics"),
    CommandSpec("stats", False, True, "show rolling statistics", "[count]"),
    CommandSpec("ip", False, True, "show public ips", "[all]"),
    CommandSpec("ipinfo", False, True, "show public ip details", "<ip>"),
    CommandSpec("ifaces", False, True, "show interfaces"),
    CommandSpec(
        "setifacelink", False, True, "set interface link status", "<iface> up|down"
    ),
    CommandSpec(
        "process-exists",
        False,
        True,
        "check if a process exists on a node",
        "<pid> [<srvid>]",
    ),
    CommandSpec("getdbmap", False, True, "show attached databases"),
    CommandSpec("getdbstatus", False, True, "show database status", "<dbname|dbid>"),
    CommandSpec(
        "catdb", False, False, "dump cluster-wide ctdb database", "<dbname|dbid>"
    ),
    CommandSpec("cattdb", False, False, "dump local ctdb database", "<dbname|dbid>"),
    CommandSpec("getcapabilities", False, True, "show node capabilities"),
    CommandSpec("pnn", False, False, "show the pnn of the currnet node"),
    CommandSpec("lvs", False, False, "show lvs configuration", "leader|list|status"),
    CommandSpec(
        "setdebug", False, True, "set debug level", "ERROR|WARNING|NOTICE|INFO|DEBUG"
    ),
    CommandSpec("getdebug", False, True, "get debug level"),
    CommandSpec(
        "attach",
        False,
        False,
        "attach a database",
        "<dbname> [persistent|replicated]",
    ),
    CommandSpec("detach", False, False, "detach database(s)", "<dbname|dbid> ..."),
    CommandSpec("dumpmemory", False, True, "dump ctdbd memory map"),
    CommandSpec("rddumpmemory", False, True, "dump recoverd memory map"),
    CommandSpec("getpid", False, True, "get ctdbd process ID"),
    CommandSpec("disable", False, True, "disable a node"),
    CommandSpec("enable", False, True, "enable a node"),
    CommandSpec("stop", False, True, "stop a node"),
    CommandSpec("continue", False, True, "continue a stopped node"),
    CommandSpec("ban", False, True, "ban a node", "<bantime>"),
    CommandSpec("unban", False, True, "unban a node"),
    CommandSpec("shutdown", False, True, "shutdown ctdb daemon"),
    CommandSpec("recover", False, True, "force recovery"),
    CommandSpec("sync", False, True, "run ip reallocation (deprecated)"),
    CommandSpec("ipreallocate", False, True, "run ip reallocation"),
    CommandSpec("gratarp", False, True, "send a gratuitous arp", "<ip> <interface>"),
    CommandSpec(
        "tickle", True, False, "send a tcp tickle ack", "<srcip:port> <dstip:port>"
    ),
    CommandSpec("gettickles", False, True, "get the list of tickles", "<ip> [<port>]"),
    CommandSpec("addtickle", False, True, "add a tickle", "<ip>:<port> <ip>:<port>"),
    CommandSpec("deltickle", False, True, "delete a tickle", "<ip>:<port> <ip>:<port>"),
    CommandSpec("listnodes", True, True, "list nodes in the cluster"),
    CommandSpec("reloadnodes", False, False, "reload the nodes file all nodes"),
    CommandSpec(
        "moveip", False, False, "move an ip address to another node", "<ip> <node>"
    ),
    CommandSpec(
        "addip", False, True, "add an ip address to a node", "<ip/mask> <iface>"
    ),
    CommandSpec("delip", False, True, "delete an ip address from a node", "<ip>"),
    CommandSpec(
        "backupdb",
        False,
        False,
        "backup a database into a file",
        "<dbname|dbid> <file>",
    ),
    CommandSpec(
        "restoredb", False, False, "restore a database from a file", "<file> [dbname]"
    ),
    CommandSpec(
        "dumpdbbackup", True, False, "dump database from a backup file", "<file>"
    ),
    CommandSpec(
        "wipedb", False, False, "wipe the contents of a database.", "<dbname|dbid>"
    ),
    CommandSpec("leader", False, True, "show the pnn of the leader"),
    CommandSpec("event", True, False, "event and event script commands"),
    CommandSpec(
        "scriptstatus",
        True,
        False,
        "show event script status",
        "[init|setup|startup|monitor|takeip|releaseip|ipreallocated]",
    ),
    CommandSpec(
        "natgw", False, False, "show natgw configuration", "leader|list|status"
    ),
    CommandSpec("getreclock", False, True, "get recovery lock file"),
    CommandSpec("setlmasterrole", False, True, "set LMASTER role", "on|off"),
    CommandSpec("setleaderrole", False, True, "set LEADER role", "on|off"),
    CommandSpec(
        "setdbreadonly", False, True, "enable readonly records", "<dbname|dbid>"
    ),
    CommandSpec("setdbsticky", False, True, "enable sticky records", "<dbname|dbid>"),
    CommandSpec(
        "pfetch",
        False,
        False,
        "fetch record from persistent database",
        "<dbname|dbid> <key>",
    ),
    CommandSpec(
        "pstore",
        False,
        False,
        "write record to persistent database",
        "<dbname|dbid> <key> <value>",
    ),
    CommandSpec(
        "pdelete",
        False,
        False,
        "delete record from persistent database",
        "<dbname|dbid> <key>",
    ),
    CommandSpec(
        "ptrans",
        False,
        False,
        "update a persistent database (from file or stdin)",
        "<dbname|dbid> [<file>]",
    ),
    CommandSpec("tfetch", False, True, "fetch a record", "<tdb-file> <key> [<file>]"),
    CommandSpec(
        "tstore",
        False,
        True,
        "store a record",
        "<tdb-file> <key> <data> [<rsn> <dmaster> <flags>]",
    ),
    CommandSpec(
        "readkey",
        False,
        False,
        "read value of a database key",
        "<dbname|dbid> <key> [readonly]",
    ),
    CommandSpec(
        "writekey",
        False,
        False,
        "write value for a database key",
        "<dbname|dbid> <key> <value>",
    ),
    CommandSpec(
        "deletekey", False, False, "delete a database key", "<dbname|dbid> <key>"
    ),
    CommandSpec(
        "checktcpport",
        True,
        False,
        "check if a service is bound to a specific tcp port or not",
        "<port>",
    ),
    CommandSpec(
        "getdbseqnum", False, False, "get database sequence number", "<dbname|dbid>"
    ),
    CommandSpec(
        "nodestatus",
        False,
        True,
        "show and return node status",
        "[all|<pnn-list>]",
    ),
    CommandSpec(
        "dbstatistics", False, True, "show database statistics", "<dbname|dbid>"
    ),
    CommandSpec(
        "reloadips",
        False,
        False,
        "reload the public addresses file",
        "[all|<pnn-list>]",
    ),
)

_SPECS = {spec.name: spec for spec in COMMAND_SPECS}


def commandSpec(name: str) -> CommandSpec | None:
    """C{match_command}: the command called exactly C{name}, if any."""
    return _SPECS.get(name)


# -- usage texts (poptPrintHelp / poptPrintUsage of the 4.17.12 binary) ------

OPTIONS_HELP = """\
Usage: [OPTION...]
  -d, --debug=STRING       debug level
  -t, --timelimit=INT      timelimit (in seconds)
  -n, --node=INT           node specification - integer
  -Y                       enable machine readable output
  -x, --separator=CHAR     specify separator for machine readable output
  -X                       enable machine parsable output with separator |
  -v, --verbose            enable verbose output
  -T, --maxruntime=INT     die if runtime exceeds this limit (in seconds)

Help options:
  -?, --help               Show this help message
      --usage              Display brief usage message
"""

BRIEF_USAGE = """\
Usage: [-?YXv] [-?|--help] [--usage] [-d|--debug=STRING]
        [-t|--timelimit=INT] [-n|--node=INT] [-Y] [-x|--separator=CHAR]
        [-X] [-v|--verbose] [-T|--maxruntime=INT]
"""


def commandLine(spec: CommandSpec) -> str:
    """One line of the usage's command list."""
    return f"  {spec.name:<15} {spec.args or '':<27}  {spec.msg}\n"


def fullUsage() -> str:
    """C{usage_full}: the options' help, then every command."""
    return (
        OPTIONS_HELP
        + "\nCommands:\n"
        + "".join(commandLine(spec) for spec in COMMAND_SPECS)
    )


def commandUsage(name: str | None) -> str:
    """C{usage(command)}: the brief usage and that command (or everything)."""
    spec = None if name is None else commandSpec(name)
    if spec is None:
        return fullUsage()
    return BRIEF_USAGE + "\nCommands:\n" + commandLine(spec)


# -- numbers as C reads them ----------------------------------------------------

_SPACE = " \t\n\v\f\r"


def strtoInteger(text: str, base: int = 0) -> tuple[int, int, bool]:
    """
    C{strtoll}/C{strtoul}'s parse of C{text}: leading white space, a sign,
    then digits of C{base} (0: C{0x} hex, C{0} octal, else decimal).

    @return: (value, characters used, negative sign seen); no digits at
        all uses 0 characters.
    """
    i = 0
    n = len(text)
    while i < n and text[i] in _SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    # "0x" without a hex digit after it is the number 0 followed by "x"
    if (
        base in (0, 16)
        and text[i : i + 2].lower() == "0x"
        and (i + 2 < n and text[i + 2] in "0123456789abcdefABCDEF")
    ):
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i : i + 1] == "0" else 10
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    start = i
    while i < n and text[i].lower() in digits:
        i += 1
    if i == start:
        return 0, 0, False
    value = int(text[start:i], base)
    return (-value if negative else value), i, negative


def poptInteger(text: str) -> int | str:
    """
    POPT_ARG_INT's conversion: the whole C{text} must be a number (an
    empty one is 0) within C{int}'s range.

    @return: the number, or popt's error text.
    """
    value, used, _ = strtoInteger(text)
    if used != len(text):
        return "invalid numeric value"
    if not _INT_MIN <= value <= _INT_MAX:
        return "number too large or too small"
    return value


def smbStrtoul(text: str, base: int = 0) -> tuple[int, int]:
    """
    C{smb_strtoul(text, NULL, base, &err, SMB_STR_STANDARD)}: trailing
    text is allowed; no digits, or a minus sign, is EINVAL (22); above
    C{ULONG_MAX} is ERANGE (34).

    @return: (value, err); the value is what C{strtoul} gave.
    """
    value, used, negative = strtoInteger(text, base)
    if used == 0:
        return 0, 22
    if abs(value) > _ULONG_MAX:
        return _ULONG_MAX, 34
    if negative:
        return value & _ULONG_MAX, 22
    return value, 0


# -- the options -------------------------------------------------------------------


@dataclass
class ToolOptions:
    """The global options, as C{main} leaves them."""

    debuglevel: str | None = None
    timelimit: int = 10
    pnn: int = -1
    machinereadable: bool = False
    sep: str = "|"
    machineparsable: bool = False
    verbose: bool = False
    maxruntime: int = 0
    #: ours: print one JSON document instead of the tool's text
    json: bool = False
    #: ours: the daemon's socket (else $CTDB_SOCKET and path_socket's rules)
    socket: str | None = None
    #: the command and its arguments (popt's left-over arguments)
    args: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Exit:
    """
    The command line ends the program before any command runs: print
    C{stdout} and C{stderr} and exit with C{status}.
    """

    status: int
    stdout: str = ""
    stderr: str = ""


# (long name, short name, takes an argument, attribute)
_OPTIONS: tuple[tuple[str | None, str | None, str | None, str], ...] = (
    ("help", "?", None, "help"),
    ("usage", None, None, "usage"),
    ("debug", "d", "string", "debuglevel"),
    ("timelimit", "t", "int", "timelimit"),
    ("node", "n", "int", "pnn"),
    (None, "Y", None, "machinereadable"),
    ("separator", "x", "string", "sep"),
    (None, "X", None, "machineparsable"),
    ("verbose", "v", None, "verbose"),
    ("maxruntime", "T", "int", "maxruntime"),
    ("json", None, None, "json"),
    ("socket", None, "string", "socket"),
)
_LONG = {o[0]: o for o in _OPTIONS if o[0] is not None}
_SHORT = {o[1]: o for o in _OPTIONS if o[1] is not None}


def _bad(option: str, problem: str) -> Exit:
    return Exit(1, stderr=f"Invalid option {option}: {problem}\n")


_Spec = tuple[str | None, str | None, str | None, str]


def _store(
    options: ToolOptions, spec: _Spec, value: str | None, shown: str
) -> Exit | None:
    """Set one option; C{shown} is the argv element popt names on error."""
    kind, attribute = spec[2], spec[3]
    if attribute == "help":
        return Exit(0, stdout=OPTIONS_HELP)
    if attribute == "usage":
        return Exit(0, stdout=BRIEF_USAGE)
    if kind is None:
        setattr(options, attribute, True)
        return None
    assert value is not None
    if kind == "int":
        number = poptInteger(value)
        if isinstance(number, str):
            return _bad(shown, number)
        setattr(options, attribute, number)
    else:
        setattr(options, attribute, value)
    return None


def _parseLong(
    options: ToolOptions, arg: str, argv: Sequence[str], i: int
) -> tuple[int, Exit | None]:
    name, eq, inline = arg[2:].partition("=")
    spec = _LONG.get(name)
    if spec is None:
        return i, _bad(arg, "unknown option")
    if spec[2] is None:
        if eq:
            return i, _bad(arg, "option does not take an argument")
        return i, _store(options, spec, None, arg)
    if eq:
        return i, _store(options, spec, inline, arg)
    if i >= len(argv):
        return i, _bad(arg, "missing argument")
    return i + 1, _store(options, spec, argv[i], argv[i])


def _parseShort(
    options: ToolOptions, arg: str, argv: Sequence[str], i: int
) -> tuple[int, Exit | None]:
    j = 1
    while j < len(arg):
        spec = _SHORT.get(arg[j])
        j += 1
        if spec is None:
            return i, _bad(arg, "unknown option")
        if spec[2] is None:
            done = _store(options, spec, None, arg)
            if done is not None:
                return i, done
            continue
        if j < len(arg):
            rest = arg[j:]
            return i, _store(options, spec, rest[1:] if rest[0] == "=" else rest, arg)
        if i >= len(argv):
            return i, _bad(arg, "missing argument")
        return i + 1, _store(options, spec, argv[i], argv[i])
    return i, None


def parseArguments(argv: Sequence[str]) -> ToolOptions | Exit:
    """
    Parse the command line (without the program name) as popt does: the
    options, and the command with its arguments (left over, in order).

    @return: the options, or how the program ends: C{--help}/C{--usage}
        (status 0) or a bad option (status 1, popt's message).
    """
    options = ToolOptions()
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if arg.startswith("--"):
            i, done = _parseLong(options, arg, argv, i)
        elif arg.startswith("-") and len(arg) > 1:
            i, done = _parseShort(options, arg, argv, i)
        else:
            args.append(arg)
            continue
        if done is not None:
            return done
    options.args = args
    return options


def finishOptions(options: ToolOptions, environ: Mapping[str, str]) -> Exit | None:
    """
    What C{main} does after parsing: the run-time limit from
    C{$CTDB_TIMEOUT} (default 120 s), C{-X} implies C{-Y}, a command is
    required and must exist.

    @return: how the program ends (no command, an unknown one, a bad
        C{CTDB_TIMEOUT}), or C{None} to go on.
    """
    if options.maxruntime == 0:
        text = environ.get("CTDB_TIMEOUT")
        if text is not None:
            value, err = smbStrtoul(text)
            if err:
                return Exit(1, stderr="Invalid value CTDB_TIMEOUT\n")
            options.maxruntime = value & 0xFFFFFFFF
        else:
            options.maxruntime = 120
    if options.machineparsable:
        options.machinereadable = True
    if not options.args:
        return Exit(1, stdout=fullUsage())
    if commandSpec(options.args[0]) is None:
        return Exit(1, stderr=f"Unknown command '{options.args[0]}'\n")
    return None

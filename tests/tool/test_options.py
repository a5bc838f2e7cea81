# -*- test-case-name: tests.tool.test_options -*-
"""
Tests for L{ctdb.tool.options}: the command line read as Samba 4.17's
popt-based C{ctdb} reads it.  Every expected message and value here is
what Debian's 4.17.12 C{/usr/bin/ctdb} printed for the same arguments.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ctdb.tool.options import (
    BRIEF_USAGE,
    COMMAND_SPECS,
    OPTIONS_HELP,
    Exit,
    ToolOptions,
    commandUsage,
    finishOptions,
    fullUsage,
    parseArguments,
    poptInteger,
    smbStrtoul,
    strtoInteger,
)


def parsed(*argv: str) -> ToolOptions:
    result = parseArguments(list(argv))
    assert isinstance(result, ToolOptions), result
    return result


def failed(*argv: str) -> Exit:
    result = parseArguments(list(argv))
    assert isinstance(result, Exit), result
    return result


class NumberTests(SynchronousTestCase):
    """C's number parsing: strtoll/strtoul, popt's POPT_ARG_INT, smb_strtoul."""

    def test_bases(self) -> None:
        """Base 0: 0x is hex, a leading 0 octal, else decimal; blanks and
        a sign may lead."""
        self.assertEqual(strtoInteger("0x1f"), (31, 4, False))
        self.assertEqual(strtoInteger("017"), (15, 3, False))
        self.assertEqual(strtoInteger(" -12"), (-12, 4, True))
        self.assertEqual(strtoInteger("+7"), (7, 2, False))

    def test_partial(self) -> None:
        """Parsing stops at the first character that is no digit; "0x"
        without a hex digit is the 0; nothing at all uses nothing."""
        self.assertEqual(strtoInteger("08"), (0, 1, False))
        self.assertEqual(strtoInteger("0x"), (0, 1, False))
        self.assertEqual(strtoInteger("12ab", 10), (12, 2, False))
        self.assertEqual(strtoInteger("abc"), (0, 0, False))
        self.assertEqual(strtoInteger(" "), (0, 0, False))

    def test_poptInteger(self) -> None:
        """The whole text must be a number in int's range; "" is 0."""
        self.assertEqual(poptInteger("0x1"), 1)
        self.assertEqual(poptInteger(""), 0)
        self.assertEqual(poptInteger("-2147483648"), -(2**31))
        self.assertEqual(poptInteger("1a"), "invalid numeric value")
        self.assertEqual(poptInteger("08"), "invalid numeric value")
        self.assertEqual(poptInteger("1.0"), "invalid numeric value")
        self.assertEqual(poptInteger("2147483648"), "number too large or too small")
        self.assertEqual(
            poptInteger("99999999999999999999999"), "number too large or too small"
        )

    def test_smbStrtoul(self) -> None:
        """Trailing text is allowed; no digits or a minus is EINVAL."""
        self.assertEqual(smbStrtoul("30"), (30, 0))
        self.assertEqual(smbStrtoul("30s"), (30, 0))
        self.assertEqual(smbStrtoul("0x10"), (16, 0))
        self.assertEqual(smbStrtoul("abc"), (0, 22))
        self.assertEqual(smbStrtoul("-1")[1], 22)
        self.assertEqual(smbStrtoul("9" * 30)[1], 34)


class ParseTests(SynchronousTestCase):
    """L{parseArguments} against what popt does."""

    def test_defaults(self) -> None:
        """Without options: -t 10, no node (-1), separator |."""
        options = parsed("status")
        self.assertEqual(
            (options.timelimit, options.pnn, options.sep, options.args),
            (10, -1, "|", ["status"]),
        )
        self.assertFalse(options.machinereadable or options.json)

    def test_optionsAnywhere(self) -> None:
        """Options after the command are options too, in any spelling."""
        options = parsed("ping", "-n", "1", "--timelimit=3", "-X")
        self.assertEqual(
            (options.pnn, options.timelimit, options.machineparsable, options.args),
            (1, 3, True, ["ping"]),
        )
        self.assertEqual(parsed("-n=2", "ping").pnn, 2)
        self.assertEqual(parsed("-n2", "ping").pnn, 2)
        self.assertEqual(parsed("--node", "2", "ping").pnn, 2)
        self.assertEqual(parsed("--node=", "ping").pnn, 0)

    def test_clusters(self) -> None:
        """Short flags cluster; an option with an argument takes the rest
        of the cluster, or the next argument whatever it is."""
        options = parsed("-Xvn1", "ping")
        self.assertEqual(
            (options.machineparsable, options.verbose, options.pnn), (True, True, 1)
        )
        self.assertEqual(parsed("-d", "-X", "pnn").debuglevel, "-X")
        self.assertEqual(parsed("-x:", "-X", "listnodes").sep, ":")

    def test_doubleDash(self) -> None:
        """After "--" everything is an argument."""
        self.assertEqual(parsed("pnn", "--", "-n", "1").args, ["pnn", "-n", "1"])
        self.assertEqual(parsed("pnn", "-").args, ["pnn", "-"])

    def test_ours(self) -> None:
        """--json and --socket are ours."""
        options = parsed("--json", "--socket", "/s", "status")
        self.assertEqual((options.json, options.socket), (True, "/s"))

    def test_badOptions(self) -> None:
        """popt's messages name the argument it last consumed."""
        cases = {
            ("-n", "1a", "pnn"): "Invalid option 1a: invalid numeric value\n",
            ("-n1a", "pnn"): "Invalid option -n1a: invalid numeric value\n",
            ("-node", "1"): "Invalid option -node: invalid numeric value\n",
            ("-n", "-X", "pnn"): "Invalid option -X: invalid numeric value\n",
            (
                "--timelimit=2x",
            ): "Invalid option --timelimit=2x: invalid numeric value\n",
            ("-n", "99999999999"): (
                "Invalid option 99999999999: number too large or too small\n"
            ),
            ("-Xq", "pnn"): "Invalid option -Xq: unknown option\n",
            ("--nod=1", "ping"): "Invalid option --nod=1: unknown option\n",
            ("-help",): "Invalid option -help: unknown option\n",
            ("--verbose=1",): (
                "Invalid option --verbose=1: option does not take an argument\n"
            ),
            ("pnn", "-n"): "Invalid option -n: missing argument\n",
            ("--separator",): "Invalid option --separator: missing argument\n",
        }
        for argv, message in cases.items():
            self.assertEqual(failed(*argv), Exit(1, stderr=message), argv)

    def test_help(self) -> None:
        """-?/--help and --usage print and exit 0 where they appear."""
        self.assertEqual(failed("pnn", "-?"), Exit(0, stdout=OPTIONS_HELP))
        self.assertEqual(failed("--help", "--bogus"), Exit(0, stdout=OPTIONS_HELP))
        self.assertEqual(failed("--usage"), Exit(0, stdout=BRIEF_USAGE))
        self.assertEqual(failed("--bogus", "--help").status, 1)


class FinishTests(SynchronousTestCase):
    """L{finishOptions}: what main() checks after parsing."""

    def test_maxruntime(self) -> None:
        """-T wins; else $CTDB_TIMEOUT; else 120 s; a bad $CTDB_TIMEOUT exits."""
        options = parsed("pnn")
        self.assertIsNone(finishOptions(options, {}))
        self.assertEqual(options.maxruntime, 120)
        options = parsed("pnn")
        self.assertIsNone(finishOptions(options, {"CTDB_TIMEOUT": "7"}))
        self.assertEqual(options.maxruntime, 7)
        options = parsed("-T", "3", "pnn")
        self.assertIsNone(finishOptions(options, {"CTDB_TIMEOUT": "7"}))
        self.assertEqual(options.maxruntime, 3)
        self.assertEqual(
            finishOptions(parsed("pnn"), {"CTDB_TIMEOUT": "abc"}),
            Exit(1, stderr="Invalid value CTDB_TIMEOUT\n"),
        )

    def test_machineParsable(self) -> None:
        """-X is -Y (with the separator, "|" unless -x says otherwise)."""
        options = parsed("-X", "status")
        finishOptions(options, {})
        self.assertTrue(options.machinereadable)

    def test_commands(self) -> None:
        """No command: the full usage, exit 1; an unknown one is named."""
        self.assertEqual(finishOptions(parsed(), {}), Exit(1, stdout=fullUsage()))
        self.assertEqual(
            finishOptions(parsed("recmaster"), {}),
            Exit(1, stderr="Unknown command 'recmaster'\n"),
        )


class UsageTests(SynchronousTestCase):
    """The usage texts, as 4.17.12 prints them."""

    def test_commandUsage(self) -> None:
        """A command's usage: popt's brief usage and the command's line."""
        self.assertEqual(
            commandUsage("getvar"),
            "Usage: [-?YXv] [-?|--help] [--usage] [-d|--debug=STRING]\n"
            "        [-t|--timelimit=INT] [-n|--node=INT] [-Y] [-x|--separator=CHAR]\n"
            "        [-X] [-v|--verbose] [-T|--maxruntime=INT]\n"
            "\n"
            "Commands:\n"
            "  getvar          <name>                       get a tunable variable\n",
        )

    def test_unknownCommandUsage(self) -> None:
        """usage() of a name that is no command prints everything."""
        self.assertEqual(commandUsage("chktcpport"), fullUsage())

    def test_fullUsage(self) -> None:
        """The command list: every command in the tool's order; long
        arguments push the description out."""
        lines = fullUsage().splitlines()
        start = lines.index("Commands:") + 1
        self.assertEqual(len(lines) - start, len(COMMAND_SPECS))
        self.assertEqual(
            lines[start],
            "  version                                      show version of ctdb",
        )
        self.assertIn(
            "  runstate        [setup|first_recovery|startup|running]  "
            "get/check runstate of a node",
            lines,
        )
        self.assertEqual(lines[0], "Usage: [OPTION...]")

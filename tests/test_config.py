# -*- test-case-name: tests.test_config -*-
"""
Tests for L{ctdb.config}: Samba 4.17's paths, ctdb.conf and ctdb.tunables
rules.  The expected messages are the ones Debian's ctdbd 4.17.12 prints for
the same files.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from ctdb.config import (
    CTDBPaths,
    checkDatabaseDirectories,
    loadConfig,
    loadPublicAddresses,
    parseConfig,
    parseIni,
    parsePublicAddresses,
    parseTunables,
)
from ctdb.config.messages import ERR, Message, printable
from ctdb.daemon.heartbeat import DEFAULT_INTERVAL, DEFAULT_TIMEOUT
from ctdb.errors import ConfigLoadError, IniSyntaxError


def _tempDirectory(case: SynchronousTestCase) -> Path:
    """A fresh directory removed after the test (outside the checkout:
    trial's mktemp would litter it under pytest)."""
    directory = tempfile.mkdtemp(prefix="txctdb-test-")
    case.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)


def _base(case: SynchronousTestCase) -> Path:
    """A CTDB_BASE with the three database directories under db/."""
    base = _tempDirectory(case)
    for sub in ("volatile", "persistent", "state"):
        (base / "db" / sub).mkdir(parents=True)
    return base


class PathsTests(SynchronousTestCase):
    """L{CTDBPaths}: where ctdbd looks for its files."""

    def test_paths(self) -> None:
        """Test mode puts every directory under CTDB_BASE; CTDB_SOCKET moves
        only ctdbd's socket; without test mode the compiled-in paths apply."""
        b = str(_tempDirectory(self))
        p = CTDBPaths.fromEnvironment({"CTDB_BASE": b, "CTDB_TEST_MODE": "yes"})
        self.assertEqual(
            (p.etcdir, p.rundir, p.vardir, p.datadir),
            (b, f"{b}/run", f"{b}/var", f"{b}/share"),
        )
        self.assertEqual(p.configFile, f"{b}/ctdb.conf")
        self.assertEqual(p.socket("ctdbd"), f"{b}/run/ctdbd.socket")
        self.assertEqual(p.socket("eventd"), f"{b}/run/eventd.socket")
        self.assertEqual(p.pidFile("ctdbd"), f"{b}/run/ctdbd.pid")
        q = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": b, "CTDB_TEST_MODE": "", "CTDB_SOCKET": "/x/s"}
        )
        self.assertEqual(q.socket("ctdbd"), "/x/s")
        self.assertEqual(q.socket("eventd"), f"{b}/run/eventd.socket")
        r = CTDBPaths.fromEnvironment({"CTDB_BASE": b})
        self.assertEqual(
            (r.etcdir, r.rundir, r.vardir), ("/etc/ctdb", "/run/ctdb", "/var/lib/ctdb")
        )
        self.assertEqual(r.nodesFile, f"{b}/nodes")


class IniTests(SynchronousTestCase):
    """L{parseIni}: Samba's tini reader."""

    def test_iniReader(self) -> None:
        """tini rules: comments, blanks squeezed, one blank trimmed around
        names and values, continuations, lines without '=' skipped."""
        text = (
            "# comment\n ; another\n[cluster]\n\tnode  address =  127.0.0.1\n"
            "no equals here\n  key = a \\\n b\n"
        )
        self.assertEqual(
            list(parseIni(text)),
            [("cluster", None), ("node address", "127.0.0.1"), ("key", "a b")],
        )
        self.assertRaises(IniSyntaxError, list, parseIni("[cluster\n"))
        self.assertRaises(IniSyntaxError, list, parseIni("= value\n"))


class ConfigTests(SynchronousTestCase):
    """L{parseConfig}, L{loadConfig} and L{checkDatabaseDirectories}: ctdb.conf
    as conf.c and ctdb_config.c read and check it."""

    def test_goodConfig(self) -> None:
        """The file local_daemons.sh writes is accepted, with its values."""
        base = _base(self)
        text = f"""
[logging]
	location = file:{base}/log.ctdb
	log level = INFO
[cluster]
	cluster lock = !/bin/helper {base}/lock 5
	node address = 127.0.0.3
[database]
	volatile database directory = {base}/db/volatile
	persistent database directory = {base}/db/persistent
	state database directory = {base}/db/state
[failover]
	disabled = true
[event]
	debug script = debug-hung-script.sh
"""
        script = base / "debug-hung-script.sh"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        config = parseConfig(text, paths)
        self.assertEqual(config.logFile, f"{base}/log.ctdb")
        self.assertEqual(config.logLevel, 5)
        self.assertEqual(config.clusterLock, f"!/bin/helper {base}/lock 5")
        self.assertEqual(config.nodeAddress, "127.0.0.3")
        self.assertEqual(config.dbDirState, f"{base}/db/state")
        self.assertIs(config.failoverDisabled, True)
        self.assertEqual(config.eventDebugScript, "debug-hung-script.sh")
        checkDatabaseDirectories(config)

    def test_heartbeat(self) -> None:
        """C{[cluster] heartbeat}, txctdb's own: on by default with
        twistd ctdb's 0.25:1.5, INTERVAL:TIMEOUT when set, off (4.17's
        keepalive rules alone) when asked, and a bad value refused with the
        reason."""
        base = _base(self)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        self.assertEqual(
            parseConfig("", paths).heartbeat, (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
        )
        config = parseConfig("[cluster]\n\theartbeat = 0.5:3\n", paths)
        self.assertEqual(config.heartbeat, (0.5, 3.0))
        config = parseConfig("[cluster]\n\theartbeat = off\n", paths)
        self.assertIsNone(config.heartbeat)
        for bad in ("1.5", "2:1", "x:y"):
            with self.assertRaises(ConfigLoadError) as caught:
                parseConfig(f"[cluster]\n\theartbeat = {bad}\n", paths)
            self.assertIn("[cluster] -> heartbeat", str(caught.exception.messages))

    def test_badValuesRefused(self) -> None:
        """Every bad value is reported with ctdbd's wording, then the load
        fails; unknown sections and keys are ignored, as ctdbd ignores them."""
        base = _base(self)
        text = f"""
[logging]
	log level = BOGUS
[cluster]
	node address = 127.0.0.300
	leader timeout = abc
[whatever]
	foo = bar
[database]
	volatile database directory = {base}/db/nope
	unknown key = 1
[failover]
	disabled = maybe
"""
        (base / "ctdb.conf").write_text(text)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        error = self.assertRaises(ConfigLoadError, loadConfig, paths)
        errors = [m.text for m in error.messages if m.level == "ERROR"]
        self.assertEqual(
            errors,
            [
                'conf: validation for option "log level" failed',
                "Invalid value for [cluster] -> node address = 127.0.0.300",
                'conf: validation for option "node address" failed',
                "Invalid value for [cluster] -> leader timeout = 0",
                'conf: validation for option "leader timeout" failed',
                f'volatile database directory "{base}/db/nope" does not exist',
                'conf: validation for option "volatile database directory" failed',
                'conf: invalid value [failover] -> "disabled" = "maybe"',
                f"Failed to load configuration file {base}/ctdb.conf",
            ],
        )

    def test_warningsAndEmptyValues(self) -> None:
        """The deprecated recovery lock warns and still applies; an empty
        value is an error."""
        base = _base(self)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        config = parseConfig("[cluster]\nrecovery lock = /l\n", paths)
        self.assertEqual(config.clusterLock, "/l")
        self.assertEqual(
            [m.text for m in config.messages if m.level == "WARNING"],
            ["Configuration option [cluster] -> recovery lock is deprecated"],
        )
        error = self.assertRaises(
            ConfigLoadError, parseConfig, "[cluster]\ncluster lock =\n", paths
        )
        self.assertEqual(
            error.messages[0].text, 'conf: empty value [cluster] -> "cluster lock"'
        )

    def test_debugScriptChecks(self) -> None:
        """[event] debug script must be an executable file in etcdir."""
        base = _base(self)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        error = self.assertRaises(
            ConfigLoadError,
            parseConfig,
            "[event]\ndebug script = /somewhere/d.sh\n",
            paths,
        )
        self.assertEqual(
            error.messages[0].text, f"debug script {base}/d.sh does not exist"
        )
        (base / "d.sh").write_text("")
        os.chmod(base / "d.sh", stat.S_IRUSR | stat.S_IWUSR)
        error = self.assertRaises(
            ConfigLoadError, parseConfig, "[event]\ndebug script = d.sh\n", paths
        )
        self.assertEqual(
            error.messages[0].text, f"debug script {base}/d.sh is not executable"
        )

    def test_syntaxErrorIgnoresFile(self) -> None:
        """conf.c drops a file tini cannot parse and keeps the defaults
        (ctdbd then starts with them); we say so."""
        base = _base(self)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"}
        )
        config = parseConfig("[cluster]\nnode address = 127.0.0.2\n[database\n", paths)
        self.assertIsNone(config.nodeAddress)
        self.assertEqual(config.messages[-1].level, "WARNING")

    def test_missingDefaultDirectories(self) -> None:
        """ctdbd's own check of the database directories, defaults included."""
        tmp = _tempDirectory(self)
        paths = CTDBPaths.fromEnvironment(
            {"CTDB_BASE": str(tmp), "CTDB_TEST_MODE": "yes"}
        )
        (tmp / "ctdb.conf").write_text(
            f"[database]\nvolatile database directory = {tmp}\n"
            f"persistent database directory = {tmp}\n"
        )
        config = loadConfig(paths)
        config.values[("database", "state database directory")] = f"{tmp}/none"
        error = self.assertRaises(ConfigLoadError, checkDatabaseDirectories, config)
        self.assertEqual(
            str(error), f"State database directory {tmp}/none does not exist"
        )


class TunablesTests(SynchronousTestCase):
    """L{parseTunables}: the ctdb.tunables file."""

    def test_tunables(self) -> None:
        """ctdb.tunables: good lines apply, each bad line is reported."""
        values, msgs = parseTunables(
            "RecoverInterval=2\n# c\nNoSuchTunable=1\nMonitorInterval=x\nEmpty\n[s]\n"
        )
        self.assertEqual(values, {"RecoverInterval": 2})
        self.assertEqual(
            [m.text for m in msgs],
            [
                'ctdb_tunable_load_file: Unknown tunable "NoSuchTunable"',
                'ctdb_tunable_load_file: Invalid value "x" for tunable "MonitorInterval"',
                'ctdb_tunable_load_file: Invalid line containing "Empty"',
                "ctdb_tunable_load_file: Invalid line for section [s] - sections not supported ",
            ],
        )


class PublicAddressesTests(SynchronousTestCase):
    """L{parsePublicAddresses}: the public_addresses file."""

    def test_publicAddressesParsed(self) -> None:
        """public_addresses lines as ctdb_set_public_addresses reads them."""
        addresses, msgs = parsePublicAddresses(
            "# comment\n\n192.168.100.1/24 lo\n  fd00::1/64 eth0,eth1\n"
        )
        self.assertEqual(msgs, [])
        self.assertEqual(
            [(a.address, a.mask, a.interfaces) for a in addresses],
            [("192.168.100.1", 24, ("lo",)), ("fd00::1", 64, ("eth0", "eth1"))],
        )

    def test_publicAddressesErrors(self) -> None:
        """A line without an interface or with a bad address refuses the file,
        with ctdbd's messages."""
        _, msgs = parsePublicAddresses("192.168.100.1/24\n")
        self.assertEqual(
            [m.text for m in msgs],
            ["No interface specified at line 1 of public addresses file"],
        )
        _, msgs = parsePublicAddresses("10.0.0.1 lo\n192.168.1.300/24 lo\n")
        self.assertEqual(
            [m.text for m in msgs], ["Badly formed line 1 in public address list"]
        )

    def test_publicAddressesAsCtdbd(self) -> None:
        """Words split at spaces and tabs only (a CR stays in the interface
        name), bracketed IPv6, IPv4-mapped IPv6 as IPv4, masks unchecked
        against the family, empty interface names dropped, extra words
        ignored."""
        addresses, msgs = parsePublicAddresses(
            "10.0.0.1/24\teth0\r\n[fd00::1]/64 e1,,e2 extra\n"
            "::ffff:1.2.3.4/99 lo\n10.0.0.2/24 ,\n"
        )
        self.assertEqual(msgs, [])
        self.assertEqual(
            [(a.address, a.mask, a.interfaces) for a in addresses],
            [
                ("10.0.0.1", 24, ("eth0\r",)),
                ("fd00::1", 64, ("e1", "e2")),
                ("1.2.3.4", 99, ("lo",)),
                ("10.0.0.2", 24, ()),
            ],
        )

    def test_publicAddressesBadMasks(self) -> None:
        """A mask that is missing, negative or not a number, an address
        with a scope, refuse the file."""
        for line in ("1.2.3.4/-1", "1.2.3.4/", "1.2.3.4/x", "fe80::1%eth0/64"):
            _, msgs = parsePublicAddresses(f"{line} lo\n")
            self.assertEqual(
                [m.text for m in msgs],
                ["Badly formed line 1 in public address list"],
                line,
            )

    def test_loadPublicAddresses(self) -> None:
        """A missing file is a warning; a good one is logged as loaded; a
        bad one adds ctdbd's last word."""
        base = tempfile.mkdtemp(prefix="txctdb-test-")
        self.addCleanup(shutil.rmtree, base, True)
        paths = CTDBPaths.fromEnvironment({"CTDB_BASE": base, "CTDB_TEST_MODE": "1"})
        path = os.path.join(base, "public_addresses")
        addresses, msgs = loadPublicAddresses(paths)
        self.assertEqual(
            (addresses, [m.text for m in msgs]),
            ([], [f"Not loading public addresses, no file {path}"]),
        )
        with open(path, "w") as f:
            f.write("10.0.0.1/24 lo\n")
        addresses, msgs = loadPublicAddresses(paths)
        self.assertEqual(len(addresses), 1)
        self.assertEqual(
            [(m.level, m.text) for m in msgs],
            [("NOTICE", f"Loaded public addresses from {path}")],
        )
        with open(path, "w") as f:
            f.write("10.0.0.1/24\n")
        _, msgs = loadPublicAddresses(paths)
        self.assertEqual(
            [m.text for m in msgs],
            [
                "No interface specified at line 1 of public addresses file",
                "Unable to setup public IP addresses",
            ],
        )


class PrintableMessageTests(SynchronousTestCase):
    """Messages about files that are not UTF-8 can be written to any log."""

    def test_surrogates(self) -> None:
        self.assertEqual(printable("eth\udcff"), "eth\\xff")
        self.assertEqual(printable("plain é"), "plain é")
        message = Message(ERR, "Unknown interface eth\udcff")
        self.assertEqual(message.text, "Unknown interface eth\\xff")
        message.text.encode("utf-8")

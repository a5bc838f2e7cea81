# -*- test-case-name: tests.test_config -*-
"""
Tests for L{ctdb.config}: Samba 4.17's paths, ctdb.conf and ctdb.tunables
rules.  The expected messages are the ones Debian's ctdbd 4.17.12 prints for
the same files.
"""

from __future__ import annotations

import os
import stat

import pytest

from ctdb.config import (
    CTDBPaths,
    checkDatabaseDirectories,
    loadConfig,
    parseConfig,
    parseIni,
    parseTunables,
)
from ctdb.errors import ConfigLoadError, IniSyntaxError


@pytest.fixture
def base(tmp_path):  # type: ignore[no-untyped-def]
    for sub in ("volatile", "persistent", "state"):
        (tmp_path / "db" / sub).mkdir(parents=True)
    return tmp_path


def testPaths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Test mode puts every directory under CTDB_BASE; CTDB_SOCKET moves
    only ctdbd's socket; without test mode the compiled-in paths apply."""
    b = str(tmp_path)
    p = CTDBPaths.fromEnvironment({"CTDB_BASE": b, "CTDB_TEST_MODE": "yes"})
    assert (p.etcdir, p.rundir, p.vardir, p.datadir) == (
        b,
        f"{b}/run",
        f"{b}/var",
        f"{b}/share",
    )
    assert p.configFile == f"{b}/ctdb.conf"
    assert p.socket("ctdbd") == f"{b}/run/ctdbd.socket"
    assert p.socket("eventd") == f"{b}/run/eventd.socket"
    assert p.pidFile("ctdbd") == f"{b}/run/ctdbd.pid"
    q = CTDBPaths.fromEnvironment(
        {"CTDB_BASE": b, "CTDB_TEST_MODE": "", "CTDB_SOCKET": "/x/s"}
    )
    assert (
        q.socket("ctdbd") == "/x/s" and q.socket("eventd") == f"{b}/run/eventd.socket"
    )
    r = CTDBPaths.fromEnvironment({"CTDB_BASE": b})
    assert (r.etcdir, r.rundir, r.vardir) == ("/etc/ctdb", "/run/ctdb", "/var/lib/ctdb")
    assert r.nodesFile == f"{b}/nodes"


def testIniReader() -> None:
    """tini rules: comments, blanks squeezed, one blank trimmed around
    names and values, continuations, lines without '=' skipped."""
    text = (
        "# comment\n ; another\n[cluster]\n\tnode  address =  127.0.0.1\n"
        "no equals here\n  key = a \\\n b\n"
    )
    assert list(parseIni(text)) == [
        ("cluster", None),
        ("node address", "127.0.0.1"),
        ("key", "a b"),
    ]
    with pytest.raises(IniSyntaxError):
        list(parseIni("[cluster\n"))
    with pytest.raises(IniSyntaxError):
        list(parseIni("= value\n"))


def testGoodConfig(base) -> None:  # type: ignore[no-untyped-def]
    """The file local_daemons.sh writes is accepted, with its values."""
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
    paths = CTDBPaths.fromEnvironment({"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"})
    config = parseConfig(text, paths)
    assert config.logFile == f"{base}/log.ctdb"
    assert config.logLevel == 5
    assert config.clusterLock == f"!/bin/helper {base}/lock 5"
    assert config.nodeAddress == "127.0.0.3"
    assert config.dbDirState == f"{base}/db/state"
    assert config.failoverDisabled is True
    assert config.eventDebugScript == "debug-hung-script.sh"
    checkDatabaseDirectories(config)


def testBadValuesRefused(base) -> None:  # type: ignore[no-untyped-def]
    """Every bad value is reported with ctdbd's wording, then the load
    fails; unknown sections and keys are ignored, as ctdbd ignores them."""
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
    paths = CTDBPaths.fromEnvironment({"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"})
    with pytest.raises(ConfigLoadError) as info:
        loadConfig(paths)
    errors = [m.text for m in info.value.messages if m.level == "ERROR"]
    assert errors == [
        'conf: validation for option "log level" failed',
        "Invalid value for [cluster] -> node address = 127.0.0.300",
        'conf: validation for option "node address" failed',
        "Invalid value for [cluster] -> leader timeout = 0",
        'conf: validation for option "leader timeout" failed',
        f'volatile database directory "{base}/db/nope" does not exist',
        'conf: validation for option "volatile database directory" failed',
        'conf: invalid value [failover] -> "disabled" = "maybe"',
        f"Failed to load configuration file {base}/ctdb.conf",
    ]


def testWarningsAndEmptyValues(base) -> None:  # type: ignore[no-untyped-def]
    """The deprecated recovery lock warns and still applies; an empty
    value is an error."""
    paths = CTDBPaths.fromEnvironment({"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"})
    config = parseConfig("[cluster]\nrecovery lock = /l\n", paths)
    assert config.clusterLock == "/l"
    assert [m.text for m in config.messages if m.level == "WARNING"] == [
        "Configuration option [cluster] -> recovery lock is deprecated"
    ]
    with pytest.raises(ConfigLoadError) as info:
        parseConfig("[cluster]\ncluster lock =\n", paths)
    assert (
        info.value.messages[0].text == 'conf: empty value [cluster] -> "cluster lock"'
    )


def testDebugScriptChecks(base) -> None:  # type: ignore[no-untyped-def]
    """[event] debug script must be an executable file in etcdir."""
    paths = CTDBPaths.fromEnvironment({"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"})
    with pytest.raises(ConfigLoadError) as info:
        parseConfig("[event]\ndebug script = /somewhere/d.sh\n", paths)
    assert info.value.messages[0].text == f"debug script {base}/d.sh does not exist"
    (base / "d.sh").write_text("")
    os.chmod(base / "d.sh", stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(ConfigLoadError) as info:
        parseConfig("[event]\ndebug script = d.sh\n", paths)
    assert info.value.messages[0].text == f"debug script {base}/d.sh is not executable"


def testSyntaxErrorIgnoresFile(base) -> None:  # type: ignore[no-untyped-def]
    """conf.c drops a file tini cannot parse and keeps the defaults
    (ctdbd then starts with them); we say so."""
    paths = CTDBPaths.fromEnvironment({"CTDB_BASE": str(base), "CTDB_TEST_MODE": "yes"})
    config = parseConfig("[cluster]\nnode address = 127.0.0.2\n[database\n", paths)
    assert config.nodeAddress is None
    assert config.messages[-1].level == "WARNING"


def testMissingDefaultDirectories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ctdbd's own check of the database directories, defaults included."""
    paths = CTDBPaths.fromEnvironment(
        {"CTDB_BASE": str(tmp_path), "CTDB_TEST_MODE": "yes"}
    )
    (tmp_path / "ctdb.conf").write_text(
        f"[database]\nvolatile database directory = {tmp_path}\n"
        f"persistent database directory = {tmp_path}\n"
    )
    config = loadConfig(paths)
    config.values[("database", "state database directory")] = f"{tmp_path}/none"
    with pytest.raises(ConfigLoadError) as info:
        checkDatabaseDirectories(config)
    assert str(info.value) == f"State database directory {tmp_path}/none does not exist"


def testTunables() -> None:
    """ctdb.tunables: good lines apply, each bad line is reported."""
    values, msgs = parseTunables(
        "RecoverInterval=2\n# c\nNoSuchTunable=1\nMonitorInterval=x\nEmpty\n[s]\n"
    )
    assert values == {"RecoverInterval": 2}
    assert [m.text for m in msgs] == [
        'ctdb_tunable_load_file: Unknown tunable "NoSuchTunable"',
        'ctdb_tunable_load_file: Invalid value "x" for tunable "MonitorInterval"',
        'ctdb_tunable_load_file: Invalid line containing "Empty"',
        "ctdb_tunable_load_file: Invalid line for section [s] - sections not supported ",
    ]


def test_publicAddressesParsed() -> None:
    """public_addresses lines as ctdb_set_public_addresses reads them."""
    from ctdb.config import parsePublicAddresses

    addresses, msgs = parsePublicAddresses(
        "# comment\n\n192.168.100.1/24 lo\n  fd00::1/64 eth0,eth1\n"
    )
    assert msgs == []
    assert [(a.address, a.mask, a.interfaces) for a in addresses] == [
        ("192.168.100.1", 24, ("lo",)),
        ("fd00::1", 64, ("eth0", "eth1")),
    ]


def test_publicAddressesErrors() -> None:
    """A line without an interface or with a bad address refuses the file,
    with ctdbd's messages."""
    from ctdb.config import parsePublicAddresses

    _, msgs = parsePublicAddresses("192.168.100.1/24\n")
    assert [m.text for m in msgs] == [
        "No interface specified at line 1 of public addresses file"
    ]
    _, msgs = parsePublicAddresses("10.0.0.1 lo\n192.168.1.300/24 lo\n")
    assert [m.text for m in msgs] == ["Badly formed line 1 in public address list"]

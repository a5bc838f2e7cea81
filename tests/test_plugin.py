# -*- test-case-name: tests.test_plugin -*-
"""
The twistd plugin: discoverable as C{ctdb}, and its options refuse bad
configuration with a usage message rather than a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from ctdb import tap
from ctdb.protocols.packet import CTDB_PORT

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def nodesFile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nodes"
    path.write_text(text)
    return str(path)


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def test_pluginFound() -> None:
    """getPlugins(IServiceMaker) yields a ctdb plugin whose options are
    ctdb.tap.Options."""
    makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
    assert "ctdb" in makers
    maker = makers["ctdb"]
    assert maker.options is tap.Options
    assert maker.makeService.__module__ == "ctdb.tap"
    assert "TDB" in maker.description


def test_parseOptions(tmp_path: Path) -> None:
    """A valid command line parses, with every option carried through."""
    nodes = nodesFile(tmp_path, "127.0.0.1\n")
    options = parse(
        "--nodes",
        nodes,
        "--socket",
        str(tmp_path / "s"),
        "--port",
        "5000",
        "--log-level",
        "DEBUG",
        "--tunable",
        "KeepaliveInterval=2",
        "--tunable",
        "KeepaliveLimit=0x3",
        "--dbdir",
        str(tmp_path / "v"),
    )
    assert options["nodes"] == nodes
    assert options["socket"] == str(tmp_path / "s")
    assert options["port"] == 5000
    assert options["log-level"] == "DEBUG"
    assert options["tunables"] == {"KeepaliveInterval": 2, "KeepaliveLimit": 3}
    assert options["dbdir"] == str(tmp_path / "v")


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without options the port is 4379, the socket comes from $CTDB_SOCKET
    and there are no tunables."""
    monkeypatch.setenv("CTDB_SOCKET", str(tmp_path / "env.socket"))
    options = parse("--nodes", nodesFile(tmp_path, "127.0.0.1\n"))
    assert options["port"] == CTDB_PORT == 4379
    assert options["socket"] == str(tmp_path / "env.socket")
    assert options["address"] is None
    assert options["tunables"] == {}
    assert options["log-level"] == "NOTICE"


def test_tunablesNotShared(tmp_path: Path) -> None:
    """Tunables given to one Options instance do not leak into the next."""
    nodes = nodesFile(tmp_path, "127.0.0.1\n")
    parse("--nodes", nodes, "--tunable", "KeepaliveInterval=9")
    assert parse("--nodes", nodes)["tunables"] == {}


@pytest.mark.parametrize(
    "text, args, message",
    [
        (None, [], "--nodes is required"),
        ("127.0.0.1\n", ["--nodes", "/nonexistent/nodes"], "does not exist"),
        ("not an address\n", None, "nodes:1: invalid node"),
        ("300.1.1.1\n", None, "invalid node address '300.1.1.1'"),
        ("127.0.0.1\n127.0.0.1\n", None, "duplicate node address 127.0.0.1"),
        ("\n# only deleted\n", None, "no nodes"),
        ("10.254.254.254\n", None, "no address of the nodes file is local"),
        ("127.0.0.1\n", ["--address", "127.0.0.2"], "is not in the nodes file"),
        (
            "127.0.0.1\n10.254.254.254\n",
            ["--address", "10.254.254.254"],
            "10.254.254.254 is not a local address",
        ),
        ("127.0.0.1\n", ["--tunable", "NoSuchTunable=1"], "unknown tunable"),
        ("127.0.0.1\n", ["--tunable", "KeepaliveInterval"], "wants NAME=VALUE"),
        ("127.0.0.1\n", ["--tunable", "KeepaliveInterval=x"], "needs an integer value"),
        ("127.0.0.1\n", ["--log-level", "LOUD"], "invalid log level 'LOUD'"),
    ],
)
def test_usageErrors(
    tmp_path: Path, text: str | None, args: list[str] | None, message: str
) -> None:
    """Each bad configuration is a UsageError whose message names the problem."""
    argv: list[str] = []
    if text is not None and (args is None or "--nodes" not in args):
        argv += ["--nodes", nodesFile(tmp_path, text)]
    argv += args or []
    with pytest.raises(usage.UsageError) as caught:
        parse(*argv)
    assert message in str(caught.value)


def test_twistdListsPlugin() -> None:
    """`twistd --help` lists the ctdb command, so the editable install exposes
    twisted/plugins to twistd."""
    result = subprocess.run(
        [*TWISTD, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:1] == ["ctdb"] for line in result.stdout.splitlines()), (
        result.stdout
    )


def test_twistdUsageMessage(tmp_path: Path) -> None:
    """twistd given a nodes file with no local address exits 1 with a one-line
    usage message, not a traceback."""
    nodes = nodesFile(tmp_path, "10.254.254.254\n")
    result = subprocess.run(
        [
            *TWISTD,
            "-n",
            "--pidfile=",
            "ctdb",
            "--nodes",
            nodes,
            "--socket",
            str(tmp_path / "ctdbd.socket"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "no address of the nodes file is local to this machine" in output
    assert "Traceback" not in output
    assert not (tmp_path / "ctdbd.socket").exists()

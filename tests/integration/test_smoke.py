"""A started cluster answers Samba's tool."""

from __future__ import annotations


def test_nodestatus_all(cluster, ctdbTool) -> None:  # type: ignore[no-untyped-def]
    """Every node of a fresh cluster is OK in Samba's `ctdb nodestatus all`."""
    result = ctdbTool(cluster, 0, "nodestatus", "all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Number of nodes:3"
    assert lines[1].endswith("OK (THIS NODE)")
    assert lines[2].endswith("OK") and lines[3].endswith("OK")

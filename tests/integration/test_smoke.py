# -*- test-case-name: tests.integration.test_smoke -*-
"""A started cluster answers Samba's tool."""

from __future__ import annotations

from tests.integration._cases import IntegrationCase


class SmokeTests(IntegrationCase):
    """A fresh cluster, seen through Samba's tool."""

    def test_nodestatusAll(self) -> None:
        """Every node of a fresh cluster is OK in Samba's `ctdb nodestatus all`,
        and runs on txctdb's reactor."""
        cluster = self.makeCluster(3)
        result = self.ctdbTool(cluster, 0, "nodestatus", "all")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "Number of nodes:3")
        self.assertTrue(lines[1].endswith("OK (THIS NODE)"), lines[1])
        self.assertTrue(lines[2].endswith("OK") and lines[3].endswith("OK"), lines)
        # twistd ctdb installed txctdb's own reactor (twistd logs its class)
        for pnn in range(3):
            with open(cluster.logFile(pnn)) as f:
                self.assertIn(
                    "reactor class: ctdb.transports._twistedprivate.LeanEPollReactor",
                    f.read(),
                )

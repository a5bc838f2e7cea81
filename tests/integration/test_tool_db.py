# -*- test-case-name: tests.integration.test_tool_db -*-
"""
Samba's ``ctdb`` tool database commands against a local cluster of our
daemons.

Every expected output and exit code here was taken from Samba's ctdbd 4.17
(three nodes on loopback, tests/support/realctdbd.py) running the same
commands in the same order: record headers (dmaster, rsn, flags) included,
so these tests pin the migration, read-only delegation and revoke rules to
ctdbd's.
Paths are normalised to C{BASE<pnn>}; backup timestamps are cut out.
"""

from __future__ import annotations

import os
import re

from tests.integration._cases import IntegrationCase

USAGE_HEAD = (
    "Usage: [-?YXv] [-?|--help] [--usage] [-d|--debug=STRING]\n"
    "        [-t|--timelimit=INT] [-n|--node=INT] [-Y] [-x|--separator=CHAR]\n"
    "        [-X] [-v|--verbose] [-T|--maxruntime=INT]\n\nCommands:\n"
)


def record(
    key: str,
    dmaster: int,
    rsn: int,
    flags: str,
    data: str,
    keylen: int | None = None,
    datalen: int | None = None,
) -> str:
    """One record as catdb/cattdb print it (lengths given for escaped text)."""
    keylen = len(key) if keylen is None else keylen
    datalen = len(data) if datalen is None else datalen
    return (
        f'key({keylen}) = "{key}"\ndmaster: {dmaster}\nrsn: {rsn}\n'
        f'flags: {flags}\ndata({datalen}) = "{data}"\n\n'
    )


class DatabaseCommandsTests(IntegrationCase):
    """The database commands, each test on a fresh 3-node cluster."""

    def setUp(self) -> None:
        super().setUp()
        self.cluster = self.makeCluster(3)

    def tool(self, pnn: int, *args: str) -> tuple[int, str, str]:
        """(rc, stdout, stderr) of the tool on node C{pnn}, node paths as BASE<pnn>."""
        p = self.ctdbTool(self.cluster, pnn, *args)
        out, err = p.stdout, p.stderr
        for k in range(self.cluster.size):
            out = out.replace(self.cluster.nodeDir(k), f"BASE{k}")
            err = err.replace(self.cluster.nodeDir(k), f"BASE{k}")
        return p.returncode, out, err

    def assertAlive(self) -> None:
        """Every daemon of the cluster is still running."""
        self.assertEqual(
            self.cluster.running(),
            list(range(self.cluster.size)),
            self.cluster.status(),
        )

    def test_attachAndDbmap(self) -> None:
        """attach of the three kinds, re-attach rules, getdbmap (both formats)
        and getdbstatus, as ctdbd."""
        self.assertEqual(self.tool(0, "attach", "vol1"), (0, "", ""))
        self.assertEqual(self.tool(0, "attach", "pers1", "persistent"), (0, "", ""))
        self.assertEqual(self.tool(0, "attach", "rep1", "replicated"), (0, "", ""))
        # re-attach with other flags: refused unless the flags are a subset
        self.assertEqual(
            self.tool(0, "attach", "vol1", "persistent"),
            (
                1,
                "",
                "attach: vol1 failed to get db_id, ret=-1\n",
            ),
        )
        self.assertEqual(self.tool(0, "attach", "pers1"), (0, "", ""))
        self.assertEqual(
            self.tool(0, "attach", "pers1", "replicated"),
            (
                1,
                "",
                "attach: pers1 failed to get db_id, ret=-1\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "getdbmap"),
            (
                0,
                (
                    "Number of databases:3\n"
                    "dbid:0x83ac5a51 name:rep1 path:BASE0/db/volatile/rep1.0 REPLICATED\n"
                    "dbid:0xda8e4d1d name:pers1 path:BASE0/db/persistent/pers1.0 PERSISTENT\n"
                    "dbid:0xc3ca39d0 name:vol1 path:BASE0/db/volatile/vol1.0\n"
                ),
                "",
            ),
        )
        self.assertEqual(
            self.tool(1, "getdbmap", "-X"),
            (
                0,
                (
                    "|ID|Name|Path|Persistent|Sticky|Unhealthy|Readonly|Replicated|\n"
                    "|0x83AC5A51|rep1|BASE1/db/volatile/rep1.1|0|0|0|0|1|\n"
                    "|0xDA8E4D1D|pers1|BASE1/db/persistent/pers1.1|1|0|0|0|0|\n"
                    "|0xC3CA39D0|vol1|BASE1/db/volatile/vol1.1|0|0|0|0|0|\n"
                ),
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "getdbstatus", "pers1"),
            (
                0,
                (
                    "dbid: 0xda8e4d1d\nname: pers1\npath: BASE0/db/persistent/pers1.0\n"
                    "PERSISTENT: yes\nREPLICATED: no\nSTICKY: no\nREADONLY: no\nHEALTH: OK\n"
                ),
                "",
            ),
        )
        self.assertEqual(
            self.tool(2, "getdbstatus", "0xc3ca39d0"),
            (
                0,
                (
                    "dbid: 0xc3ca39d0\nname: vol1\npath: BASE2/db/volatile/vol1.2\n"
                    "PERSISTENT: no\nREPLICATED: no\nSTICKY: no\nREADONLY: no\nHEALTH: OK\n"
                ),
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "getdbstatus", "nosuch"),
            (
                1,
                "",
                "No database matching 'nosuch' found\n",
            ),
        )

    def test_volatileRecordsMigrate(self) -> None:
        """
        writekey/readkey/catdb/cattdb: a key written on node 0 and read on
        nodes 1 and 2 migrates; the old dmasters keep a pointer copy, and the
        rsn grows exactly as with ctdbd ("k2" has lmaster 2, "k1" lmaster 0).
        """
        self.assertEqual(self.tool(0, "attach", "vol1")[0], 0)
        self.assertEqual(self.tool(0, "writekey", "vol1", "k2", "hello"), (0, "", ""))
        self.assertEqual(
            self.tool(0, "cattdb", "vol1"),
            (
                0,
                record("k2", 0, 3, "0x00000000", "hello") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "readkey", "vol1", "k2"), (0, "Data: size:5 ptr:[hello]\n", "")
        )
        self.assertEqual(
            self.tool(1, "readkey", "vol1", "k2"), (0, "Data: size:5 ptr:[hello]\n", "")
        )
        mwd = "0x00010000 MIGRATED_WITH_DATA"
        self.assertEqual(
            self.tool(0, "cattdb", "vol1"),
            (
                0,
                record("k2", 1, 3, mwd, "hello") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(1, "cattdb", "vol1"),
            (
                0,
                record("k2", 1, 5, mwd, "hello") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(2, "readkey", "vol1", "k2"), (0, "Data: size:5 ptr:[hello]\n", "")
        )
        self.assertEqual(
            self.tool(2, "cattdb", "vol1"),
            (
                0,
                record("k2", 2, 7, mwd, "hello") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        # catdb is cluster-wide and shows the dmaster's copy
        self.assertEqual(
            self.tool(0, "catdb", "vol1"),
            (
                0,
                record("k2", 2, 7, mwd, "hello") + "Dumped 1 records\n",
                "",
            ),
        )
        # a key whose lmaster is the writer
        self.assertEqual(self.tool(0, "writekey", "vol1", "k1", "one"), (0, "", ""))
        self.assertEqual(
            self.tool(2, "readkey", "vol1", "k1"), (0, "Data: size:3 ptr:[one]\n", "")
        )
        rc, out, _ = self.tool(0, "cattdb", "vol1")
        self.assertIn(record("k1", 2, 2, mwd, "one"), out)
        # deletekey empties the record where it is
        self.assertEqual(self.tool(1, "deletekey", "vol1", "k2"), (0, "", ""))
        self.assertEqual(self.tool(1, "deletekey", "vol1", "nokey"), (0, "", ""))
        self.assertEqual(
            self.tool(0, "readkey", "vol1", "k2"), (0, "Data: size:0 ptr:[]\n", "")
        )
        rc, out, _ = self.tool(0, "catdb", "vol1")
        self.assertEqual(rc, 0)
        self.assertNotIn('"k2"', out)
        self.assertTrue(out.endswith("Dumped 1 records\n"), out)

    def test_persistentCommands(self) -> None:
        """pstore, pfetch, pdelete, ptrans, getdbseqnum and catdb on persistent
        and replicated databases; transactions refused on a volatile one."""
        cluster = self.cluster
        self.assertEqual(self.tool(0, "attach", "pers1", "persistent")[0], 0)
        self.assertEqual(self.tool(0, "attach", "rep1", "replicated")[0], 0)
        self.assertEqual(self.tool(0, "attach", "vol1")[0], 0)
        self.assertEqual(self.tool(0, "pstore", "pers1", "key1", "val1"), (0, "", ""))
        self.assertEqual(self.tool(1, "pfetch", "pers1", "key1"), (0, "val1\n", ""))
        self.assertEqual(self.tool(2, "pfetch", "pers1", "nokey"), (0, "\n", ""))
        self.assertEqual(self.tool(0, "pdelete", "pers1", "key1"), (0, "", ""))
        self.assertEqual(self.tool(1, "pfetch", "pers1", "key1"), (0, "\n", ""))
        path = os.path.join(cluster.directory, "ptrans.txt")
        with open(path, "w") as f:
            f.write('"a" "1"\n"b" "22"\n')
        self.assertEqual(self.tool(0, "ptrans", "pers1", path), (0, "", ""))
        seq = "__db_sequence_number__\\00"
        self.assertEqual(
            self.tool(2, "catdb", "pers1"),
            (
                0,
                (
                    record(
                        seq,
                        0,
                        3,
                        "0x00000000",
                        "\\03\\00\\00\\00\\00\\00\\00\\00",
                        23,
                        8,
                    )
                    + record("a", 0, 1, "0x00000000", "1")
                    + record("b", 0, 1, "0x00000000", "22")
                    + "Dumped 3 records\n"
                ),
                "",
            ),
        )
        self.assertEqual(self.tool(0, "getdbseqnum", "pers1"), (0, "0x3\n", ""))
        self.assertEqual(self.tool(0, "getdbseqnum", "vol1"), (0, "0x0\n", ""))
        self.assertEqual(self.tool(0, "pstore", "rep1", "rk", "rv"), (0, "", ""))
        self.assertEqual(self.tool(1, "pfetch", "rep1", "rk"), (0, "rv\n", ""))
        self.assertEqual(
            self.tool(0, "pstore", "vol1", "a", "b"),
            (
                1,
                "",
                "Transactions not supported on DB vol1\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "writekey", "pers1", "a", "b"),
            (
                1,
                "",
                "DB pers1 is not a volatile database\n",
            ),
        )

    def test_tstoreTfetch(self) -> None:
        """tstore/tfetch work on a TDB file directly (here a persistent db file
        of node 0, whose daemon then serves the record)."""
        cluster = self.cluster
        self.assertEqual(self.tool(0, "attach", "pers1", "persistent")[0], 0)
        path = os.path.join(cluster.nodeDir(0), "db", "persistent", "pers1.0")
        self.assertEqual(
            self.tool(0, "tstore", path, "tkey", "tval", "7", "2"), (0, "", "")
        )
        shown = 'dmaster: 2\nrsn: 7\nflags: 0x00000000\ndata(4) = "tval"\n'
        self.assertEqual(self.tool(0, "tfetch", path, "tkey"), (0, shown, ""))
        self.assertEqual(
            self.tool(0, "tfetch", path, "nokey"), (1, "", "No record for key nokey\n")
        )
        out = os.path.join(cluster.directory, "tf.out")
        self.assertEqual(self.tool(0, "tfetch", path, "tkey", out), (0, shown, ""))
        with open(out, "rb") as f:
            self.assertEqual(
                f.read(), b"\x07" + b"\0" * 7 + b"\x02" + b"\0" * 15 + b"tval"
            )
        self.assertEqual(
            self.tool(0, "cattdb", "pers1"),
            (
                0,
                record("tkey", 2, 7, "0x00000000", "tval") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        missing = os.path.join(cluster.directory, "nofile.tdb")
        self.assertEqual(
            self.tool(0, "tfetch", missing, "k"),
            (
                1,
                "",
                f"Failed to open TDB file {missing}\n",
            ),
        )
        rc, out, _ = self.tool(0, "tstore", path)
        self.assertEqual(rc, 1)
        self.assertTrue(out.startswith(USAGE_HEAD), out)

    def test_backupWipeRestore(self) -> None:
        """
        backupdb, dumpdbbackup, wipedb and restoredb (also into a new name).
        wipedb and restoredb need the leader broadcast and recovery mode
        (ctdb/recovery/).
        """
        cluster = self.cluster
        self.assertEqual(self.tool(0, "attach", "pers1", "persistent")[0], 0)
        path = os.path.join(cluster.directory, "in.txt")
        with open(path, "w") as f:
            f.write('"a" "1"\n"b" "22"\n')
        self.assertEqual(self.tool(0, "ptrans", "pers1", path)[0], 0)
        backup = os.path.join(cluster.directory, "pers1.bak")
        self.assertEqual(
            self.tool(0, "backupdb", "pers1", backup),
            (
                0,
                f"Database backed up to {backup}\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "backupdb", "nosuch", backup),
            (
                1,
                "",
                "No database matching 'nosuch' found\n",
            ),
        )
        rc, out, err = self.tool(1, "dumpdbbackup", backup)
        self.assertEqual((rc, err), (0, ""))
        stamp = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d"
        head, body = out.split("\n", 1)
        self.assertTrue(
            re.fullmatch(f"Dumping database pers1 from backup @ {stamp}", head), head
        )
        self.assertTrue(
            body.endswith(
                record("b", 0, 1, "0x00000000", "22") + "Dumped 3 record(s)\n"
            ),
            body,
        )
        self.assertEqual(
            self.tool(0, "wipedb", "pers1"), (0, "Database pers1 wiped\n", "")
        )
        self.assertEqual(self.tool(2, "catdb", "pers1"), (0, "Dumped 0 records\n", ""))
        rc, out, err = self.tool(1, "restoredb", backup)
        self.assertEqual((rc, err), (0, ""), err)
        self.assertTrue(
            re.fullmatch(
                f"Restoring database pers1 from backup @ {stamp}\nDatabase pers1 restored\n",
                out,
            ),
            out,
        )
        self.assertEqual(self.tool(2, "pfetch", "pers1", "b"), (0, "22\n", ""))
        rc, out, err = self.tool(0, "restoredb", backup, "copy")
        self.assertEqual((rc, err), (0, ""), err)
        self.assertTrue(out.endswith("Database copy restored\n"), out)
        self.assertEqual(self.tool(1, "pfetch", "copy", "a"), (0, "1\n", ""))
        missing = os.path.join(cluster.directory, "nofile")
        self.assertEqual(
            self.tool(0, "restoredb", missing),
            (
                2,
                "",
                f"Failed to open file {missing} for reading\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "dumpdbbackup", missing),
            (
                2,
                "",
                f"Failed to open file {missing} for reading\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "wipedb", "nosuch"),
            (
                1,
                "",
                "No database matching 'nosuch' found\n",
            ),
        )

    def test_readonlyDelegations(self) -> None:
        """
        setdbreadonly; ``readkey ... readonly`` on node 1 leaves a read-only
        copy there (RO_HAVE_READONLY, rsn-2) and RO_HAVE_DELEGATIONS with rsn+3
        on the dmaster; a write from node 2 revokes it (node 1 gets the record
        back without flags, rsn 4) and migrates the record (rsn 9), as ctdbd.
        """
        cluster = self.cluster
        self.assertEqual(self.tool(0, "attach", "vol1")[0], 0)
        self.assertEqual(self.tool(0, "setdbreadonly", "vol1"), (0, "", ""))
        self.assertEqual(self.tool(0, "setdbreadonly", "vol1"), (0, "", ""))
        # setdbreadonly sets the flag on one node; the next attach of the
        # database by a client (here writekey's) spreads it to all (as ctdbd)
        rc, out, _ = self.tool(2, "getdbmap")
        self.assertIn("name:vol1 path:BASE2/db/volatile/vol1.2\n", out)
        # "k4" has lmaster 0
        self.assertEqual(self.tool(0, "writekey", "vol1", "k4", "value4"), (0, "", ""))
        rc, out, _ = self.tool(2, "getdbmap")
        self.assertIn("name:vol1 path:BASE2/db/volatile/vol1.2 READONLY\n", out)
        self.assertTrue(
            os.path.exists(
                os.path.join(cluster.nodeDir(1), "db", "volatile", "vol1.1.RO")
            )
        )
        self.assertEqual(
            self.tool(1, "readkey", "vol1", "k4", "readonly"),
            (
                0,
                "Data: size:6 ptr:[value4]\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "cattdb", "vol1"),
            (
                0,
                record("k4", 0, 5, "0x01000000 RO_HAVE_DELEGATIONS", "value4")
                + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(1, "cattdb", "vol1"),
            (
                0,
                record("k4", 0, 3, "0x02000000 RO_HAVE_READONLY", "value4")
                + "Dumped 1 record(s)\n",
                "",
            ),
        )
        # the read-only copy answers locally
        self.assertEqual(
            self.tool(1, "readkey", "vol1", "k4", "readonly"),
            (
                0,
                "Data: size:6 ptr:[value4]\n",
                "",
            ),
        )
        self.assertEqual(self.tool(2, "writekey", "vol1", "k4", "new4"), (0, "", ""))
        mwd = "0x00010000 MIGRATED_WITH_DATA"
        self.assertEqual(
            self.tool(0, "cattdb", "vol1"),
            (
                0,
                record("k4", 2, 7, mwd, "value4") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(1, "cattdb", "vol1"),
            (
                0,
                record("k4", 0, 4, mwd, "value4") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(2, "cattdb", "vol1"),
            (
                0,
                record("k4", 2, 9, mwd, "new4") + "Dumped 1 record(s)\n",
                "",
            ),
        )
        rc, out, _ = self.tool(0, "dbstatistics", "vol1")
        self.assertEqual(rc, 0)
        self.assertIn(
            " db_ro_delegations                  1\n db_ro_revokes                      1\n",
            out,
        )
        self.assertEqual(
            self.tool(1, "readkey", "vol1", "k4"), (0, "Data: size:4 ptr:[new4]\n", "")
        )

    def test_sticky(self) -> None:
        """setdbsticky marks the database STICKY on the node, the next client
        attach spreads the flags to every node; records still migrate."""
        self.assertEqual(self.tool(0, "attach", "vol1")[0], 0)
        self.assertEqual(self.tool(0, "setdbsticky", "vol1"), (0, "", ""))
        self.assertEqual(self.tool(0, "setdbreadonly", "vol1"), (0, "", ""))
        self.assertEqual(
            self.tool(1, "getdbmap"),
            (
                0,
                (
                    "Number of databases:1\n"
                    "dbid:0xc3ca39d0 name:vol1 path:BASE1/db/volatile/vol1.1\n"
                ),
                "",
            ),
        )
        self.assertEqual(self.tool(0, "writekey", "vol1", "s", "x"), (0, "", ""))
        self.assertEqual(
            self.tool(1, "getdbmap"),
            (
                0,
                (
                    "Number of databases:1\n"
                    "dbid:0xc3ca39d0 name:vol1 path:BASE1/db/volatile/vol1.1 STICKY READONLY\n"
                ),
                "",
            ),
        )
        _, out, _ = self.tool(2, "getdbstatus", "vol1")
        self.assertIn("STICKY: yes\nREADONLY: yes\n", out)
        self.assertEqual(
            self.tool(1, "readkey", "vol1", "s"), (0, "Data: size:1 ptr:[x]\n", "")
        )

    def test_errors(self) -> None:
        """Bad input gets ctdbd's answers, and every daemon keeps running."""
        self.assertEqual(self.tool(0, "attach", "pers1", "persistent")[0], 0)
        self.assertEqual(self.tool(0, "attach", "vol1")[0], 0)
        nosuch = (1, "", "No database matching 'nosuch' found\n")
        args: tuple[str, ...]
        for args in (
            ("readkey", "nosuch", "k"),
            ("writekey", "nosuch", "k", "v"),
            ("catdb", "nosuch"),
            ("getdbseqnum", "nosuch"),
            ("dbstatistics", "nosuch"),
            ("setdbreadonly", "nosuch"),
            ("pfetch", "nosuch", "k"),
            ("deletekey", "nosuch", "k"),
        ):
            self.assertEqual(self.tool(0, *args), nosuch, args)
        for args, usage in (
            (
                ("attach",),
                "  attach          <dbname> [persistent|replicated]  attach a database\n",
            ),
            (
                ("attach", "a", "b", "c"),
                "  attach          <dbname> [persistent|replicated]  attach a database\n",
            ),
            (
                ("pstore", "pers1", "k"),
                "  pstore          <dbname|dbid> <key> <value>  write record to persistent database\n",
            ),
            (
                ("setdbreadonly",),
                "  setdbreadonly   <dbname|dbid>                enable readonly records\n",
            ),
        ):
            self.assertEqual(self.tool(0, *args), (1, USAGE_HEAD + usage, ""), args)
        long = "x" * 300
        self.assertEqual(
            self.tool(0, "attach", long),
            (
                1,
                "",
                f"attach: {long} failed to get db_id, ret=-1\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "attach", "a/b"),
            (
                1,
                "",
                "attach: a/b failed to get db_id, ret=-1\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "setdbreadonly", "pers1"),
            (
                1,
                "",
                "READONLY can be set only on volatile DB\n",
            ),
        )
        self.assertEqual(
            self.tool(0, "setdbsticky", "pers1"),
            (
                1,
                "",
                "STICKY can be set only on volatile DB\n",
            ),
        )
        # a large value, through a migration and through a persistent commit
        big = "w" * 100000
        self.assertEqual(self.tool(0, "writekey", "vol1", "big", big), (0, "", ""))
        self.assertEqual(
            self.tool(2, "readkey", "vol1", "big"),
            (
                0,
                f"Data: size:100000 ptr:[{big}]\n",
                "",
            ),
        )
        self.assertEqual(
            self.tool(0, "pstore", "pers1", "huge", "v" * 120000), (0, "", "")
        )
        rc, out, _ = self.tool(1, "pfetch", "pers1", "huge")
        self.assertEqual((rc, len(out)), (0, 120001))
        self.assertAlive()
        self.assertEqual(self.tool(1, "getdbmap")[0], 0)

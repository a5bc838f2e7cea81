# -*- test-case-name: tests.integration.test_helpers -*-
"""
Samba's CTDB test helper programs (``ctdb/tests/src`` in Samba 4.17),
written again on txctdb's client API, with the command lines, output and
exit codes that Samba's INTEGRATION tests expect:

================================  ==========================================
console script                    module
================================  ==========================================
``dummy_client``                  L{ctdb.helpers.dummy_client}
``message_ring``                  L{ctdb.helpers.message_ring}
``tunnel_test``                   L{ctdb.helpers.tunnel_test}
``fetch_ring``                    L{ctdb.helpers.fetch_ring}
``fetch_readonly``                L{ctdb.helpers.fetch_readonly}
``update_record``                 L{ctdb.helpers.update_record}
``transaction_loop``              L{ctdb.helpers.transaction_loop}
``update_record_persistent``      L{ctdb.helpers.update_record_persistent}
``ctdb-db-test``                  L{ctdb.helpers.db_test}
================================  ==========================================

They are plain clients of a ctdbd's unix socket (ours or Samba's), found
as Samba's own helpers find it (L{ctdb.helpers.common.socketPath}).
"""

from __future__ import annotations

#: The console script names, as Samba's build names the programs.
PROGRAMS = (
    "dummy_client",
    "message_ring",
    "tunnel_test",
    "fetch_ring",
    "fetch_readonly",
    "update_record",
    "transaction_loop",
    "update_record_persistent",
    "ctdb-db-test",
)

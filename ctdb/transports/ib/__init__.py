# -*- test-case-name: tests.transports.ib -*-
"""
The InfiniBand node transport: CTDB's node links over RDMA reliable
connections (ctdb/ib/ in Samba, disabled there since 4.17 as broken).

  - L{ctdb.transports.ib.verbs}: the seam (L{IVerbs} and its handles),
    pure;
  - L{ctdb.transports.ib.binding}: our ctypes binding of libibverbs and
    librdmacm, loaded only when the transport is chosen;
  - L{ctdb.transports.ib.wire}: what goes in the buffers and the
    connection manager's private data, pure;
  - L{ctdb.transports.ib.transport}: L{IBNodeTransport}, the transport
    on the reactor.

Nothing here loads a library at import: a daemon on the TCP transport
runs without any RDMA package installed.
"""

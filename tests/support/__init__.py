# -*- test-case-name: tests.integration.test_realctdbd, tests.integration.test_mixed -*-
"""
Harnesses that only the tests and the benchmarks (bench/) use, kept out of
the installed C{ctdb} package:

 - L{tests.support.realctdbd}: a local cluster of Samba's real ctdbd 4.17,
   the reference peer for interop tests and benchmarks;
 - L{tests.support.mixed}: a local cluster with some nodes on Samba's
   ctdbd and the others on ours.

Both share the node layout of L{ctdb.cluster.NodeLayout} with the user
command C{ctdb-cluster}, which stays in the product.
"""

"""
txctdb's own event daemon (Samba 4.17's ctdb-eventd, on the reactor): the
scripts of ``events/<component>/NN.name.script``, run in order with
spawnProcess (L{ctdb.events.runner}), their discovery and enabling
(L{ctdb.events.scripts}), the event protocol on ``run/eventd.socket``
(L{ctdb.events.server}, L{ctdb.events.client}) and the node's C{"eventd"}
service (L{ctdb.events.service}).
"""

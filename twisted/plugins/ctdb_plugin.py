from twisted.application.reactors import Reactor
from twisted.application.service import ServiceMaker

ctdb = ServiceMaker("CTDB", "ctdb.tap", "Clustered TDB daemon", "ctdb")

txctdb = Reactor(
    "txctdb",
    "ctdb.transports.reactor",
    "epoll with txctdb's leaner main loop (the default of `twistd ctdb`)",
)

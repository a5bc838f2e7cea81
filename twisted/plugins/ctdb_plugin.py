from twisted.application.service import ServiceMaker

ctdb = ServiceMaker("CTDB", "ctdb.tap", "Clustered TDB daemon", "ctdb")

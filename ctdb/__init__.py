"""txctdb: CTDB, the clustered TDB daemon of Samba, on Twisted."""

__version__ = "0.1.0"

"""Unit tests of the client library (L{ctdb.client}) on fakes."""

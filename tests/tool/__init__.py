"""Tests for L{ctdb.tool}: our own C{ctdb} command."""

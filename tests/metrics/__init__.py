"""Tests for L{ctdb.metrics} and the metrics sources of the subsystems."""

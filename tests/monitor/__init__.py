# -*- test-case-name: tests.monitor -*-
"""Tests of L{ctdb.monitor}."""

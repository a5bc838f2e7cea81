"""Tests for ctdb.events, the event daemon."""

"""A node's event scripts: the event daemon, lifecycle, health and notifications."""

"""Event scripts: lifecycle, health monitoring, notifications, shipped scripts."""

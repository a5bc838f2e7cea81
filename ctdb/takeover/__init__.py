"""Public-IP takeover: allocation, takeover runs and system effects."""

"""accessd.door."""

"""The daemon and its settings."""

"""End-to-end workflows called by the command line."""

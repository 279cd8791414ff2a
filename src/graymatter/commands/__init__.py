"""Subcommands of ``graymatter`` beyond the core GLM ones; each module's ``register`` adds its
commands to the parser built in :mod:`graymatter.cli` and returns their handlers."""

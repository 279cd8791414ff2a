"""Readers and writers: participants, image sets, region tables, atomic outputs, provenance."""

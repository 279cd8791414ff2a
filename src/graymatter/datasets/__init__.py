"""Templates, masks and simulated cohorts."""

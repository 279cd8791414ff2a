"""Imaging transcriptomics: AHBA expression, PLS of genes onto brain maps, spatial nulls, gene-set enrichment."""

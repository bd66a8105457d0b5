"""Ingest: read article files, find their prose, split it into sentences, and sync the index with a corpus."""

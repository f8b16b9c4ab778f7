"""The triples stage."""

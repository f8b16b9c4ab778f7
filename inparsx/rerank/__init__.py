"""The rerank stage."""

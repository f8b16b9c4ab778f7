"""Datasets: a corpus, its queries and qrels per split, resolved from a name.

``beir:<name>`` -> the BEIR folder ``$INPARSX_DATA_HOME/beir/<name>`` if it exists, else ir_datasets
``beir/<name>`` (downloaded by ir_datasets on first use); ``irds:<id>`` -> any ir_datasets id; a path -> a
local BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
"""

from inparsx.datasets.base import Dataset, resolve_dataset, split_spec

__all__ = ["Dataset", "resolve_dataset", "split_spec"]

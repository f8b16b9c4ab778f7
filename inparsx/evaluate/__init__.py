"""The evaluate stage: runs scored against qrels (nDCG@10, MRR@10, recall@k, MAP) with ranx, plus paired
significance tests against a baseline run. See :mod:`inparsx.evaluate.ranx_evaluator` for the conventions."""

"""``inparsx sweep``: many runs of one recipe (a grid of options, named variants, several seeds) sharing every
stage they have in common, then one table of mean ± sd over seeds with paired tests, a JSON file and an HTML
report.

- :mod:`inparsx.sweep.spec`: the sweep file (TOML, validated by pydantic) and ``--grid``/``--seeds``, expanded
  into runs, each a list of ``--set`` items of the base recipe and a run folder; :mod:`inparsx.sweep.values`
  parses the command line's values, :mod:`inparsx.sweep.layout` the table's extra rows and tests.
- :mod:`inparsx.sweep.execute`: running the runs in one process with a shared stage store
  (:mod:`inparsx.store`), skipping finished ones; or printing one ``inparsx run`` command per run
  (``--dry-run``) for a cluster scheduler.
- :mod:`inparsx.sweep.collect`: reading the runs' folders into the aggregate table (``--collect``).
- :mod:`inparsx.sweep.report`: ``sweep.json``, ``table.txt`` and ``report.html``.
"""

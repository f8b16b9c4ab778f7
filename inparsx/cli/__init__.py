"""The ``inparsx`` command line (Typer)."""

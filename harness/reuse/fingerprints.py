"""What determines a result, as hashes (docs/reuse.md).

- An evaluation item (candidate x variant x suite): the model's content hash with how it is loaded (kind,
  device, dtype, remote code), what the evaluation reads of the suite (its whole config: template, few-shot,
  chat template, decoding and metric options; its test rows; its train rows when few-shot examples come
  from them), the evaluation settings that change predictions or scores
  (examples, batch size, memory budget, bootstrap, confidence, failure rate, seed), for a LoRA item the
  adapter's recipe, and the version of the code path.
- An adapter's recipe: the model, the candidate's LoRA settings, the training data (the suite's train and
  validation rows and what turns them into examples), the seed and the training code's version.

The code version is the harness version, a number per code path (CODE_PATHS: raise it in the commit that
changes what a path computes) and the versions of the libraries that compute (torch, transformers, peft,
the metric packages).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import models
from harness.config import CandidateConfig, ExperimentConfig
from harness.provenance import versions
from harness.suites import Suite

CodePath = Literal["evaluate", "train", "lmeval"]
CODE_PATHS: dict[CodePath, int] = {"evaluate": 3, "train": 1, "lmeval": 1}
# evaluate 2: inputs cut only by `truncate`; 3: output head and linear layers through oneDNN on the CPU
# suite settings that do not change the training examples (the rest, and the train/validation rows, do)
NOT_TRAINING = {"description", "checks", "metrics", "generation", "truncate"}
EVALUATION_FIELDS = ("batch_size", "max_examples", "bootstrap_resamples", "confidence", "max_failure_rate",
                     "max_memory_gb")


def digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def code_version(path: CodePath) -> str:
    return digest({"path": path, "number": CODE_PATHS[path], "versions": versions()})


def _model_content(ref: str) -> str:
    return models.fingerprint(models.resolve(ref))


def model_fingerprint(cfg: ExperimentConfig, candidate: CandidateConfig) -> str:
    """The candidate's weights (content hash, read from disk without loading) and how they are loaded."""
    return digest({"content": _model_content(candidate.model), "kind": candidate.kind,
                   "device": models.choose_device(cfg.device), "dtype": cfg.dtype,
                   "trust_remote_code": cfg.trust_remote_code})


def training_data_fingerprint(suite: Suite) -> str:
    rows = {split: suite.rows.get(split, []) for split in ("train", "validation")}
    return digest({"config": suite.config.model_dump(mode="json", exclude=NOT_TRAINING),
                   "labels": suite.config.label_values, "rows": rows})


def evaluation_data_fingerprint(suite: Suite) -> str:
    """What an evaluation of the suite reads: its whole config, the test rows, and the train rows only when
    few-shot examples are drawn from them."""
    rows = {"test": suite.rows.get("test", [])}
    if suite.config.few_shot.k:
        rows["train"] = suite.rows.get("train", [])
    return digest({"config": suite.config.model_dump(mode="json", exclude={"description", "checks"}),
                   "labels": suite.config.label_values, "rows": rows})


def recipe_fingerprint(cfg: ExperimentConfig, candidate: CandidateConfig, suite: Suite, model: str) -> str:
    return digest({"model": model, "lora": cfg.lora_for(candidate).model_dump(mode="json"),
                   "data": training_data_fingerprint(suite), "seed": cfg.seed, "code": code_version("train")})


@dataclass(frozen=True)
class ItemFingerprint:
    """An item's fingerprint and, for a LoRA item, its adapter's recipe."""

    item: str
    recipe: str | None = None


def folder_fingerprint(folder: Path | None) -> str | None:
    """The files under a folder (an lm-eval include_path: task YAML and Python), names and bytes."""
    if folder is None:
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return models.hash_files(files) + ":" + ",".join(str(p.relative_to(folder)) for p in files)


def lmeval_fingerprint(cfg: ExperimentConfig, variant: str, task: str, model: str, recipe: str | None,
                       include: Path | None) -> ItemFingerprint:
    """An lm-eval task's item: the model, the adapter's recipe (the `adapter_from` suite's), the task's name,
    the experiment's lmeval settings and include_path files, lm-eval's version (in the code version)."""
    settings = cfg.lmeval.model_dump(mode="json", exclude={"tasks", "include_path"})
    evaluation = {name: getattr(cfg.evaluation, name) for name in ("max_examples", "bootstrap_resamples",
                                                                     "confidence")}
    item = digest({"model": model, "variant": variant, "recipe": recipe, "task": task, "settings": settings,
                   "include": folder_fingerprint(include), "evaluation": evaluation, "seed": cfg.seed,
                   "code": code_version("lmeval")})
    return ItemFingerprint(item, recipe)


def item_fingerprint(cfg: ExperimentConfig, candidate: CandidateConfig, variant: str, suite: Suite,
                     model: str) -> ItemFingerprint:
    recipe = recipe_fingerprint(cfg, candidate, suite, model) if variant == "lora" else None
    evaluation = {name: getattr(cfg.evaluation, name) for name in EVALUATION_FIELDS}
    item = digest({"model": model, "variant": variant, "recipe": recipe, "suite": evaluation_data_fingerprint(suite),
                   "evaluation": evaluation, "seed": cfg.seed, "code": code_version("evaluate")})
    return ItemFingerprint(item, recipe)

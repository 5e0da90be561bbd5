"""Typed records that cross stage boundaries: what the runner hands the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from harness.kinds import ItemStatus, ModelKind, RunStatus, Variant


@dataclass
class RunRecord:
    run_id: str
    name: str
    experiment_path: str
    config_json: str
    config_hash: str
    seed: int
    git_commit: str | None
    git_dirty: bool | None
    versions_json: str
    command: str
    status: RunStatus = "running"
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None


@dataclass
class Prediction:
    """What a model produced for one example."""

    example_id: str
    input: str
    reference: str
    output: str
    choice_index: int | None = None
    choice_scores: list[float] | None = None
    latency_s: float = 0.0
    error: str | None = None
    raw_output: str | None = None  # the whole generation, kept when the suite extracts an answer from it
    extracted: bool | None = None  # did the suite's `extract` regex match (None: no extractor)
    reference_list: list[str] | None = None  # every reference, where the suite gives several (docs/suites.md)


@dataclass
class MetricStats:
    """Per-example sufficient statistics of one metric, in prediction order."""

    metric: str
    options_json: str
    stat_names: list[str]
    stats: np.ndarray


@dataclass
class Score:
    metric: str
    options_json: str
    score: str
    value: float
    low: float
    high: float
    n: int
    method: str
    confidence: float
    signature: str | None = None


@dataclass
class ItemResult:
    """Everything one work item (candidate x variant x suite) produced."""

    run_id: str
    candidate: str
    variant: Variant
    suite: str
    status: ItemStatus
    reason: str | None = None
    dataset_fingerprint: str | None = None
    predictions: list[Prediction] = field(default_factory=list)
    stats: list[MetricStats] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    wall_s: float = 0.0
    model_s: float = 0.0
    fingerprint: str | None = None  # what determined the result (harness/reuse.py); equal -> reusable
    reused_from: str | None = None  # the run whose stored result this item copied
    n_truncated: int = 0  # inputs cut to the suite's `truncate` length
    n_near_ties: int = 0  # generations where the top two logits were within the near-tie margin


@dataclass
class CandidateInfo:
    run_id: str
    candidate: str
    model_ref: str
    kind: ModelKind
    fingerprint: str
    total_params: int


@dataclass
class TrainingResult:
    """A trained LoRA adapter for (candidate, suite) and how training went."""

    run_id: str
    candidate: str
    suite: str
    adapter_path: str
    adapter_hash: str
    trainable_params: int
    total_params: int
    steps: int
    train_tokens: int
    tokens_per_s: float
    wall_s: float
    peak_memory_mb: float
    final_train_loss: float
    final_val_loss: float | None
    log: list[dict] = field(default_factory=list)  # {step, split, loss, elapsed_s}
    recipe_fingerprint: str | None = None  # base model + LoRA settings + training data + seed (harness/reuse.py)
    reused_from: str | None = None  # the run that trained this adapter, when this run reused it

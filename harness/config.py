"""Experiment and suite schemas (pydantic) and loading them from YAML."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from harness.kinds import ModelKindChoice, SuiteKind, Variant
from harness.yamlfile import FieldError, load_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraConfig(Strict):
    """LoRA settings; a candidate may override any of them."""

    rank: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["auto"] = "auto"
    learning_rate: float = Field(2e-4, gt=0)
    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=8)
    eval_every: int = Field(20, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_train_examples: int | None = Field(None, ge=1)
    max_eval_examples: int = Field(64, ge=1)
    group_by_length: bool = True

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> LoraConfig:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            self.epochs = 1.0
        return self


class CandidateConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    model: str
    kind: ModelKindChoice = "auto"
    lora: dict[str, Any] = Field(default_factory=dict)

    @field_validator("lora")
    @classmethod
    def _known_lora_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Overrides are a plain dict (merged later); catch a misspelt key now, not mid-run."""
        import difflib

        for key in value:
            if key not in LoraConfig.model_fields:
                close = difflib.get_close_matches(key, list(LoraConfig.model_fields), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ValueError(f"unknown LoRA setting '{key}'{hint}")
        return value


class EvaluationConfig(Strict):
    batch_size: int = Field(16, ge=1)
    max_examples: int | None = Field(None, ge=1)
    bootstrap_resamples: int = Field(1000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    max_failure_rate: float = Field(0.05, ge=0, le=1)
    # memory budget of prediction batches (harness/predict/memory.py); None: half the device's memory
    max_memory_gb: float | None = Field(None, gt=0)


class LmEvalConfig(Strict):
    """lm-evaluation-harness tasks run on the same candidates (see docs/experiments.md)."""

    tasks: list[str] = Field(default_factory=list)
    include_path: str | None = None
    limit: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    adapter_from: str | None = None  # the native suite whose LoRA adapter the lora variant uses


class ExecutorConfig(Strict):
    """Where work items run: `local` (this process, one after another) or `ray` (tasks on a Ray cluster;
    docs/scale-out.md). `address`: `auto` (a running cluster), HOST:PORT, or null (start a local one)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    gpus_per_item: float | Literal["auto"] = "auto"  # auto: 1 if the cluster has GPUs, else 0
    cpus_per_item: float = Field(1.0, gt=0)
    max_retries: int = Field(2, ge=0)


class ExperimentConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    candidates: list[CandidateConfig] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=lambda: ["base", "lora"], min_length=1)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    suites: list[str] = Field(default_factory=list)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    lmeval: LmEvalConfig = Field(default_factory=LmEvalConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, value: list[CandidateConfig]) -> list[CandidateConfig]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> ExperimentConfig:
        if not self.suites and not self.lmeval.tasks:
            raise ValueError("list at least one suite under 'suites' (or an lm-eval task under 'lmeval.tasks')")
        return self

    @model_validator(mode="after")
    def _candidate_lora_valid(self) -> ExperimentConfig:
        from pydantic import ValidationError

        for index, candidate in enumerate(self.candidates):
            try:
                self.lora_for(candidate)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = "lora" + "".join(f".{p}" for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                raise FieldError(("candidates", index, "lora", *err["loc"]),
                                 f"candidate '{candidate.name}': {where}: {msg}") from None
        return self

    def lora_for(self, candidate: CandidateConfig) -> LoraConfig:
        """The experiment's LoRA settings with the candidate's overrides applied."""
        merged = {**self.lora.model_dump(exclude={"steps", "epochs"}), **candidate.lora}
        if "steps" not in candidate.lora and "epochs" not in candidate.lora:
            merged["steps"], merged["epochs"] = self.lora.steps, self.lora.epochs
        return LoraConfig.model_validate(merged)

    def config_hash(self) -> str:
        # where items run does not change their results: a run started locally resumes on Ray and back
        blob = json.dumps(self.model_dump(mode="json", exclude={"executor"}), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class SuiteData(Strict):
    """Where a suite's rows come from. Paths are relative to the suite file."""

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    source: str | None = None
    hf_dataset: str | None = None
    hf_config: str | None = None
    split_seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> SuiteData:
        if not (self.test or self.source or self.hf_dataset):
            raise ValueError("give 'test' (with optional 'train' and 'validation'), 'source' or 'hf_dataset'")
        return self


class FewShot(Strict):
    k: int = Field(0, ge=0)
    seed: int = 0
    separator: str = "\n\n"


class GenerationOptions(Strict):
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n\n"])
    extract: str | None = None
    max_extract_miss_rate: float = Field(1.0, ge=0.0, le=1.0)  # an item fails when more generations miss `extract`

    @field_validator("extract")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        import re

        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class TruncateOptions(Strict):
    """Where the suite allows cutting long inputs (harness/predict/truncation.py): to `max_input_tokens`
    tokens of the prompt as the model sees it, removing tokens from `side` (left: the start, keeping the end
    where the question or "Summary:" is; right: the end)."""

    max_input_tokens: int = Field(ge=1)
    side: Literal["left", "right"] = "left"


class MetricRef(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


LabelValue = StrictBool | StrictInt | StrictStr  # a label as the data has it (bool before int: true is no 1)


def label_name(value: LabelValue) -> str:
    """The name a model sees for a label value given without a name (`true`, `3`, `positive`)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class DataChecks(Strict):
    """`harness data check` settings (docs/suites.md, "Data checks"). A `fail_*` threshold turns that
    check's warning into an error once the share of a split's rows it finds exceeds the threshold."""

    near_duplicate: float = Field(0.8, gt=0, le=1)  # Jaccard of word shingles at which rows are near duplicates
    shingle: int = Field(3, ge=1)  # words per shingle
    max_chars: int = Field(4000, ge=1)  # longer rows are over-long
    max_label_share: float = Field(0.8, gt=0, le=1)  # a label above this share of a split is a warning
    fail_overlap: float | None = Field(None, ge=0, le=1)
    fail_label_share: float | None = Field(None, ge=0, le=1)
    fail_empty: float | None = Field(None, ge=0, le=1)
    fail_long: float | None = Field(None, ge=0, le=1)
    fail_duplicate: float | None = Field(None, ge=0, le=1)


class SuiteConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: SuiteKind
    description: str = ""
    data: SuiteData
    fields: dict[str, str | list[str]] = Field(default_factory=dict)
    # names in index order, or {name: value as the data has it}; normalised to the names (label_values: the values)
    labels: list[LabelValue] | dict[str, LabelValue] | None = None
    checks: DataChecks = Field(default_factory=DataChecks)
    _label_values: list[LabelValue] = PrivateAttr(default_factory=list)
    template: str
    choice_template: str = " {{ choice }}"
    few_shot: FewShot = Field(default_factory=FewShot)
    chat_template: Literal["auto", "on", "off"] = "auto"
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    truncate: TruncateOptions | None = None  # None: an input longer than the model's context is an error
    metrics: list[MetricRef] = Field(min_length=1)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and "name" in item and "options" not in item:
                out.append({"name": item["name"], "options": {k: v for k, v in item.items() if k != "name"}})
            else:
                out.append(item)
        return out

    @field_validator("truncate", mode="before")
    @classmethod
    def _truncate_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"got {value!r}; give a mapping: {{max_input_tokens: N, side: left or right}}")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> SuiteConfig:
        need: dict[SuiteKind, list[str]] = {"classification": ["label"], "multiple_choice": ["choices", "answer"],
                                            "generation": ["reference"]}
        for role in need[self.kind]:
            self.fields.setdefault(role, role)
        for role, column in self.fields.items():
            if isinstance(column, list) and (role != "reference" or not column):
                raise FieldError(("fields", role), f"fields.{role}: give one column name"
                                 + ("" if column else " (the list is empty)")
                                 + ("; only 'reference' takes a list of columns" if column else ""))
        if self.kind == "classification" and not self.labels:
            raise FieldError(("kind",), "kind: a classification suite needs 'labels' (the label names, in index order, "
                             "or {name: value} as the data has them)")
        if self.labels:
            self._normalise_labels()
        return self

    def _normalise_labels(self) -> None:
        given = self.labels or []
        if isinstance(given, dict):
            names, values = list(given), list(given.values())
        else:
            names, values = [label_name(v) for v in given], list(given)
        for what, seen in (("name", names), ("value", [(type(v), v) for v in values])):
            dupes = sorted({str(x) for x in seen if seen.count(x) > 1})
            if dupes:
                raise FieldError(("labels",), f"labels: a label {what} is repeated ({', '.join(dupes)}); "
                                 "give each label once")
        self.labels = names
        self._label_values = values

    @field_validator("labels", mode="before")
    @classmethod
    def _no_yaml_boolean_names(cls, value: Any) -> Any:
        """`{no: false, yes: true}` in YAML 1.1 has boolean keys: name them as quoted strings."""
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ValueError(f"label name {key!r} is not a string (YAML reads unquoted yes/no/on/off/"
                                     f"true/false and numbers as values); quote it, e.g. \"{label_name(key)}\"")
        return value

    @property
    def label_values(self) -> list[LabelValue]:
        """The labels as the data has them (the names where the suite gave a plain list of names)."""
        return list(self._label_values) or list(self.labels or [])


def load_experiment(path: str | Path) -> ExperimentConfig:
    return load_model(Path(path), ExperimentConfig)


def load_suite_config(path: str | Path) -> SuiteConfig:
    return load_model(Path(path), SuiteConfig)

"""Experiment and suite schemas (pydantic) and loading them from YAML."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    kind: Literal["auto", "causal", "encoder"] = "auto"
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


class LmEvalConfig(Strict):
    """lm-evaluation-harness tasks run on the same candidates (see docs/experiments.md)."""

    tasks: list[str] = Field(default_factory=list)
    include_path: str | None = None
    limit: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    adapter_from: str | None = None  # the native suite whose LoRA adapter the lora variant uses


class ExperimentConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False
    candidates: list[CandidateConfig] = Field(min_length=1)
    variants: list[Literal["base", "lora"]] = Field(default_factory=lambda: ["base", "lora"], min_length=1)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    suites: list[str] = Field(default_factory=list)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    lmeval: LmEvalConfig = Field(default_factory=LmEvalConfig)

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
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
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


class MetricRef(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class SuiteConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal["classification", "multiple_choice", "generation"]
    description: str = ""
    data: SuiteData
    fields: dict[str, str] = Field(default_factory=dict)
    labels: list[str] | None = None
    template: str
    choice_template: str = " {{ choice }}"
    few_shot: FewShot = Field(default_factory=FewShot)
    chat_template: Literal["auto", "on", "off"] = "auto"
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
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

    @model_validator(mode="after")
    def _kind_needs(self) -> SuiteConfig:
        need = {"classification": ["label"], "multiple_choice": ["choices", "answer"], "generation": ["reference"]}
        for role in need[self.kind]:
            self.fields.setdefault(role, role)
        if self.kind == "classification" and not self.labels:
            raise FieldError(("kind",), "kind: a classification suite needs 'labels' (the label names, in index order)")
        return self


def load_experiment(path: str | Path) -> ExperimentConfig:
    return load_model(Path(path), ExperimentConfig)


def load_suite_config(path: str | Path) -> SuiteConfig:
    return load_model(Path(path), SuiteConfig)

"""Which items of a run are done, reused from another run of the store, or computed; and which adapters are
reused rather than trained. `decide` reads only; `apply` copies the reused items into the run; `plan_run` is
`harness run --plan`: the run a `harness run` would continue and each item's action, not-applicable items marked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from harness import models
from harness.config import ExperimentConfig
from harness.executors.local import NO_ADAPTER_FROM, NOT_CAUSAL, not_applicable_reason
from harness.kinds import Variant
from harness.lmeval.records import SUITE_PREFIX, suite_name
from harness.models import hash_files
from harness.reuse.fingerprints import (
    ItemFingerprint,
    item_fingerprint,
    lmeval_fingerprint,
    model_fingerprint,
    recipe_fingerprint,
)
from harness.store import Store
from harness.suites import Suite

Action = Literal["done", "reuse", "compute"]
Key = tuple[str, str, str]  # candidate, variant, suite


@dataclass(frozen=True)
class WorkItem:
    """One native item of a run."""

    candidate: str
    variant: Variant
    suite: str

    @property
    def key(self) -> Key:
        return self.candidate, self.variant, self.suite


def native_items(cfg: ExperimentConfig, suites: list[Suite]) -> list[WorkItem]:
    """The native items, candidate-major (each model is loaded once); the variants in order for each suite."""
    return [WorkItem(c.name, v, s.name) for c in cfg.candidates for s in suites for v in cfg.variants]


@dataclass(frozen=True)
class Decision:
    """One native item: what happens to it, the stored result it copies (`source`, a run id), and for a LoRA
    item that is computed, the run whose adapter it uses instead of training one (`adapter_from`)."""

    key: Key
    fingerprint: ItemFingerprint
    action: Action
    source: str | None = None
    adapter_from: str | None = None
    not_applicable: str | None = None  # why the item cannot run on this candidate (it is recorded as such)

    @property
    def label(self) -> str:
        return " / ".join(self.key)

    def describe(self) -> str:
        if self.not_applicable and self.action == "compute":
            return f"not applicable ({self.not_applicable})"
        if self.action == "done":
            return "done in this run"
        if self.action == "reuse":
            return f"reuse from run {self.source}"
        if self.key[1] != "lora":
            return "compute"
        if self.adapter_from:
            return f"compute with the adapter of run {self.adapter_from}"
        return "compute (train adapter)"


@dataclass(frozen=True)
class ReusePlan:
    decisions: list[Decision]

    def by_key(self) -> dict[Key, Decision]:
        return {d.key: d for d in self.decisions}

    def adapters_ready(self) -> set[tuple[str, str]]:
        """(candidate, suite) of the LoRA items to compute with another run's adapter (nothing to train)."""
        return {(d.key[0], d.key[2]) for d in self.decisions if d.action == "compute" and d.adapter_from}

    def count(self, action: Action) -> int:
        return sum(1 for d in self.decisions if d.action == action)

    def summary(self) -> str:
        trained = {(d.key[0], d.key[2]) for d in self.decisions if d.action == "compute" and d.key[1] == "lora"
                   and not d.adapter_from and not d.not_applicable}
        adapters = {(d.key[0], d.key[2]) for d in self.decisions if d.action == "compute" and d.adapter_from}
        na = sum(1 for d in self.decisions if d.action == "compute" and d.not_applicable)
        return (f"{len(self.decisions)} items: {self.count('reuse')} reused, {self.count('compute') - na} to compute, "
                f"{na} not applicable, {self.count('done')} done in this run; {len(trained)} adapters to train, "
                f"{len(adapters)} reused")


@dataclass(frozen=True)
class LmevalItems:
    """The experiment's lm-eval leaf tasks (items `lmeval:<task>`) and its include_path folder."""

    leaves: list[str]
    include: Path | None = None


def decide(store: Store | None, run_id: str | None, cfg: ExperimentConfig, suites: list[Suite],
           done: Iterable[Key] = (), reuse: bool = True, lmeval: LmevalItems | None = None) -> ReusePlan:
    """Every item of the experiment with its fingerprint and action. `store` None (no store yet) or `reuse`
    False: nothing is reused. `run_id`: the run the items belong to (None: a new run)."""
    done, me = set(done), run_id or ""
    lookup = store if reuse else None
    decisions = []
    by_name = {s.name: s for s in suites}
    for candidate in cfg.candidates:
        model = model_fingerprint(cfg, candidate)
        for suite in suites:
            for variant in cfg.variants:
                fp = item_fingerprint(cfg, candidate, variant, suite, model)
                decisions.append(_decision((candidate.name, variant, suite.name), fp, done, lookup, me))
        adapter_suite = by_name.get(cfg.lmeval.adapter_from or "")
        for task in lmeval.leaves if lmeval else []:
            for variant in cfg.variants:
                recipe = recipe_fingerprint(cfg, candidate, adapter_suite, model) \
                    if variant == "lora" and adapter_suite else None
                fp = lmeval_fingerprint(cfg, variant, task, model, recipe, lmeval.include)  # type: ignore[union-attr]
                decisions.append(_decision((candidate.name, variant, suite_name(task)), fp, done, lookup, me,
                                           native=False))
    return ReusePlan(decisions)


def _decision(key: Key, fp: ItemFingerprint, done: set[Key], store: Store | None, me: str,
              native: bool = True) -> Decision:
    if key in done:
        return Decision(key, fp, "done")
    source = store.item_source(fp.item, me) if store is not None else None
    adapter = None
    if source is None and fp.recipe and native and store is not None:
        adapter = _adapter_source(store, fp.recipe, me)
    return Decision(key, fp, "reuse" if source else "compute", source, adapter)


def _adapter_source(store: Store, recipe: str, exclude_run: str) -> str | None:
    """The newest other run with an adapter of this recipe whose files are still there, unchanged."""
    for row in store.adapter_sources(recipe, exclude_run):
        folder = Path(str(row["adapter_path"]))
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        if files and hash_files(files) == row["adapter_hash"]:
            return str(row["run_id"])
    return None


def apply(store: Store, run_id: str, plan: ReusePlan) -> set[Key]:
    """Copy every reused item (and a reused LoRA item's adapter row) into the run, and the adapter rows that
    computed LoRA items will use; the keys now done."""
    copied: set[Key] = set()
    have_adapter: set[tuple[str, str]] = set()
    for d in plan.decisions:
        if d.action == "reuse" and d.source:
            native_lora = d.key[1] == "lora" and not d.key[2].startswith(SUITE_PREFIX)
            store.copy_item(d.source, run_id, d.key, with_adapter=native_lora)
            copied.add(d.key)
        elif d.action == "compute" and d.adapter_from and (d.key[0], d.key[2]) not in have_adapter:
            if store.adapter(run_id, d.key[0], d.key[2]) is None:
                store.copy_adapter(d.adapter_from, run_id, d.key[0], d.key[2])
            have_adapter.add((d.key[0], d.key[2]))
    return copied


class Planned(Protocol):
    """What planning reads of a checked experiment (`harness.runner.Prepared`)."""

    @property
    def cfg(self) -> ExperimentConfig: ...

    @property
    def suites(self) -> list[Suite]: ...

    def lmeval_items(self) -> LmevalItems | None: ...


def plan_run(prepared: Planned, store: Store | None, resume: str | None = None, fresh: bool = False,
             reuse: bool = True) -> tuple[str | None, ReusePlan]:
    """What `run_experiment` would do, writing nothing: the run it would continue (None: a new one) and each
    item's action, the items that cannot run on their candidate marked not applicable. `store` None: there is
    no store yet, so nothing is done or reusable."""
    cfg = prepared.cfg
    run_id = None
    if store is not None and resume:
        run_id = store.resolve_run(resume)
    elif store is not None and not fresh:
        run_id = store.find_unfinished_run(cfg.config_hash())
    done = store.done_items(run_id) if store is not None and run_id else set()
    plan = decide(store, run_id, cfg, prepared.suites, done, reuse, prepared.lmeval_items())
    return run_id, mark_not_applicable(plan, cfg, prepared.suites)


def mark_not_applicable(plan: ReusePlan, cfg: ExperimentConfig, suites: list[Suite]) -> ReusePlan:
    """The plan with each item that cannot run on its candidate's kind (known without loading it) marked so."""
    kinds = {c.name: models.kind_of(c.model, c.kind, cfg.trust_remote_code) for c in cfg.candidates}
    by_name = {s.name: s for s in suites}

    def why_not(key: Key) -> str | None:
        kind = kinds[key[0]]
        if key[2] in by_name:
            return not_applicable_reason(kind, by_name[key[2]]) if kind else None
        if kind and kind != "causal":
            return NOT_CAUSAL
        return NO_ADAPTER_FROM if key[1] == "lora" and cfg.lmeval.adapter_from is None else None

    return ReusePlan([replace(d, not_applicable=why_not(d.key)) for d in plan.decisions])


def reused_line(items) -> str | None:
    """One line for under a run's table (`items`: its items frame) when some items were reused."""
    if "reused_from" not in items:
        return None
    sources = items["reused_from"].dropna()
    if sources.empty:
        return None
    runs = ", ".join(dict.fromkeys(str(s) for s in sources))
    return f"reused: {len(sources)} of {len(items)} items copied from run {runs} (`harness run --plan` explains)"

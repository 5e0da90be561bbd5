"""The statuses and kinds that cross modules, spelt once: use these in signatures, records and schemas, so that
a misspelt status or kind is a type error, not a silent mismatch in a comparison. It imports nothing of
harness, so every layer (config and records included) may import it."""

from __future__ import annotations

from typing import Literal, get_args

# a work item (candidate x variant x suite): done, or recorded as not applicable (an encoder on a generation
# suite), or failed (its reason says why)
ItemStatus = Literal["done", "not_applicable", "failed"]
# a run's row: running until it finishes; failed when any item failed or the run stopped on an error
RunStatus = Literal["running", "finished", "failed"]
# seq2seq: an encoder-decoder LM (T5, BART), detected from `config.is_encoder_decoder`
ModelKind = Literal["causal", "encoder", "seq2seq"]
# a candidate's `kind:`; auto reads the model's config
ModelKindChoice = Literal["auto", "causal", "encoder", "seq2seq"]
SuiteKind = Literal["classification", "multiple_choice", "generation"]
Variant = Literal["base", "lora"]

ITEM_STATUSES: tuple[ItemStatus, ...] = get_args(ItemStatus)
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)
SUITE_KINDS: tuple[SuiteKind, ...] = get_args(SuiteKind)
VARIANTS: tuple[Variant, ...] = get_args(Variant)

"""2b. Speculative generation: prompt-lookup decoding against lm-eval's `generate_until` and plain greedy.

The first 100 SAMSum dialogues (32 with --quick), SmolLM2-135M-Instruct, the prompts, stop sequence,
max_new_tokens and batch size of bench/generation.py. Three sides alternate in one process: the
harness with speculation (the default), the harness decoding one token per forward pass, and
lm-eval. Every output that differs from lm-eval's or from plain greedy's is listed with whether the
harness flagged a near tie in it (an argmax within the tie margin, harness/predict/speculative.py).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import Row, alternate, child_main, offline, paired_ratio, seconds
from bench.generation import BATCH_SIZE, MAX_NEW_TOKENS, MODEL, lmeval_side, write_configs

N = (100, 32)  # full, quick
REPS = (2, 1)  # $BENCH_REPS overrides (a busy machine); $BENCH_SPECULATIVE_PLAIN=0 leaves out the plain side
TARGET = 1.5


def harness_side(loaded: Any, suite_path: Path, n: int, speculate: bool) -> tuple[list[str], list[str], Any]:
    from harness.predict import DecodingStats, Predictor, predict
    from harness.suites import load_suite

    suite = load_suite(str(suite_path))
    predictor = Predictor(loaded.model, loaded.tokenizer, "causal", loaded.device)
    stats = DecodingStats()
    preds = predict(predictor, suite, suite.examples("test", n), BATCH_SIZE, stats=stats, speculate=speculate)
    return [p.input for p in preds], [p.output for p in preds], stats


def differences(prompts: list[str], ours: list[str], other: list[str], flagged: set[str]) -> list[dict]:
    return [{"row": i, "near_tie_flagged": prompts[i] in flagged, "ours": a[:80], "other": b[:80]}
            for i, (a, b) in enumerate(zip(ours, other, strict=True)) if a.strip() != b.strip()]


def run(quick: bool) -> list[Row]:
    offline()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from harness import models

    loaded = models.load(MODEL, device="cpu")
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=BATCH_SIZE)
    n, reps = N[1 if quick else 0], int(os.environ.get("BENCH_REPS") or REPS[1 if quick else 0])
    with tempfile.TemporaryDirectory(prefix="bench-speculative-") as tmp:
        suite_path, task_dir = write_configs(Path(tmp))
        manager = TaskManager(include_path=str(task_dir), include_defaults=False)
        sides = {"speculative": lambda: harness_side(loaded, suite_path, n, True),
                 "plain": lambda: harness_side(loaded, suite_path, n, False),
                 "lm-eval": lambda: lmeval_side(lm, manager, n)}
        if os.environ.get("BENCH_SPECULATIVE_PLAIN") == "0":
            del sides["plain"]
        times, outputs = alternate(sides, reps)
    prompts, fast, stats = outputs["speculative"]
    _, plain, plain_stats = outputs.get("plain") or (None, None, None)
    return rows(n, reps, times, outputs, (prompts, fast, stats), (plain, plain_stats))


def rows(n: int, reps: int, times: dict, outputs: dict, ours: tuple, plain_side: tuple) -> list[Row]:
    prompts, fast, stats = ours
    plain, plain_stats = plain_side
    their_prompts, theirs = outputs["lm-eval"]
    flagged = set(stats.near_tie_inputs)
    vs_lmeval = differences(prompts, fast, theirs, flagged)
    vs_plain = differences(prompts, fast, plain, flagged) if plain is not None else []
    same_prompt = sum(a == b for a, b in zip(prompts, their_prompts, strict=True))
    ratio = paired_ratio(times["lm-eval"], times["speculative"])
    case = f"samsum ({n} dialogues, batch {BATCH_SIZE}, max_new_tokens {MAX_NEW_TOKENS}, {reps} repetition(s))"
    versus_plain = (f", as plain greedy {n - len(vs_plain)}/{n}" if plain is not None else "")
    passes = f" vs {plain_stats.forward_passes}" if plain_stats is not None else ""
    check = (f"same prompt {same_prompt}/{n}; same output as lm-eval {n - len(vs_lmeval)}/{n}{versus_plain}; "
             f"near ties flagged {stats.near_tie_rows}; forward passes {stats.forward_passes}{passes} for "
             f"{stats.new_tokens} tokens, drafts accepted {stats.accepted}/{stats.drafted}")
    raw = {"times": times, "n": n, "differing_vs_lmeval": vs_lmeval, "differing_vs_plain": vs_plain,
           "stats": vars(stats) | {"near_tie_inputs": len(stats.near_tie_inputs)},
           "plain_forward_passes": plain_stats.forward_passes if plain_stats is not None else None}
    out = [
        Row("speculative", case + ", speculative vs lm-eval", seconds(times["speculative"]), seconds(times["lm-eval"]),
            ratio, f">= {TARGET}x, >= 99/100 same", ratio.median >= TARGET and len(vs_lmeval) <= n // 100, check,
            raw=raw),
    ]
    if plain is not None:
        out.append(Row("speculative", case + ", speculative vs plain greedy (harness)", seconds(times["speculative"]),
                       seconds(times["plain"]), paired_ratio(times["plain"], times["speculative"]), "-", None,
                       f"same output {n - len(vs_plain)}/{n}"))
    return out


if __name__ == "__main__":
    child_main(run, __doc__)

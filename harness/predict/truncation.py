"""Fitting prompts to the model: cut only where the suite says so (`truncate`), else refuse what does not fit.

A prompt is measured in tokens as the model sees it (chat template, few-shot demonstrations and, for
encoders and encoder-decoders, the tokenizer's special tokens included). Without the suite's
`truncate`, a prompt that with what the model still has to read or write after it (`reserve`: the new
tokens of a generation, the longest choice of a scored example) does not fit the model's context is a
per-example error that names `truncate`. With `truncate: {max_input_tokens: N, side: left|right}`, a
longer prompt loses tokens from that side of its content (the text inside any chat template, so the
template's own tokens stay) until the whole prompt is at most N tokens; the cut text is the prompt the
model sees and the one stored. The caller counts the cut prompts (`ItemResult.n_truncated`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.config import TruncateOptions

SANE_MAX = 10_000_000  # tokenizers without a limit report a huge model_max_length
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
HINT = "set the suite's `truncate: {max_input_tokens: N, side: left}` to cut long inputs (docs/suites.md)"


@dataclass(frozen=True)
class Fitted:
    """One example's prompt as the model will see it, or why it cannot."""

    text: str
    tokens: int
    truncated: bool = False
    error: str | None = None


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens the model reads at once: the smallest limit its config and tokenizer give (None: none)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    limits = [getattr(config, name, None) for name in _CONTEXT_FIELDS]
    limits.append(getattr(tokenizer, "model_max_length", None))
    known = [int(v) for v in limits if isinstance(v, int) and not isinstance(v, bool) and 0 < v < SANE_MAX]
    return min(known) if known else None


def fit_prompt(tokenizer: Any, content: str, build: Callable[[str], str], truncate: TruncateOptions | None,
               context: int | None, reserve: int = 0, special_tokens: bool = False) -> Fitted:
    """`build(content)` within the suite's truncate length and the model's context (see the module doc)."""
    def count(text: str, special: bool = special_tokens) -> int:
        return len(tokenizer(text, add_special_tokens=special)["input_ids"])

    text = build(content)
    tokens = count(text)
    if truncate is not None and tokens > truncate.max_input_tokens:
        text, tokens = _cut(tokenizer, content, build, truncate, count)
        if tokens > truncate.max_input_tokens:
            return Fitted(text, tokens, True, f"the prompt without its content is {tokens} tokens, over "
                          f"truncate.max_input_tokens {truncate.max_input_tokens}; raise it")
        fitted = Fitted(text, tokens, True)
    else:
        fitted = Fitted(text, tokens)
    if context is not None and fitted.tokens + reserve > context:
        need = f"{fitted.tokens} tokens" + (f" + {reserve} to read or write after it" if reserve else "")
        fix = (f"lower truncate.max_input_tokens to at most {context - reserve}" if truncate is not None
               else HINT)
        return Fitted(fitted.text, fitted.tokens, fitted.truncated,
                      f"input too long: {need}, over the model's context of {context} tokens; {fix}")
    return fitted


def _cut(tokenizer: Any, content: str, build: Callable[[str], str], truncate: TruncateOptions,
         count: Callable[..., int]) -> tuple[str, int]:
    """The content cut from `truncate.side` until the built prompt is at most max_input_tokens (or empty)."""
    limit = truncate.max_input_tokens
    ids = tokenizer(content, add_special_tokens=False)["input_ids"]
    keep = len(ids) - (count(build(content)) - limit)
    for _ in range(8):  # re-tokenising at the cut may merge or split a token; shrink until it fits
        text = build(_keep_tokens(tokenizer, content, ids, max(keep, 0), truncate.side))
        tokens = count(text)
        if tokens <= limit or keep <= 0:
            return text, tokens
        keep -= tokens - limit
    return text, tokens


def _keep_tokens(tokenizer: Any, content: str, ids: list[int], keep: int, side: str) -> str:
    """The content's text of its last (side left) or first (side right) `keep` tokens, cut in the string
    itself where the tokenizer gives character offsets (so no text is re-spelt), else decoded."""
    if keep >= len(ids):
        return content
    if keep == 0:
        return ""
    try:
        offsets = tokenizer(content, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError):
        offsets = None
    if offsets and len(offsets) == len(ids):
        return content[offsets[-keep][0]:] if side == "left" else content[: offsets[keep - 1][1]]
    kept = ids[-keep:] if side == "left" else ids[:keep]
    return tokenizer.decode(kept, skip_special_tokens=True)


def fit_all(tokenizer: Any, contents: list[str], build: Callable[[str], str], truncate: TruncateOptions | None,
            context: int | None, reserves: list[int] | None = None, special_tokens: bool = False) -> list[Fitted]:
    reserves = reserves or [0] * len(contents)
    return [fit_prompt(tokenizer, c, build, truncate, context, r, special_tokens)
            for c, r in zip(contents, reserves, strict=True)]


def fit_examples(predictor: Any, suite: Any, examples: list, build: Callable[[str], str]) -> list[Fitted]:
    """Each example's prompt fitted for its predictor's kind: a causal LM's `build` (chat template) and
    reserve (new tokens, or its longest choice); an encoder's or encoder-decoder's input with special tokens."""
    tok, kind = predictor.tokenizer, predictor.kind
    context = context_length(predictor.model, tok)
    if kind != "causal":
        extra = [1 + _longest_choice(tok, suite, ex) for ex in examples] if (
            kind == "encoder" and predictor.head and suite.kind == "multiple_choice") else None
        own = build if kind == "seq2seq" else (lambda text: text)  # an encoder reads the example's text as is
        return fit_all(tok, [ex.prompt for ex in examples], own, suite.config.truncate, context, extra,
                       special_tokens=True)
    if suite.kind == "generation":
        reserves = [suite.config.generation.max_new_tokens] * len(examples)
    else:
        reserves = [_longest_choice(tok, suite, ex, suite.continuation) for ex in examples]
    return fit_all(tok, [ex.prompt for ex in examples], build, suite.config.truncate, context, reserves)


def _longest_choice(tokenizer: Any, suite: Any, example: Any, spell: Callable[[str], str] | None = None) -> int:
    texts = [spell(c) if spell else suite.continuation(c).strip() for c in example.choices]
    return max((len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]), default=0) if texts else 0


def with_fitted(examples: list, fitted: list[Fitted], failed: Callable[[Any, Fitted], Any],
                run: Callable[[list, list[Fitted], Callable[[int, int], None] | None], list],
                progress: Callable[[int, int], None] | None = None) -> list:
    """Predictions in example order: `failed(example, fitted)` for a prompt that does not fit, `run` on the rest
    (its progress counted on top of the failed ones)."""
    bad = [i for i, f in enumerate(fitted) if f.error]
    good = [i for i, f in enumerate(fitted) if not f.error]
    done = None if progress is None else (lambda n, _total: progress(n + len(bad), len(examples)))
    preds = run([examples[i] for i in good], [fitted[i] for i in good], done) if good else []
    if bad and not good and progress is not None:
        progress(len(examples), len(examples))
    out = dict(zip(good, preds, strict=True)) | {i: failed(examples[i], fitted[i]) for i in bad}
    return [out[i] for i in range(len(examples))]

"""Greedy decoding with prompt-lookup speculation: fewer forward passes, the same tokens.

Summaries, extractions and translations copy much of their input. Each step drafts a row's next
tokens by finding the row's last `ngram` tokens earlier in its prompt-plus-output and proposing the
tokens that followed them there (prompt lookup, no draft model). One forward pass feeds the row's
pending token and its drafts; the model's argmax at each position says what plain greedy decoding
would have chosen next, so the longest prefix of drafts that equals those argmaxes is accepted,
plus the model's own token after it. Every emitted token is an argmax of the model given exactly the
tokens before it, so the output is plain greedy's except where floating-point noise (a different
kernel shape) flips an argmax between two near-equal logits; such near ties are counted per row
(`Decoded.near_tie_rows`).

Rows accept different numbers of drafts. The cache keeps one write offset for the whole batch: a
row's rejected drafts stay as masked slots (attention mask 0) and are squeezed out when they grow
to a large share of the cache (`InPlaceLayer.gather`). The key-value cache is preallocated and
written in place (`InPlaceLayer`) instead of being concatenated, that is copied whole, at every
step. The width of a step (how many drafts to verify) comes from a cost model: padded tokens plus
a fixed cost per forward pass, against the tokens expected from the acceptance rate seen so far.

End-of-sequence tokens, stop sequences (harness.predict.stopping) and max_new_tokens end a row at
exactly the token where plain greedy decoding (harness.predict.greedy) ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from harness.predict.choices import cache_argument
from harness.predict.greedy import TIE_MARGIN, eos_ids, plain_layers, prefill, tie_margin
from harness.predict.prefix import Prefix, shared_prefix
from harness.predict.stopping import should_stop

__all__ = ["TIE_MARGIN", "Decoded", "lookup_draft", "speculative_new_tokens", "supports", "tie_margin"]


@dataclass
class Decoded:
    """What one batch decoded: new tokens per row, forward passes spent, rows with a near tie."""

    tokens: list[list[int]]
    forward_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    near_tie_rows: list[int] = field(default_factory=list)
    tie_margin: float = 1e-3


def lookup_draft(context: Sequence[int], ngram: int, k: int) -> list[int]:
    """Up to k tokens that followed the latest earlier occurrence of the context's last n tokens.

    Tries n = ngram, ngram - 1, ..., 1 and returns the first non-empty draft.
    """
    if k <= 0:
        return []
    for n in range(min(ngram, len(context) - 1), 0, -1):
        tail = list(context[-n:])
        for start in range(len(context) - n - 1, -1, -1):
            if list(context[start:start + n]) == tail:
                return list(context[start + n:start + n + k])
    return []


class InPlaceLayer(DynamicLayer):
    """A key-value layer in a preallocated buffer: `update` writes the new states into it in place.

    The buffer grows by doubling when full (rare); rows are selected or compacted on demand.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.is_initialized, self.device = True, keys.device
        self.length = keys.shape[-2]
        self._k = self._buffer(keys, max(capacity, self.length))
        self._v = self._buffer(values, max(capacity, self.length))
        self._views()

    @classmethod
    def stacked(cls, sources: list[Any], width: int, capacity: int) -> InPlaceLayer:
        """One layer holding the sources' rows one after another, each right-aligned to `width` slots."""
        first = sources[0]
        rows = sum(s.keys.shape[0] for s in sources)
        layer = cls.__new__(cls)
        DynamicLayer.__init__(layer)
        layer.is_initialized, layer.device, layer.length = True, first.keys.device, width
        shape = (rows, first.keys.shape[1], max(capacity, width), first.keys.shape[-1])
        layer._k, layer._v = first.keys.new_zeros(shape), first.values.new_zeros(shape)
        start = 0
        for source in sources:
            n, length = source.keys.shape[0], source.keys.shape[-2]
            layer._k[start:start + n, :, width - length:width] = source.keys
            layer._v[start:start + n, :, width - length:width] = source.values
            start += n
        layer._views()
        return layer

    @staticmethod
    def _buffer(states: torch.Tensor, capacity: int) -> torch.Tensor:
        buf = states.new_zeros((*states.shape[:-2], capacity, states.shape[-1]))
        buf[..., : states.shape[-2], :] = states
        return buf

    def _views(self) -> None:
        self.keys, self.values = self._k[..., : self.length, :], self._v[..., : self.length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        end = self.length + key_states.shape[-2]
        if end > self._k.shape[-2]:
            self._k = self._buffer(self.keys, 2 * end)
            self._v = self._buffer(self.values, 2 * end)
        self._k[..., self.length:end, :] = key_states
        self._v[..., self.length:end, :] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._k, self._v = self._k[indices], self._v[indices]
        self._views()

    def gather(self, index: torch.Tensor) -> None:
        """Keep, per row, the slots `index[row]` (rows x new length), in that order, at the front."""
        width = index.shape[1]
        for name in ("_k", "_v"):
            buf = getattr(self, name)
            take = index[:, None, :, None].expand(buf.shape[0], buf.shape[1], width, buf.shape[-1])
            buf[..., :width, :] = torch.gather(buf[..., : self.length, :], 2, take)
        self.length = width
        self._views()


def supports(model: Any) -> bool:
    """Full attention in every layer: a masked (rejected) slot then changes nothing, as no window counts it."""
    config = model.config
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    return all(kind == "full_attention" for kind in getattr(config, "layer_types", None) or [])


@dataclass
class _Batch:
    """The live rows of the loop and their cache-side state (one entry per live row)."""

    rows: list[int]
    cache: Any
    mask: torch.Tensor  # (live, cache length): 1 where the slot holds a real token
    filled: torch.Tensor  # (live,): real tokens in the cache = next position id

    def keep(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        for layer in self.cache.layers:
            layer.batch_select_indices(index)
        self.rows = [self.rows[k] for k in keep]
        self.mask, self.filled = self.mask[index], self.filled[index]

    def merged_into(self, running: _Batch | None, room: int) -> _Batch:
        """One batch of `running`'s rows then these, each row's slots right-aligned to the longer cache, in
        preallocated in-place layers with `room` free slots after it. Each source layer is let go once
        copied, so the cache is held about once, not twice."""
        parts = [b for b in (running, self) if b is not None and b.rows]
        width = max(b.mask.shape[1] for b in parts)
        layers = []
        for number in range(len(self.cache.layers)):
            layers.append(InPlaceLayer.stacked([b.cache.layers[number] for b in parts], width, width + room))
            for b in parts:
                b.cache.layers[number] = None
        self.cache.layers = layers
        mask = torch.cat([torch.cat([b.mask.new_zeros((len(b.rows), width - b.mask.shape[1])), b.mask], dim=-1)
                          for b in parts])
        return _Batch([r for b in parts for r in b.rows], self.cache, mask, torch.cat([b.filled for b in parts]))

    def compact(self) -> None:
        """Squeeze out masked slots (left padding, rejected drafts) once they are a third of the cache."""
        width = int(self.filled.max())
        if self.mask.shape[1] - width < max(16, self.mask.shape[1] // 3):
            return
        # per row: its real slots, right-aligned into `width` columns (left slots point at slot 0, masked)
        order = torch.argsort(self.mask, dim=1, stable=True)[:, -width:]
        new_mask = torch.gather(self.mask, 1, order)
        for layer in self.cache.layers:
            layer.gather(order)
        self.mask = new_mask


def _choose_width(drafts: list[list[int]], rate: float, overhead: float) -> int:
    """The step width (1 + drafts verified) with the most expected tokens per unit of cost."""
    best, best_value = 1, 0.0
    longest = max((len(d) for d in drafts), default=0)
    for width in range(1, longest + 2):
        expected = sum(1 + sum(rate ** j for j in range(1, min(width - 1, len(d)) + 1)) for d in drafts)
        value = expected / (len(drafts) * width + overhead)
        if value > best_value:
            best, best_value = width, value
    return best


InFlight = Callable[[int], int]  # rows that may decode at once, given the longest prompt among them


@torch.no_grad()
def speculative_new_tokens(model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           max_new_tokens: int, stop: Sequence[str], draft_tokens: int = 8, ngram: int = 3,
                           overhead: float = 32.0, in_flight: InFlight | None = None,
                           row_done: Callable[[int], None] | None = None) -> Decoded:
    """The tokens greedy decoding appends to each (left-padded) row, drafted by prompt lookup.

    Without `in_flight` every row decodes in one batch. With it, at most `in_flight(longest prompt)`
    rows decode at once, taken in the given order (longest first suits it): as rows finish, the next
    ones are prefilled and join the running batch (continuous batching), so a batch does not dwindle
    to its slowest row. `row_done(row)` is called as each row ends."""
    decoded = Decoded([[] for _ in range(input_ids.shape[0])], tie_margin=tie_margin(next(model.parameters()).dtype))
    loop = _Loop(model, tokenizer, input_ids, attention_mask, decoded, eos_ids(model).tolist(), stop, max_new_tokens,
                 (draft_tokens, ngram, overhead), row_done)
    limit = in_flight or (lambda _longest: input_ids.shape[0])
    pending = list(range(input_ids.shape[0]))
    while pending or loop.live():
        live = loop.live()
        longest = max(loop.lengths[r] for r in (loop.batch.rows if live else pending[:1]))
        free = max(1, limit(longest)) - live
        if pending and free > 0 and (not live or free >= max(1, limit(longest) // REFILL_SHARE)):
            loop.admit(pending[:free])
            pending = pending[free:]
        else:
            _step(loop)
    return decoded


REFILL_SHARE = 4  # new rows join once a quarter of the batch's places are free (or none is left running)


class _Loop:
    """The state continuous batching shares between admitting rows and decoding steps."""

    def __init__(self, model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 decoded: Decoded, eos: list[int], stop: Sequence[str], max_new_tokens: int,
                 knobs: tuple[int, int, float], row_done: Callable[[int], None] | None):
        self.model, self.tokenizer, self.decoded = model, tokenizer, decoded
        self.ids, self.mask = input_ids, attention_mask
        self.eos, self.stop, self.max_new, self.knobs, self.row_done = set(eos), stop, max_new_tokens, knobs, row_done
        self.lengths = attention_mask.sum(-1).tolist()
        self.contexts = [input_ids[r][attention_mask[r].bool()].tolist() for r in range(input_ids.shape[0])]
        self.cache_arg = cache_argument(model)
        self.batch: _Batch | None = None
        self.prefix: Prefix | bool | None = None  # False: looked for, none shared

    def live(self) -> int:
        return len(self.batch.rows) if self.batch is not None else 0

    def admit(self, rows: list[int]) -> None:
        """Prefill `rows`, emit each one's first token, and add the unfinished ones to the running batch."""
        width = max(self.lengths[r] for r in rows)
        ids, mask = self.ids[rows][:, -width:], self.mask[rows][:, -width:]
        if self.prefix is None and self.ids.shape[0] > 1:
            self.prefix = shared_prefix(self.model, self.contexts, self.ids.device) or False
            self.decoded.forward_passes += 1 if self.prefix else 0
        order, logits, cache, mask = prefill(self.model, ids, mask, self.prefix or None)
        self.decoded.forward_passes += 1
        keep = [i for i, o in enumerate(order) if not self._first(rows[o], logits[i])]
        if not keep:
            return
        if not plain_layers(cache):
            raise ValueError("speculative decoding needs plain full-attention key-value layers")
        joined = _Batch([rows[o] for o in order], cache, mask, mask.sum(-1))
        joined.keep(keep)
        self.batch = joined.merged_into(self.batch, self.max_new + self.knobs[0] + 1)

    def _first(self, row: int, logits: torch.Tensor) -> bool:
        token = _argmax(self.decoded, row, logits)
        ended = _emit(self.decoded, self.tokenizer, row, token, self.eos, self.stop, self.max_new)
        if ended and self.row_done:
            self.row_done(row)
        return ended


def _step(loop: _Loop) -> None:
    """One verification pass over the live rows: emit, mask rejected drafts, drop finished rows."""
    model, tokenizer, batch, decoded, contexts = loop.model, loop.tokenizer, loop.batch, loop.decoded, loop.contexts
    eos, stop, max_new_tokens, (draft_tokens, ngram, overhead) = loop.eos, loop.stop, loop.max_new, loop.knobs
    assert batch is not None
    news = [decoded.tokens[r] for r in batch.rows]
    drafts = [lookup_draft(contexts[r] + new, ngram, min(draft_tokens, max_new_tokens - len(new) - 1))
              for r, new in zip(batch.rows, news, strict=True)]
    rate = (decoded.accepted + 1) / (decoded.drafted + 2)
    width = _choose_width(drafts, rate, overhead)
    drafts = [d[: width - 1] for d in drafts]
    device = batch.mask.device
    inputs = torch.zeros((len(news), width), dtype=torch.long)
    valid = torch.zeros((len(news), width), dtype=batch.mask.dtype)
    for i, (new, draft) in enumerate(zip(news, drafts, strict=True)):
        inputs[i, : 1 + len(draft)] = torch.tensor([new[-1], *draft])
        valid[i, : 1 + len(draft)] = 1
    inputs, valid = inputs.to(device), valid.to(device)
    positions = batch.filled[:, None] + torch.arange(width, device=device)[None, :]
    out = model(input_ids=inputs, attention_mask=torch.cat([batch.mask, valid], dim=-1), position_ids=positions,
                use_cache=True, **{loop.cache_arg: batch.cache})
    decoded.forward_passes += 1
    logits = out.logits.float()
    predicted = logits.argmax(-1).tolist()
    keep = []
    for i, (row, draft) in enumerate(zip(batch.rows, drafts, strict=True)):
        accepted = 0
        while accepted < len(draft) and draft[accepted] == predicted[i][accepted]:
            accepted += 1
        decoded.drafted, decoded.accepted = decoded.drafted + len(draft), decoded.accepted + accepted
        valid[i, 1 + accepted:] = 0
        finished = False
        for j in range(accepted + 1):
            _argmax(decoded, row, logits[i, j])
            if _emit(decoded, tokenizer, row, predicted[i][j], eos, stop, max_new_tokens):
                finished = True
                break
        if not finished:
            keep.append(i)
        elif loop.row_done:
            loop.row_done(row)
    batch.mask = torch.cat([batch.mask, valid], dim=-1)
    batch.filled = batch.filled + valid.sum(-1)
    if len(keep) < len(batch.rows):
        batch.keep(keep)
    if batch.rows:
        batch.compact()


def _argmax(decoded: Decoded, row: int, logits: torch.Tensor) -> int:
    """The argmax of one position's logits; marks the row when the top two are within the tie margin."""
    top = torch.topk(logits.float(), 2).values
    if row not in decoded.near_tie_rows and float(top[0] - top[1]) < decoded.tie_margin:
        decoded.near_tie_rows.append(row)
    return int(logits.argmax())


def _emit(decoded: Decoded, tokenizer: Any, row: int, token: int, eos: set[int], stop: Sequence[str],
          max_new_tokens: int) -> bool:
    """Append one token to a row; True when the row ends with it (as plain greedy decoding ends it)."""
    new = decoded.tokens[row]
    new.append(token)
    if token in eos or len(new) >= max_new_tokens:
        return True
    return bool(stop) and should_stop(tokenizer.decode(new, skip_special_tokens=True), stop)

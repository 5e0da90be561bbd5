"""What a data check compares: a row's input text, normalised, and its word shingles; MinHash (datasketch)
finds near-duplicate candidates, and the exact Jaccard of the shingle sets confirms them."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^\w\s]+")
NUM_PERM = 128


def normalise(text: str) -> str:
    """Case, Unicode forms, punctuation and runs of whitespace do not make two rows different."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def shingles(normalised: str, size: int) -> frozenset[str]:
    """Word n-grams of `size` words (the whole text, as one shingle, when it is shorter)."""
    words = normalised.split()
    if len(words) <= size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Row:
    """One row as the checks see it: where it is in its file, its input text and its label (if any)."""

    place: str
    text: str
    label: str | None = None

    @property
    def norm(self) -> str:
        return normalise(self.text)


def near_pairs(queries: list[Row], pool: list[Row], threshold: float, size: int) -> list[tuple[int, int, float]]:
    """(query index, pool index, Jaccard) of near duplicates that are not exact ones: LSH candidates, confirmed."""
    from datasketch import MinHashLSH

    pool_sh = [shingles(r.norm, size) for r in pool]
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, params=_lsh_params(threshold))
    for j, sh in enumerate(pool_sh):
        if sh:
            lsh.insert(str(j), _minhash(sh))
    out = []
    for i, row in enumerate(queries):
        sh = shingles(row.norm, size)
        if not sh:
            continue
        for key in lsh.query(_minhash(sh)):
            j = int(key)
            score = jaccard(sh, pool_sh[j])
            if score >= threshold and row.norm != pool[j].norm:
                out.append((i, j, score))
    return sorted(out)


@functools.cache
def _lsh_params(threshold: float) -> tuple[int, int]:
    """LSH bands and rows for the threshold, as MinHashLSH chooses them (equal weights of false positives and
    negatives), computed once per threshold: the choice integrates numerically and costs more than the index."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, NUM_PERM, 0.5, 0.5)


@functools.cache
def _permutations():
    """The hash permutations of every MinHash (seed 1), drawn once: drawing them is most of a MinHash's cost."""
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=1)
    return template.permutations, template.scheme


def _minhash(sh: frozenset[str]) -> object:
    from datasketch import MinHash

    permutations, scheme = _permutations()
    m = MinHash(num_perm=NUM_PERM, seed=1, permutations=permutations, scheme=scheme)
    m.update_batch([s.encode("utf-8") for s in sorted(sh)])
    return m

"""Tiny random-initialised models and a tiny tokenizer, built in-process (no download).

- `build_tokenizer()`: a byte-level BPE tokenizer trained on the words of harness/suites/builtin/data/*.jsonl, with
  pad, eos, unk and bos special tokens, wrapped in `PreTrainedTokenizerFast`.
- `save_causal(folder)`: a tiny `LlamaForCausalLM` (hidden 32, 2 layers) and its tokenizer as a local
  Hugging Face folder.
- `save_encoder(folder)`: a tiny `BertModel` (model_type bert) and a tokenizer that adds bos/eos
  around a text (and a pair) the way BERT adds [CLS]/[SEP].
- `write_gguf(path, causal_folder)`: the tiny llama as a float32 GGUF file (arch "llama", byte-level
  "gpt2" tokenizer metadata), in the layout transformers' GGUF loader reads back.

The tokenizer is byte-level so that any text (German umlauts, digits, punctuation) encodes without
unknown tokens, and so that the GGUF tokenizer metadata ("gpt2" model: tokens in the byte alphabet
plus merges) describes exactly the same tokenizer.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUITE_DATA = ROOT / "harness" / "suites" / "builtin" / "data"
PAD, EOS, UNK, BOS = "<pad>", "<eos>", "<unk>", "<bos>"
SPECIALS = [PAD, EOS, UNK, BOS]
VOCAB_SIZE = 600
HIDDEN = 32
LAYERS = 2
HEADS = 4
KV_HEADS = 2
MAX_POSITIONS = 1024


def corpus_texts() -> list[str]:
    """Every string value (and string list item) in the built-in suites' data."""
    texts: list[str] = []
    for path in sorted(SUITE_DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            for value in json.loads(line).values():
                items = value if isinstance(value, list) else [value]
                texts += [item for item in items if isinstance(item, str)]
    return texts


@functools.cache
def _trained_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_texts(), trainer=trainer)
    return tok.to_str()


def train_backend(vocab_size: int = VOCAB_SIZE):
    """A fresh `tokenizers.Tokenizer`: byte-level BPE whose first ids are pad, eos, unk, bos (trained once)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(_trained_json(vocab_size))


def build_tokenizer(pair_template: bool = False):
    """The tiny tokenizer as a transformers fast tokenizer.

    With `pair_template`, encoding adds `<bos> A <eos>` (and `<bos> A <eos> B <eos>` for pairs), as an
    encoder's tokenizer adds [CLS]/[SEP]; without it (the causal LM) nothing is added.
    """
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    backend = train_backend()
    if pair_template:
        bos, eos = backend.token_to_id(BOS), backend.token_to_id(EOS)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", pair=f"{BOS} $A {EOS} $B:1 {EOS}:1", special_tokens=[(BOS, bos), (EOS, eos)]
        )
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   bos_token=BOS)


def causal_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )


def save_causal(folder: Path, seed: int = 0) -> Path:
    """A tiny LlamaForCausalLM + tokenizer saved as a local Hugging Face folder."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(causal_config(tokenizer)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny BertModel (model_type bert) + a tokenizer with a pair template, saved as a local folder."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = build_tokenizer(pair_template=True)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=2 * HIDDEN, max_position_embeddings=MAX_POSITIONS, type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------
# GGUF


def _permute_for_gguf(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k permutation (convert_hf_to_gguf.py); transformers' loader reverses it."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def gguf_tensors(state_dict: dict, n_layers: int) -> dict[str, np.ndarray]:
    """HF llama weights under GGUF tensor names (via gguf's own name map), q/k permuted."""
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    out = {}
    for hf_name, tensor in state_dict.items():
        stem, suffix = hf_name.rsplit(".", 1)
        gguf_name = name_map.get_name(stem)
        if gguf_name is None:
            raise KeyError(f"no GGUF name for {hf_name}")
        weights = tensor.detach().float().numpy().copy()
        if ".self_attn.q_proj" in hf_name:
            weights = _permute_for_gguf(weights, HEADS)
        elif ".self_attn.k_proj" in hf_name:
            weights = _permute_for_gguf(weights, KV_HEADS)
        out[f"{gguf_name}.{suffix}"] = weights
    return out


def write_gguf(path: Path, causal_folder: Path) -> Path:
    """Write the tiny llama saved at `causal_folder` (weights, config, tokenizer) as a float32 GGUF file."""
    import gguf
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(causal_folder)
    tokenizer = AutoTokenizer.from_pretrained(causal_folder)
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_tokenizer(writer, tokenizer)
    for name, weights in gguf_tensors(model.state_dict(), cfg.num_hidden_layers).items():
        writer.add_tensor(name, weights.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer, tokenizer) -> None:
    """Byte-level BPE metadata: tokens (in id order), token types, merges and the special token ids."""
    import gguf

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = backend["model"]["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    special = set(SPECIALS)
    types = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)


# ---------------------------------------------------------------------------------------------------
# tiny suites


SENTIMENT_ROWS = [
    ("The kettle works perfectly. Five stars.", "positive"),
    ("Broken after one day, a waste of money.", "negative"),
    ("I love this desk chair, worth every penny.", "positive"),
    ("Customer service did not help at all.", "negative"),
    ("Great sound and a fair price.", "positive"),
    ("The lid cracked and the handle fell off.", "negative"),
]
MCQA_ROWS = [
    ("What is the opposite of 'strong'?", ["quiet", "weak", "cold", "empty"], 1),
    ("What is the opposite of 'happy'?", ["closed", "weak", "sad", "late"], 2),
    ("What is two plus three?", ["five", "six", "four", "seven"], 0),
    ("Which animal barks?", ["cat", "cow", "fish", "dog"], 3),
    ("What colour is the sky on a clear day?", ["green", "blue", "red", "black"], 1),
    ("How many days are in a week?", ["five", "six", "seven", "eight"], 2),
]
TRANSLATE_ROWS = [
    ("The woman waits in the garden.", "Die Frau wartet im Garten."),
    ("The child plays at home.", "Das Kind spielt zu Hause."),
    ("The man reads a book.", "Der Mann liest ein Buch."),
    ("The dog sleeps in the house.", "Der Hund schläft im Haus."),
    ("The teacher drinks coffee.", "Der Lehrer trinkt Kaffee."),
    ("The cat sits on the table.", "Die Katze sitzt auf dem Tisch."),
]

SUITE_HEADERS = {
    "classification": """name: {name}
kind: classification
data: {{train: train.jsonl, validation: validation.jsonl, test: test.jsonl}}
labels: [negative, positive]
template: "Review: {{{{ text }}}}\\nAnswer:"
chat_template: "off"
metrics: [accuracy, {{name: f1, average: macro}}]
""",
    "multiple_choice": """name: {name}
kind: multiple_choice
data: {{train: train.jsonl, validation: validation.jsonl, test: test.jsonl}}
template: "Question: {{{{ question }}}}\\nAnswer:"
chat_template: "off"
metrics: [accuracy]
""",
    "generation": """name: {name}
kind: generation
data: {{train: train.jsonl, validation: validation.jsonl, test: test.jsonl}}
fields: {{reference: german}}
template: "English: {{{{ english }}}}\\nGerman:"
chat_template: "off"
generation: {{max_new_tokens: 6, stop: ["\\n"]}}
metrics: [chrf]
""",
}


def suite_rows(kind: str) -> list[dict]:
    if kind == "classification":
        return [{"id": f"s{i}", "text": t, "label": y} for i, (t, y) in enumerate(SENTIMENT_ROWS)]
    if kind == "multiple_choice":
        return [{"id": f"q{i}", "question": q, "choices": c, "answer": a} for i, (q, c, a) in enumerate(MCQA_ROWS)]
    return [{"id": f"t{i}", "english": e, "german": g} for i, (e, g) in enumerate(TRANSLATE_ROWS)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_suite(folder: Path, kind: str, name: str | None = None, extra: str = "") -> Path:
    """A small suite of `kind` in `folder` (train 6 rows, validation 3, test 4); returns the YAML path.

    `extra` is appended to the YAML (for example a few_shot block).
    """
    name = name or {"classification": "tiny_cls", "multiple_choice": "tiny_mc", "generation": "tiny_gen"}[kind]
    folder.mkdir(parents=True, exist_ok=True)
    rows = suite_rows(kind)
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "validation.jsonl", rows[:3])
    write_jsonl(folder / "test.jsonl", rows[2:])
    path = folder / f"{name}.yaml"
    path.write_text(SUITE_HEADERS[kind].format(name=name) + extra, encoding="utf-8")
    return path

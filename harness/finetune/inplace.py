"""A LoRA adapter on the base model itself for as long as a `with` block runs, then taken off again.

peft injects an adapter into the model it is given: each targeted layer becomes a LoRA layer holding the
original as its `base_layer`. `unload()` puts the originals back without merging, so the base's parameter
tensors are never copied and never change (no second copy of the weights, as a deep copy of the base was).
What peft changes besides and does not put back is recorded before and restored after: each parameter's
`requires_grad` (peft freezes every base parameter), each module's train/eval mode (training switches the
model to train mode), hooks added to the base's modules (peft adds one to the input embeddings of a model
that claims gradient checkpointing), the attributes peft and transformers set on the model (`peft_config`,
`_require_grads_hook`) and the config's `pretraining_tp` (peft sets it to 1). The block may raise, or the
adapter fail to load halfway: the base comes back all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
              "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
              "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
ADDED_ATTRIBUTES = ("peft_config", "_require_grads_hook", "_require_grads_hooks")  # by peft, enable_input_require_grads
CONFIG_FIELDS = ("pretraining_tp",)


def _hook_ids(module: Any) -> frozenset[int]:
    return frozenset(key for name in HOOK_DICTS for key in getattr(module, name, {}))


@dataclass(frozen=True)
class BaseState:
    """What applying and training an adapter changes on a base model that `unload()` does not put back."""

    requires_grad: dict[str, bool]  # parameter name -> requires_grad
    training: dict[str, bool]  # module name -> train mode (the names are the module tree)
    hooks: dict[str, frozenset[int]]  # module name -> the ids of its hooks
    attributes: frozenset[str]  # which of ADDED_ATTRIBUTES the model had
    config: dict[str, Any]  # CONFIG_FIELDS the model's config has, with their values

    @classmethod
    def of(cls, model: Any) -> BaseState:
        config = getattr(model, "config", None)
        return cls({n: p.requires_grad for n, p in model.named_parameters()},
                   {n: m.training for n, m in model.named_modules()},
                   {n: _hook_ids(m) for n, m in model.named_modules()},
                   frozenset(a for a in ADDED_ATTRIBUTES if a in vars(model)),
                   {f: getattr(config, f) for f in CONFIG_FIELDS if hasattr(config, f)})

    def restore(self, model: Any) -> None:
        """The model as recorded; RuntimeError if its module tree is not the recorded one (an adapter left on)."""
        modules = dict(model.named_modules())
        if list(modules) != list(self.training):
            extra = sorted(set(modules) - set(self.training))[:3]
            raise RuntimeError(f"the base model's modules changed while an adapter was on it (new: {extra})")
        for name, module in modules.items():
            module.training = self.training[name]
            for added in _hook_ids(module) - self.hooks[name]:
                for hooks in HOOK_DICTS:
                    getattr(module, hooks, {}).pop(added, None)
        for name, param in model.named_parameters():
            param.requires_grad_(self.requires_grad[name])
        for attribute in ADDED_ATTRIBUTES:
            if attribute in vars(model) and attribute not in self.attributes:
                delattr(model, attribute)
        for field, value in self.config.items():
            setattr(model.config, field, value)


@contextmanager
def adapter_on(model: Any, attach: Callable[[Any], Any]) -> Iterator[Any]:
    """`attach(model)` (peft's `get_peft_model` or `PeftModel.from_pretrained` on `model` itself) for the block;
    after it the adapter unloaded (not merged) and the model restored to its state before."""
    state = BaseState.of(model)
    wrapped = None
    try:
        wrapped = attach(model)
        yield wrapped
    finally:
        try:
            if wrapped is not None:
                wrapped.unload()
            strip_tuner_layers(model)  # what a failed attach left half-injected
        finally:
            state.restore(model)


def strip_tuner_layers(model: Any) -> None:
    """Every peft layer in the model replaced by the layer it wraps (the outermost, where they nest)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    stripped: list[str] = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, BaseTunerLayer) or any(name.startswith(s + ".") for s in stripped):
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
        stripped.append(name)

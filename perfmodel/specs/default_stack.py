"""The software stack a plan runs when it names none: the one a device's transformers are trained with.

Each bundled profile describes the software of a device generation, so the default follows the
device (:func:`default_stack`); a CNN or an MLP runs ``pytorch-eager`` on every device.

- NVIDIA Volta and Ampere (V100, A100): ``megatron``, Megatron-LM of 2021-22, the profile calibrated
  on A100 (its GEMM rate is fitted on an A100 run) and validated on V100/A100 runs.
- NVIDIA Hopper and Blackwell (H100, H200, B200): ``megatron-core``, Megatron-Core with Transformer
  Engine, the stack those devices' published runs use (validated on the H100 runs of
  ``megatron-core-h100``); the 2021 A100 profile would charge an H100 with 2021 kernels.
- Google TPUs: ``jax-xla``. A TPU runs programs the XLA compiler built, not one kernel per op as
  they are called: JAX compiles the step with ``jax.jit``, and PyTorch reaches a TPU through
  PyTorch/XLA, which records the ops lazily into a graph and hands it to XLA (docs.pytorch.org/xla
  'PyTorch/XLA Overview': lazy evaluation, then graph compilation to HLO). The published TPU runs
  validated here are MaxText's (``heldout-2022-2024``), which this profile describes.
- Everything else (CPUs, Gaudi, AMD GPUs, unknown devices): ``pytorch-eager``, plain PyTorch, whose
  profile makes no claim about fused kernels or communication overlap (Megatron's fused CUDA
  kernels and userbuffers do not exist there); its GEMM rate is the device's own measured curve,
  shape model or datasheet peak.

The generation is read from the device's name and description (the bundled files name the
architecture: "Ampere GA100", "Hopper", "TPU v5p", ...), so a calibrated copy of a bundled device
keeps its default.
"""

from __future__ import annotations

import functools
import re

__all__ = ["default_stack"]

# (architecture words in a device description, stack): the first rule that matches wins
_GENERATIONS = (
    (("hopper", "blackwell", "h100", "h200", "h800", "b100", "b200", "gb200"), "megatron-core"),
    (("volta", "ampere", "v100", "a100", "a800"), "megatron"),
)


def default_stack(device, model=None) -> tuple[str, str]:
    """The default stack of ``device`` and why (a clause for notes): see the module docstring. A
    model that is not a transformer (a CNN or an MLP) runs ``pytorch-eager`` on every device:
    Megatron-LM and Megatron-Core train transformers only, MaxText only language models."""
    if model is not None and getattr(model, "family", "transformer") != "transformer":
        return "pytorch-eager", (f"the default for a {model.family}: Megatron-LM, Megatron-Core and MaxText "
                                 "train transformers only")
    kind = getattr(device, "kind", None)
    return _default_stack(str(getattr(device, "name", "")), str(getattr(device, "description", "")),
                          None if kind is None else str(kind))


@functools.lru_cache(maxsize=256)
def _default_stack(name: str, description: str, kind: str | None) -> tuple[str, str]:
    text = f"{name} {description}".lower()
    if (kind or "gpu") == "gpu" and ("nvidia" in text or "tesla" in text
                                     or any(w in text for r in _GENERATIONS for w in r[0])):
        for words, stack in _GENERATIONS:
            hit = next((w for w in words if w in text), None)
            if hit is not None:
                return stack, f"the default for {hit.capitalize() if hit.isalpha() else hit.upper()} GPUs"
    if kind == "xpu" and re.search(r"\btpu\b", text):  # the word: "output" in a description is no TPU
        return "jax-xla", "the default for TPUs: a TPU runs only programs XLA compiled (JAX or PyTorch/XLA)"
    what = {"xpu": "an xpu", "cpu": "a CPU", "gpu": "a GPU"}.get(kind or "", "a device")
    return "pytorch-eager", f"the default for {what} that is neither an NVIDIA Volta-Blackwell GPU nor a TPU"

"""What torch.compile keeps for the backward of a Hugging Face GPT-2 under bf16 autocast.

Traces a small GPT2LMHeadModel (hidden 256, 2 layers, 4 heads, vocab 1000, batch 2 x 64 tokens:
every dimension distinct, so each saved tensor's shape says what it is) through TorchDynamo and
AOTAutograd with TorchInductor's decompositions and its partitioner
(``min_cut_rematerialization_partition``), and writes every tensor the forward graphs hand to the
backward or return: name, shape, dtype, bytes, the bytes of the storage it is a view of (a saved
view keeps its whole base alive), the op that made it, and whether it is a graph output, a saved
activation or a graph input (a parameter, or an activation of an earlier graph). Nothing is
compiled to kernels, and Inductor's joint-graph passes (pad_mm, pattern rewrites) are not run: the
partition (what is saved, what is recomputed) is TorchInductor's, its input a CPU trace
(perfmodel/data/validation/inductor/README.md says what differs on a GPU). The attention runs
without dropout so that the CPU's SDPA takes its flash kernel (with dropout it falls back to the
math path; on a GPU the cuDNN / flash kernels take dropout in the kernel).

Needs torch and transformers (not dependencies of perfmodel). Run on any machine:

    python benchmarks/host/inductor_partition.py > perfmodel/data/validation/inductor/gpt2_partition.csv
"""

from __future__ import annotations

import csv
import sys


def main() -> None:
    import torch
    import transformers
    from torch._functorch.aot_autograd import aot_module_simplified
    from torch._functorch.partitioners import min_cut_rematerialization_partition
    from torch._inductor.decomposition import select_decomp_table
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_embd=256, n_layer=2, n_head=4, vocab_size=1000, n_positions=64, bos_token_id=0,
                     eos_token_id=0, attn_pdrop=0.0, resid_pdrop=0.1, embd_pdrop=0.1)
    cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg).train()
    forwards, backwards = [], []

    def keep(graphs):
        def compiler(gm, _inputs):
            graphs.append(gm)
            return gm.forward
        return compiler

    def backend(gm, inputs):
        return aot_module_simplified(gm, inputs, fw_compiler=keep(forwards), bw_compiler=keep(backwards),
                                     partition_fn=min_cut_rematerialization_partition,
                                     decompositions=select_decomp_table())

    compiled = torch.compile(model, backend=backend)
    ids = torch.randint(0, 1000, (2, 64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compiled(input_ids=ids, labels=ids)
    out.loss.backward()

    writer = csv.writer(sys.stdout)
    writer.writerow(["graph", "name", "shape", "dtype", "bytes", "storage_bytes", "producer", "role", "source"])
    source = f"benchmarks/host/inductor_partition.py (torch {torch.__version__}, transformers {transformers.__version__})"
    # the backward graph's inputs other than the incoming gradients are what its forward saved
    saved_sets = [{n.name for n in bw.graph.nodes if n.op == "placeholder" and not n.name.startswith("tangents")}
                  for bw in backwards]
    for index, gm in enumerate(forwards):
        outputs = list(gm.graph.nodes)[-1].args[0]
        names = {n.name for n in outputs if n is not None and hasattr(n, "name")}
        saved = next(s for s in saved_sets if s <= names)
        seen = set()
        for node in outputs:
            value = getattr(node, "meta", {}).get("val") if node is not None else None
            if not isinstance(value, torch.Tensor) or node.name in seen:
                continue
            seen.add(node.name)
            # a graph input (a parameter, or an activation another graph made), or what the graph made
            role = "input" if node.op == "placeholder" else "saved" if node.name in saved else "output"
            producer = node.op if node.op == "placeholder" else str(node.target)
            writer.writerow([index, node.name, "x".join(map(str, value.shape)) or "scalar", str(value.dtype).replace("torch.", ""),
                             value.numel() * value.element_size(), value.untyped_storage().nbytes(), producer, role,
                             source])


if __name__ == "__main__":
    main()

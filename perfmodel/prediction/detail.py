"""The kernels of one transformer layer, forward and backward, for one micro-batch on one device:
what ``perfmodel predict --layers-detail`` prints, to hold against a profiler trace.

A ConvNet or an MLP has no repeated layer: it gets every leaf layer of the network in execution
order, and the loss (:func:`perfmodel.prediction.dense.dense_layer_times`): a conv / linear layer
as its forward GEMM and its backward GEMMs (wgrad, and dgrad where the input needs a gradient) with
any bias gradient, a memory-bound layer as its forward and backward kernels with their bytes.

A stack with a kernel inventory for the model's family (``pytorch-eager``) gives its own kernel
list (:mod:`perfmodel.prediction.eager`); the other stacks give the kernels of the role-based
model of :func:`perfmodel.prediction.layers.layer_times`: the linear-layer GEMMs (forward,
dgrad, wgrad), the attention kernels and the stack's memory-bound kernels by role.
"""

from __future__ import annotations

from perfmodel.prediction import eager
from perfmodel.prediction.eager import KernelRow
from perfmodel.prediction.layers import flash_attention_times, layer_times, ring_attention_times
from perfmodel.prediction.shapes import role_kernels
from perfmodel.workloads.transformer import TransformerModel

__all__ = ["layer_kernels", "layer_kernel_table", "KernelRow"]

_LINEAR_NAMES = ("qkv", "proj", "fc1", "fc2", "fc_gate")


def _role_rows(model, stack, rates, b, s, t) -> list[KernelRow]:
    from perfmodel.prediction.layers import _kernel_bytes, _kernel_ops, _role_rows as roles, linear_shapes, role_elements

    rows = []
    h = model.hidden
    tokens = b * s
    for name, (m_, k_, n_) in zip(_LINEAR_NAMES, linear_shapes(model, tokens, t)):
        rows.append(KernelRow(f"{name}.gemm", "fwd", "gemm", rates.linear_gemm(m_, n_, k_), 0.0, 2 * m_ * n_ * k_))
        rows.append(KernelRow(f"{name}.dgrad", "bwd", "gemm", rates.linear_gemm(m_, k_, n_), 0.0, 2 * m_ * n_ * k_))
        rows.append(KernelRow(f"{name}.wgrad", "bwd", "gemm", rates.linear_gemm(k_, n_, m_), 0.0, 2 * m_ * n_ * k_))
    r = roles(model)
    e = rates.bytes_per_element
    for direction in ("fwd", "bwd"):
        for i, kernel in enumerate(role_kernels(stack.layer_kernels, model)):
            def n_of(role):  # as layers._role_based_times (no sequence parallelism)
                return role_elements(model, role, tokens, t)
            moved = _kernel_bytes(kernel, r, n_of, e, direction)
            eff = stack.kernel_efficiency(_kernel_ops(kernel, r), direction, rates.device_kind)
            rows.append(KernelRow(f"{i}." + "+".join(kernel), direction, "+".join(_kernel_ops(kernel, r)),
                                  rates.memory(moved / eff), moved, 0.0))
    # what autograd adds to the backward (perfmodel.specs.stack_backward), each as one row
    from perfmodel.prediction.backward_copies import backward_copies_time, bias_grad_time, grad_accumulation_time
    for name, seconds in (("residual.grad_sums", grad_accumulation_time(role_kernels(stack.layer_kernels, model),
                                                                         tokens * h, rates, stack)),
                          ("bias.grad_reductions", bias_grad_time(model, stack, rates, tokens, t, 1)),
                          ("qkv_split.cat+flat_grad", backward_copies_time(model, stack, rates, tokens, t))):
        if seconds:
            rows.append(KernelRow(name, "bwd", "autograd", seconds, 0.0, 0.0))
    return rows


def _dense_rows(model, stack, rates, b) -> tuple[KernelRow, ...]:
    from perfmodel.prediction.dense import dense_layer_times

    rows = []
    for r in dense_layer_times(model, stack, rates, b):
        # a GEMM layer's backward: wgrad, plus dgrad where its input needs a gradient
        bwd_flops = r.gemm_flops * (2 if r.needs_input_grad else 1)
        for direction, seconds, moved, flops in (("fwd", r.forward_s, r.forward_bytes, r.gemm_flops),
                                                 ("bwd", r.backward_s, r.backward_bytes, bwd_flops)):
            if r.kind == "flatten":  # a view: no kernel
                continue
            rows.append(KernelRow(r.name, direction, r.kind, seconds, moved, flops))
    return tuple(rows)


def layer_kernels(model, system, plan) -> tuple[KernelRow, ...]:
    """Rows (name, direction fwd/bwd, seconds, bytes, FLOPs) of every kernel of one layer for one
    micro-batch of ``plan`` on one device of ``system``. ``model``/``system`` may be names."""
    from perfmodel.plan import resolve
    from perfmodel.prediction.hardware import hw_params
    from perfmodel.prediction.step import device_rates
    from perfmodel.specs.registry import load_system
    from perfmodel.specs.stack import load_stack
    from perfmodel.workloads import load_model

    model = load_model(model) if isinstance(model, str) else model
    system = load_system(system) if isinstance(system, str) else system
    plan = resolve(plan, model, system)
    stack = load_stack(plan.stack)
    rates = device_rates(hw_params(system, plan.dtype, stack.gemm_rate_scale), plan.dtype, stack)
    if not isinstance(model, TransformerModel):  # a ConvNet or an MLP: every layer of it
        return _dense_rows(model, stack, rates, plan.micro_batch)
    b, s, t, cp = plan.micro_batch, plan.seq // plan.cp, plan.tp, plan.cp  # a context-parallel rank's tokens
    inventory = eager.inventory_of(stack, model)
    causal = model.kind == "decoder"
    if inventory is not None:  # the scores the kernel computes, as layer_times: all of them without causal_skip
        attention = ring_attention_times(flash_attention_times(model, rates, b=b, s=s, t=t,
                                                               causal=causal and stack.causal_skip), cp)
        return eager.kernel_rows(model, stack, rates, inventory, b=b, s=s, t=t, attention=attention)
    lt = layer_times(model, stack, rates, 0.0, float("inf"), b=b, s=s, t=t, sp=False, recompute="none",
                     causal=causal, cp=cp)
    rows = _role_rows(model, stack, rates, b, s, t)
    fwd_rest = lt.forward - sum(r.time_s for r in rows if r.direction == "fwd")
    bwd_rest = lt.backward - sum(r.time_s for r in rows if r.direction == "bwd")
    # attention (and, under FP8, the cast-transposes): the rest of layer_times' total
    rows += [KernelRow("attention+rest", "fwd", "attention", fwd_rest, 0.0, 0.0),
             KernelRow("attention+rest", "bwd", "attention", bwd_rest, 0.0, 0.0)]
    return tuple(rows)


def layer_kernel_table(model, system, plan) -> list[dict]:
    """:func:`layer_kernels` as plain rows for display: kernel, direction, op, time_us, bytes,
    gflops; the last two rows are the forward and backward totals."""
    rows = layer_kernels(model, system, plan)
    out = [{"kernel": r.name, "direction": r.direction, "op": r.op, "time_us": round(float(r.time_s) * 1e6, 2),
            "bytes": int(r.bytes), "gflops": round(float(r.flops) / 1e9, 4)} for r in rows]
    for direction in ("fwd", "bwd"):
        mine = [r for r in rows if r.direction == direction]
        out.append({"kernel": f"total ({len(mine)} kernels)", "direction": direction, "op": "",
                    "time_us": round(float(sum(r.time_s for r in mine)) * 1e6, 2),
                    "bytes": int(sum(r.bytes for r in mine)), "gflops": round(float(sum(r.flops for r in mine)) / 1e9, 4)})
    return out

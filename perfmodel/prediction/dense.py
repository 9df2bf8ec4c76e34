r"""One training step of a convolutional network or an MLP, with data parallelism only.

Every leaf layer of ``model.layer_costs()`` becomes one kernel forward and one or two backward,
timed for a micro-batch of b samples on one device (:func:`dense_layer_times`):

* **conv2d / linear** are GEMMs (a convolution as an implicit GEMM, M = b x out_h x out_w,
  N = out_channels, K = in_channels / groups x k_h x k_w). Forward: one GEMM for b samples, timed
  from its shape by :meth:`DeviceRates.gemm` (the measured curve where the spec has one, else the
  GEMM shape model). Backward: dgrad + wgrad, two GEMMs of the same FLOPs
  (:func:`perfmodel.formulas.compute.conv2d_backward_flops`); a layer whose input needs no
  gradient (the first conv of a network: nothing before it has parameters) runs wgrad only.
  A bias adds its gradient, a reduction of dY over the batch: one kernel reading b x out elements.
* **memory-bound kernels** move ``accesses x elements x e`` bytes (e = bytes per activation
  element, ``plan.DTYPE_BYTES[dtype]``), divided by the stack's measured efficiency for the op
  (``stack.kernel_efficiency``; 1.0 for ops the profile does not list), at the device's copy
  bandwidth. Per element of the layer's tensor (n = b x elements per sample):

  ============== ============================== ==============================================
  op             forward                        backward
  ============== ============================== ==============================================
  batchnorm      3 n: statistics pass reads x;  5 n: reduction pass reads dY and x (for
                 normalise pass reads x,        sum dY and sum dY (x - mean)); elementwise pass
                 writes y (training mode,       reads dY, x, writes dX. With no input gradient
                 batch statistics; cuDNN /      needed only the reduction (2 n) runs.
                 ATen batch_norm kernels)
  relu, tanh,    2 n (read x, write y)          3 n (read dY and the saved y, write dX) — the
  sigmoid                                       POINTWISE_OPS "gelu" / "silu" pattern
  gelu           POINTWISE_OPS["gelu"]          POINTWISE_OPS["gelu"]
  add            POINTWISE_OPS["residual_add"]  0 for the add itself (the row); plus the
                 (read both, write the sum)     gradient accumulation where the block input
                                                forks into the two branches: 3 n_in (read both
                                                branch gradients, write the sum), at the
                                                residual_add efficiency
  maxpool        reads n_in, writes n_out and   reads dY (n_out) and the indices, writes dX
                 n_out int64 argmax indices     (n_in): PyTorch's max_pool2d_with_indices
                 (8 B each)                     backward gathers per input element
  avgpool,       reads n_in, writes n_out       reads dY (n_out), writes dX (n_in)
  globalavgpool
  flatten        a view: no kernel              no kernel
  ============== ============================== ==============================================

* **loss**: softmax cross-entropy over the classes, as the transformer path's LM-head loss
  (:func:`perfmodel.prediction.layers.head_times`): b x classes logits in the stack's logits dtype,
  ``stack.cross_entropy_passes`` passes over them, half forward and half backward.

Every kernel takes at least the stack's launch overhead (``DeviceRates`` applies the floor).

**Activation memory** is what autograd keeps between forward and backward, per tensor, by what
each op saves for its backward (PyTorch ``tools/autograd/derivatives.yaml``): conv2d, linear
(addmm), batchnorm, maxpool, avgpool and gelu save their *input*; relu, tanh and sigmoid save
their *output*; add, flatten and global average pooling (a mean) save nothing. A tensor is kept
once however many ops save it (flatten is a view of its input), so in-place ReLU and
``out += identity`` (torchvision) change nothing here. Max pooling also keeps its int64 indices,
and the loss its log-softmax output (logits dtype). For ResNet-50 this keeps the input image,
every conv output (saved by the BatchNorm after it) and every ReLU output: 21.1 M elements per
image, not the 37.6 M of all leaf outputs (``ConvNet.n_activation_elements``) — a BatchNorm or
add output consumed only by a ReLU or an add is freed at once. Transient buffers of the backward
(gradient tensors, cuDNN workspaces) are not counted.

Gradient synchronisation, optimizer step, model-state memory and ZeRO follow
:mod:`perfmodel.prediction.step`: data-parallel ranks fill a node's devices first, a group that spans
nodes runs the two-level (hierarchical) ring all-reduce, one that fits in a node a ring on the
fabric (step.py's placement and gradient synchronisation with tp = pp = 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from perfmodel.errors import ModelError, PlanError
from perfmodel.formulas import compute as cf
from perfmodel.frozen import FrozenDict
from perfmodel.plan import DTYPE_BYTES
from perfmodel.prediction.hardware import hw_params
from perfmodel.prediction.kernels import gemm_alignment
from perfmodel.prediction.result import BREAKDOWN_KEYS, Prediction
from perfmodel.prediction.placement import data_parallel_levels
from perfmodel.prediction.rules import (
    BOUNDS,
    Choices,
    ShardUnits,
    bound_index,
    grad_bytes_per_param,
    grad_buckets,
    gradient_sync_times,
    model_state_bytes,
    optimizer_time,
    waited_sync_time,
)
from perfmodel.prediction.step import device_rates
from perfmodel.specs.stack import check_capabilities, load_stack
from perfmodel.workloads.convnet import ConvNet, Residual

__all__ = ["predict_dense", "dense_layer_times", "activation_bytes_per_sample", "DenseLayerTime",
           "ELEMENTWISE_ACCESSES", "SAVES"]

# (forward, backward) tensor-element reads + writes per element of the ops with no
# POINTWISE_OPS row; see the module docstring for each count.
ELEMENTWISE_ACCESSES: dict[str, tuple[int, int]] = {
    "batchnorm": (3, 5),
    "relu": (2, 3),
    "tanh": (2, 3),
    "sigmoid": (2, 3),
}
BATCHNORM_PARAM_GRAD_ACCESSES = 2  # the backward reduction alone (no input gradient needed)
INDEX_BYTES = 8  # max_pool2d_with_indices keeps int64 argmax indices (PyTorch ATen)
# which tensor each op saves for its backward (PyTorch tools/autograd/derivatives.yaml)
SAVES: dict[str, str | None] = {
    "conv2d": "input", "linear": "input", "batchnorm": "input", "maxpool": "input",
    "avgpool": "input", "gelu": "input", "relu": "output", "tanh": "output", "sigmoid": "output",
    "add": None, "globalavgpool": None, "flatten": None,
}
_GEMMS = ("conv2d", "linear")


@dataclass(frozen=True)
class DenseLayerTime:
    """One leaf layer (or the loss) for one micro-batch of b samples on one device."""

    name: str
    kind: str
    forward_s: float
    backward_s: float
    gemm_flops: float  # forward FLOPs of the layer's GEMM for b samples (0 if not a GEMM)
    needs_input_grad: bool
    forward_bytes: float = 0.0  # device-memory traffic of its memory-bound kernels (GEMMs: 0)
    backward_bytes: float = 0.0

    @property
    def is_gemm(self) -> bool:
        return self.kind in _GEMMS

    @property
    def gemm_rate_flops_per_s(self) -> float:
        """Achieved rate of the forward GEMM (0 for other kernels)."""
        return self.gemm_flops / self.forward_s if self.is_gemm else 0.0


@dataclass
class _Tensor:
    storage: int
    n_elements: int  # per sample


class _Walk:
    """Walks the layer tree in ``layer_costs()`` order: whether each layer's input needs a
    gradient, the fork size of each residual, and which tensors autograd keeps."""

    def __init__(self, costs):
        self._costs = iter(costs)
        self.steps: list[tuple[object, bool, int]] = []  # (cost, input needs grad, fork elements)
        self.kept: dict[int, int] = {}  # storage id -> elements per sample
        self.index_elements = 0  # max-pool indices per sample
        self._next_id = 0

    def new(self, n: int) -> _Tensor:
        self._next_id += 1
        return _Tensor(self._next_id, n)

    def leaf(self, cost, t: _Tensor, grad: bool) -> tuple[_Tensor, bool]:
        if cost.kind not in SAVES:
            raise ModelError(f"layer '{cost.name}': no step-time model for a '{cost.kind}' layer "
                             f"(known: {', '.join(SAVES)})")
        self.steps.append((cost, grad, 0))
        out = _Tensor(t.storage, cost.n_out_elements) if cost.kind == "flatten" else self.new(cost.n_out_elements)
        saves = SAVES[cost.kind]
        if saves == "input":
            self.kept[t.storage] = t.n_elements
        elif saves == "output":
            self.kept[out.storage] = out.n_elements
        if cost.kind == "maxpool":
            self.index_elements += cost.n_out_elements
        return out, grad or cost.n_params > 0

    def sequence(self, layers, t: _Tensor, grad: bool) -> tuple[_Tensor, bool]:
        for layer in layers:
            if isinstance(layer, Residual):
                t_main, g_main = self.sequence(tuple(layer.main), t, grad)
                t_short, g_short = self.sequence(tuple(layer.shortcut), t, grad)
                add = next(self._costs)
                # the add's backward passes dY through; the block input's two gradients are
                # summed where it forked (only if that input needs a gradient)
                self.steps.append((add, g_main or g_short, t.n_elements if grad else 0))
                t, grad = self.new(add.n_out_elements), g_main or g_short
            else:
                t, grad = self.leaf(next(self._costs), t, grad)
        return t, grad


def _walk(model) -> _Walk:
    costs = model.layer_costs()
    w = _Walk(costs)
    x = w.new(prod(model.input_shape))
    if isinstance(model, ConvNet):  # a tree with residuals
        w.sequence(model.layers, x, False)
    else:  # an MLP: a chain of leaves
        t, grad = x, False
        for cost in costs:
            t, grad = w.leaf(cost, t, grad)
    return w


def _memory_kernel(rates, stack, op, direction, bytes_moved):
    return rates.memory(bytes_moved / stack.kernel_efficiency((op,), direction, rates.device_kind))


def _pointwise_row(op):
    if op in ELEMENTWISE_ACCESSES:
        return ELEMENTWISE_ACCESSES[op]
    row = cf.POINTWISE_OPS[op]
    return row["fwd_accesses"], row["bwd_accesses"]


def _tensor_core_aligned(cost):
    """The elements a conv / linear layer's input and output channels (features) are multiples of
    (:func:`perfmodel.prediction.kernels.gemm_alignment`): 16-bit tensor-core kernels need 8
    (cuDNN's rule for convolutions is on the channels), fewer caps the rate by the vector the
    stride allows. ResNet's 3-channel stem is the misaligned one.
    Groups are not visible in a LayerCost: a grouped conv counts as aligned when its total
    channels are. The backward GEMMs are taken with the forward's alignment."""
    return gemm_alignment(cost.in_shape[0], cost.out_shape[0])


def _implicit_gemm_shape(cost, b):
    """(M, N, K) of a conv / linear layer as one GEMM for b samples: a convolution as an implicit
    GEMM, M = b x out_h x out_w, N = out_channels, K = in_channels / groups x k_h x k_w (recovered
    as MACs per output element, so groups are counted); a linear layer M = b (x any leading
    positions), N = out features, K = in features."""
    n = cost.out_shape[0]
    m = b * prod(cost.out_shape[1:])
    k = cost.forward_macs / prod(cost.out_shape)
    return m, n, k


def _memory_moves(cost, needs_dx: bool, fork: int, n_in, n_out, b, e) -> list:
    """The memory-bound kernels of one leaf layer for b samples: (pass, op and direction whose
    efficiency applies, bytes moved) each (see the module docstring's table)."""
    kind = cost.kind
    if kind in _GEMMS:  # a bias: its gradient sums dY
        return [("bwd", "bias_grad", "bwd", n_out * e)] if cost.forward_flops > 2 * cost.forward_macs else []
    if kind == "batchnorm":
        acc_f, acc_b = ELEMENTWISE_ACCESSES["batchnorm"]
        acc_b = acc_b if needs_dx else BATCHNORM_PARAM_GRAD_ACCESSES
        return [("fwd", kind, "fwd", acc_f * n_in * e), ("bwd", kind, "bwd", acc_b * n_in * e)]
    if kind == "add":
        acc_f, acc_b = _pointwise_row("residual_add")
        # the row's backward (0 accesses: dY passes through to both branches unchanged), then the
        # gradient accumulation at the fork: read two gradients, write their sum
        return ([("fwd", "residual_add", "fwd", acc_f * n_out * e)]
                + ([("bwd", "residual_add", "bwd", acc_b * n_out * e)] if acc_b else [])
                + ([("bwd", "residual_add", "fwd", 3 * fork * b * e)] if fork else []))
    if kind in ("relu", "tanh", "sigmoid", "gelu"):
        acc_f, acc_b = _pointwise_row(kind)
        fwd, bwd = acc_f * n_in * e, acc_b * n_in * e
    elif kind == "maxpool":
        fwd = bwd = (n_in + n_out) * e + n_out * INDEX_BYTES
    elif kind in ("avgpool", "globalavgpool"):
        fwd = bwd = (n_in + n_out) * e
    else:  # flatten: a view
        return []
    return [("fwd", kind, "fwd", fwd)] + ([("bwd", kind, "bwd", bwd)] if needs_dx else [])


def _layer_time(cost, needs_dx: bool, fork: int, b, rates, stack) -> DenseLayerTime:
    kind = cost.kind
    n_in, n_out = prod(cost.in_shape) * b, cost.n_out_elements * b
    gemm_flops, fwd, bwd = 0.0, 0.0, 0.0
    if kind in _GEMMS:
        gemm_flops = cost.forward_flops * b
        m, n, k = _implicit_gemm_shape(cost, b)
        aligned = _tensor_core_aligned(cost)
        fwd = rates.gemm(m, n, k, aligned)
        # wgrad dW[n, k] = dY^T[n, m] X[m, k]; dgrad dX[m, k] = dY[m, n] W[n, k] (if needed)
        bwd = rates.gemm(n, k, m, aligned) + (rates.gemm(m, k, n, aligned) if needs_dx else 0.0)
    seconds = {"fwd": fwd, "bwd": bwd}
    moved = {"fwd": 0.0, "bwd": 0.0}
    for direction, op, eff_direction, n_bytes in _memory_moves(cost, needs_dx, fork, n_in, n_out, b,
                                                              rates.bytes_per_element):
        seconds[direction] = seconds[direction] + _memory_kernel(rates, stack, op, eff_direction, n_bytes)
        moved[direction] = moved[direction] + n_bytes
    return DenseLayerTime(cost.name, kind, seconds["fwd"], seconds["bwd"], gemm_flops, needs_dx, moved["fwd"],
                          moved["bwd"])


def dense_layer_times(model, stack, rates, b) -> tuple[DenseLayerTime, ...]:
    """Per-layer forward and backward seconds of one micro-batch of ``b`` samples, in execution
    order, ending with the loss (kind ``cross_entropy``)."""
    walk = _walk(model)
    rows = [_layer_time(cost, needs, fork, b, rates, stack) for cost, needs, fork in walk.steps]
    n_classes = model.layer_costs()[-1].n_out_elements
    ce_bytes = b * n_classes * stack.logits_bytes * stack.cross_entropy_passes
    ce = rates.memory(ce_bytes)
    rows.append(DenseLayerTime("loss", "cross_entropy", ce / 2, ce / 2, 0.0, True, ce_bytes / 2, ce_bytes / 2))
    return tuple(rows)


def activation_bytes_per_sample(model, stack, bytes_per_element: int) -> float:
    """Bytes autograd keeps per sample for the backward (see the module docstring)."""
    walk = _walk(model)
    n_classes = model.layer_costs()[-1].n_out_elements
    return (sum(walk.kept.values()) * bytes_per_element + walk.index_elements * INDEX_BYTES
            + n_classes * stack.logits_bytes)


def dense_shard_units(model, stack, c, forward_s, backward_s) -> ShardUnits:
    """The network as ZeRO-2/3 shards it: its layers with parameters as equal units, each with an
    equal share of the micro-batch's compute (a CNN's layers differ; this is the average)."""
    n_units = max(sum(1 for cost in model.layer_costs() if cost.n_params > 0), 1)
    per, e_w, e_g = model.n_params / n_units, DTYPE_BYTES[c.dtype], grad_bytes_per_param(stack, c.dtype)
    # not FSDP's units (a layer with parameters is not a wrapped unit): ZeRO-2 keeps the bucketed model
    return ShardUnits(n_units, per * e_w, per * e_g, forward_s / n_units, backward_s / n_units, 0.0, 0.0)


def _memory(params, c, stack, dp, activations) -> dict:
    weights, grads, opt_state = model_state_bytes(params, c, stack, dp)
    return {"weights": weights, "gradients": grads, "optimizer": opt_state, "activations": activations,
            "total": weights + grads + opt_state + activations}


def _per_kind(rows) -> dict:
    """Seconds per micro-batch by layer kind, and the kernel count (flat keys, so the JSON and
    CSV views need no nesting)."""
    by_kind: dict[str, float] = {}
    for r in rows:
        key = f"{r.kind}_per_microbatch_s"
        by_kind[key] = by_kind.get(key, 0.0) + r.forward_s + r.backward_s
    by_kind["n_layer_kernels_per_microbatch"] = sum((r.forward_s > 0) + (r.backward_s > 0) for r in rows)
    return by_kind


def predict_dense(model, system, plan) -> Prediction:
    """Predict one optimizer step of a ConvNet or MLP; ``plan`` must be resolved (tp = pp = 1).

    Long on purpose: every part of the dense step (layers, sync, optimizer, memory, FLOPs, bound) reads next to the others, as in transformer_terms.
    """
    stack = load_stack(plan.stack)
    check_capabilities(stack, plan)
    if plan.overlap and not stack.grad_sync_overlap:  # the stack reduces after the backward (its [grad_sync])
        plan = plan.replace(overlap=False)
    if plan.offload != "none":  # prediction.offload works on transformer layers
        raise PlanError(f"--offload {plan.offload}: CPU offload is modelled for transformer models only, not {model.name}")
    device = system.device
    hw = hw_params(system, plan.dtype, stack.gemm_rate_scale)
    rates = device_rates(hw, plan.dtype, stack)
    b, m, dp = plan.micro_batch, plan.n_microbatches, plan.dp

    rows = dense_layer_times(model, stack, rates, b)
    comp_f = sum(r.forward_s for r in rows)
    comp_b = sum(r.backward_s for r in rows)
    gemm_time = sum(r.forward_s + r.backward_s for r in rows if r.is_gemm)
    memory_bound_mb = sum(r.forward_s + r.backward_s for r in rows if not r.is_gemm)  # summed, not a difference

    # data-parallel gradient synchronisation, once per step after the last micro-batch; only
    # the last micro-batch's backward can hide it (DDP buckets, Li et al. VLDB 2020)
    params = model.n_params
    c = Choices.of(plan)
    units = dense_shard_units(model, stack, c, comp_f, comp_b)
    grad_bpp = grad_bytes_per_param(stack, plan.dtype)
    sync, exposed = gradient_sync_times(c, data_parallel_levels(hw, dp), dp, m, params * grad_bpp, params * DTYPE_BYTES[plan.dtype],
                                        comp_b, units, stack.param_gather_overlap, grad_buckets(stack, dp, grad_bpp))
    optimizer = optimizer_time(params, c, dp, stack, rates)

    breakdown = dict.fromkeys(BREAKDOWN_KEYS, 0.0)
    breakdown.update(compute=m * (comp_f + comp_b), optimizer=optimizer, dp_comm=waited_sync_time(sync, exposed, hw))
    step = sum(breakdown[k] for k in BREAKDOWN_KEYS)

    per_sample = activation_bytes_per_sample(model, stack, rates.bytes_per_element)
    memory = _memory(params, c, stack, dp, per_sample * b)  # one micro-batch in flight (no pipeline)
    capacity = device.memory_bytes
    fits = capacity is None or memory["total"] <= capacity

    # model FLOPs: 3 x the forward GEMM FLOPs (conv + linear) per sample, the convention of the
    # transformer path (GEMMs only; elementwise FLOPs do not run on the units the peak counts)
    gemm_flops_per_sample = sum(c.forward_flops for c in model.layer_costs() if c.kind in _GEMMS)
    model_flops = 3 * gemm_flops_per_sample * plan.global_batch
    mfu = model_flops / (step * plan.devices * device.peak(plan.dtype))

    busy = breakdown["compute"] + breakdown["optimizer"]
    bound = BOUNDS[int(bound_index(exposed, busy, m * memory_bound_mb + optimizer))]
    details = FrozenDict({
        "n_microbatches": m,
        "forward_per_microbatch_s": comp_f,
        "backward_per_microbatch_s": comp_b,
        "gemm_per_microbatch_s": gemm_time,
        "memory_bound_per_microbatch_s": memory_bound_mb,
        **_per_kind(rows),
        "activation_bytes_per_sample": per_sample,
        "dp_ranks_per_node": min(dp, hw.devices_per_node),
        "dp_sync_s": sync,
        "params_per_device": params,
        "model_flops_per_step": model_flops,
        "gemm_curve": rates.gemm_curve.source,
        "stack": stack.name,
    })
    return Prediction(model=model.name, system=system.name, plan=plan, step_time_s=step,
                      breakdown_s=FrozenDict(breakdown), comm_total_s=sync, bound=bound,
                      memory_bytes_per_device=FrozenDict(memory), memory_capacity_bytes=capacity,
                      fits_in_memory=fits, mfu=mfu, throughput=plan.global_batch / step,
                      throughput_unit="samples_per_s", details=details)

"""How a model's layers fall on pipeline stages, and what each stage holds.

Even (the default): every stage ceil(L / p) layers (the slowest stage of an uneven split sets the
pace: 126 layers on 16 stages, 8), the first stage with the embedding, the last with the final
norm, LM head and loss. Uneven (Megatron-Core ``--decoder-first-pipeline-num-layers`` /
``--decoder-last-pipeline-num-layers``, TransformerConfig ``num_layers_in_first_pipeline_stage`` /
``num_layers_in_last_pipeline_stage``): the first and/or last stage get the layer counts given
(0: a stage of the embedding, or of the head and loss, alone), the other stages split the rest
evenly (Megatron-Core asserts the rest divides evenly). The stage that sets the pace is the slowest
of first (layers + embedding), middle (layers) and last (layers + head and loss); the one that
sets the memory the largest of first (p micro-batches in flight under 1F1B), second (p - 1) and
last (one, plus the logits).

Source: NVIDIA/Megatron-LM megatron/core/transformer/transformer_config.py
(``num_layers_in_first_pipeline_stage``, ``num_layers_in_last_pipeline_stage``) and
megatron/core/transformer/transformer_block.py ``get_num_layers_to_build``; Narayanan et al.
SC'21 Section 2.2.1 (1F1B: stage i holds at most p - i micro-batches).
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.formulas._backend import ceil, floor, maximum, where
from perfmodel.prediction import moe
from perfmodel.prediction.rules import inflight_microbatches

__all__ = ["Layout", "stage_layers", "layout", "pacing_stage", "stage_times", "uneven_bubble", "params_per_device",
           "params_per_stage", "stage_inflight", "memory_candidates"]


class Layout(NamedTuple):
    """Layers of the first, a middle and the last stage; ``even``: no counts were given."""

    first: object
    middle: object
    last: object
    even: bool = True


def stage_layers(n_layers, pp):
    """Layers of the slowest pipeline stage: ceil(L / pp) when the stages are uneven (126 layers on
    16 stages: 8), L / pp for the crossover's continuous (fractional) stage count."""
    return where(pp == floor(pp), ceil(n_layers / pp), n_layers / pp)


def layout(n_layers, pp, first=None, last=None) -> Layout:
    """The stages' layer counts (see the module docstring); ``first`` / ``last`` None: even."""
    if first is None and last is None:
        n = stage_layers(n_layers, pp)
        return Layout(n, n, n)
    given = (first is not None) + (last is not None)
    rest = n_layers - (first or 0) - (last or 0)
    middle = rest / (pp - given) if pp > given else 0
    return Layout(middle if first is None else first, middle, middle if last is None else last, even=False)


def pacing_stage(lay: Layout, pp, per_layer_time, embedding, head):
    """(layers, forward extra, backward extra) of the stage that sets the pipeline's pace.

    ``per_layer_time``: one layer's seconds per micro-batch (compute and exposed communication);
    ``embedding`` and ``head``: (forward, backward) seconds of the embedding and of the final
    norm, LM head and loss. Even stages: ceil(L / p) layers and the slower of the two ends (both
    on a single stage); uneven: the slowest of first, middle and last stage."""
    (emb_f, emb_b), (head_f, head_b) = embedding, head
    if lay.even:
        return (lay.first, where(pp > 1, maximum(head_f, emb_f), head_f + emb_f),
                where(pp > 1, maximum(head_b, emb_b), head_b + emb_b))
    first, middle, last = stage_times(lay, pp, per_layer_time, embedding, head)
    is_first = first >= maximum(middle, last)
    is_last = last >= middle
    return (where(is_first, lay.first, where(is_last, lay.last, lay.middle)),
            where(is_first, emb_f, where(is_last, head_f, 0.0)), where(is_first, emb_b, where(is_last, head_b, 0.0)))


def stage_times(lay: Layout, pp, per_layer_time, embedding, head):
    """(first, middle, last) seconds per micro-batch of uneven stages: their layers, plus the
    embedding on the first and the head and loss on the last (a middle stage is 0 when pp = 2)."""
    first = lay.first * per_layer_time + embedding[0] + embedding[1]
    middle = where(pp > 2, lay.middle * per_layer_time, 0.0)
    return first, middle, lay.last * per_layer_time + head[0] + head[1]


def uneven_bubble(lay: Layout, pp, per_layer_time, embedding, head, per_stage_extra):
    r"""Idle time per step of a 1F1B or GPipe pipeline whose stages take unequal times T_i per
    micro-batch: m micro-batches through p stages in series take :math:`(m - 1)\max_i T_i + \sum_i T_i`
    (the makespan of a flow shop of identical jobs), so the bubble beyond m x the slowest stage is
    :math:`\sum_i T_i - \max_i T_i`; with equal stages it is the usual (p - 1) T (Narayanan et al.
    SC'21 Section 2.2.1). ``per_stage_extra``: what every stage adds per micro-batch (its
    point-to-point transfers)."""
    first, middle, last = stage_times(lay, pp, per_layer_time, embedding, head)
    total = first + maximum(pp - 2, 0) * middle + last + pp * per_stage_extra
    return total - (maximum(maximum(first, middle), last) + per_stage_extra)


def _param_parts(model, tp, ep):
    """(one layer's, the embedding's, the final norm's, the LM head's) parameters on one device of a
    tensor-parallel group (a mixture of experts' routed experts split over ep as well, :mod:`.moe`)."""
    per_layer = model.n_params_per_layer
    if moe.is_moe(model):  # dense models keep their exact (integer) count
        per_layer = per_layer - moe.expert_params_per_layer(model) * (1 - 1 / ep)
    emb = model.vocab * model.hidden / tp + (model.max_positions * model.hidden if model.positions == "learned" else 0)
    return per_layer / tp, emb, model.n_final_norm_params, model.vocab * model.hidden / tp


def params_per_device(model, tp, pp, ep=1):
    """Parameters held by the first and by the last pipeline stage's device (even stages)."""
    first, _, last = params_per_stage(model, tp, pp, ep)
    return first, last


def params_per_stage(model, tp, pp, ep=1, lay: Layout | None = None):
    """Parameters held by the first, a middle and the last pipeline stage's device
    (its layers, the embedding on the first, final norm and LM head on the last: a tied output layer
    keeps its own copy of the embedding there, as Megatron-LM does with pp > 1; one stage holds
    everything when pp = 1)."""
    lay = lay or layout(model.n_layers, pp)
    per_layer, emb, final_norm, head = _param_parts(model, tp, ep)
    single = lay.first * per_layer + emb + final_norm + (0 if model.tied_embeddings else head)
    first = where(pp > 1, lay.first * per_layer + emb, single)
    last = where(pp > 1, lay.last * per_layer + final_norm + head, single)
    return first, where(pp > 2, lay.middle * per_layer, 0.0), last


def stage_inflight(schedule: str, pp, m, virtual_stages, stage):
    """Micro-batches stage ``stage`` (0-based) holds at its peak: all m under GPipe, else the first
    stage's count of a pipeline ``stage`` stages shorter (1F1B: min(p - i, m)), at least one."""
    return maximum(inflight_microbatches(schedule, pp - stage, m, virtual_stages), 1)


def memory_candidates(lay: Layout, pp, schedule: str, m, virtual_stages, params) -> list:
    """((layers, micro-batches in flight, holds the LM head), parameters) of the stages that can be
    the fullest device: even stages, the first stage's layers and micro-batches with the larger
    parameters of the two ends (one stage holds all for pp = 1); uneven, the first, the second
    (pp > 2) and the last stage, each with its own. ``params``: the first, a middle and the last
    stage's (:func:`params_per_stage`)."""
    first, middle, last = params
    if lay.even:
        return [((lay.first, stage_inflight(schedule, pp, m, virtual_stages, 0), pp <= 1), maximum(first, last))]
    out = [((lay.first, stage_inflight(schedule, pp, m, virtual_stages, 0), False), first)]
    if pp > 2:
        out.append(((lay.middle, stage_inflight(schedule, pp, m, virtual_stages, 1), False), middle))
    return out + [((lay.last, stage_inflight(schedule, pp, m, virtual_stages, pp - 1), True), last)]

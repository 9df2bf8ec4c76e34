r"""The one notation table: every formula parameter name -> LaTeX symbol, SI unit, meaning.

A formula's parameters are named from this table, so its symbolic form, its LaTeX and its
``formula show`` page are built from the names alone (see :mod:`perfmodel.symbolic`). A test
checks that every parameter of every public formula is listed here.

Units are SI: s, bytes (B), FLOP, B/s, FLOP/s; ``1`` means dimensionless (counts, ratios).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Notation", "NOTATION"]


class Notation(NamedTuple):
    latex: str
    unit: str
    meaning: str


N = Notation

NOTATION: dict[str, Notation] = {
    # --- shared: network / collectives --------------------------------------------------------
    "n": N(r"n", "1", "number of participants (ranks, devices, nodes)"),
    "size": N(r"S", "B", "message size (for collectives: the full buffer per rank)"),
    "alpha": N(r"\alpha", "s", "per-message latency (startup time of one transfer)"),
    "beta": N(r"\beta", "B/s", "link bandwidth per direction"),
    # --- compute -----------------------------------------------------------------------------
    "flops": N(r"F", "FLOP", "floating-point operations of a kernel or step (multiply-add = 2)"),
    "bytes_moved": N(r"Q", "B", "bytes read from plus written to device memory"),
    "peak_flops_per_s": N(r"P_{peak}", "FLOP/s", "peak FLOP rate of one device (dense, given dtype)"),
    "efficiency": N(r"\eta", "1", "achieved fraction of the peak FLOP rate"),
    "memory_bandwidth": N(r"B_{mem}", "B/s", "device-memory bandwidth, reads plus writes"),
    "n_tokens": N(r"m", "1", "rows of a GEMM: tokens (batch x sequence) or samples"),
    "n_in_features": N(r"k", "1", "input features of a linear layer"),
    "n_out_features": N(r"n_{out}", "1", "output features of a linear layer"),
    "in_extent": N(r"H_{in}", "1", "input height or width of a convolution (pixels)"),
    "kernel_extent": N(r"K_{c}", "1", "kernel height or width of a convolution"),
    "stride": N(r"S_{c}", "1", "convolution stride"),
    "padding": N(r"P_{c}", "1", "convolution zero padding on each side"),
    "dilation": N(r"D_{c}", "1", "convolution dilation (1 = ordinary)"),
    "batch_size": N(r"b", "1", "sequences (samples) in the batch the formula covers"),
    "out_height": N(r"H_{out}", "1", "output height of a convolution"),
    "out_width": N(r"W_{out}", "1", "output width of a convolution"),
    "n_in_channels": N(r"C_{in}", "1", "input channels of a convolution"),
    "n_out_channels": N(r"C_{out}", "1", "output channels of a convolution"),
    "kernel_height": N(r"K_h", "1", "convolution kernel height"),
    "kernel_width": N(r"K_w", "1", "convolution kernel width"),
    "n_groups": N(r"G", "1", "convolution groups (1 dense, C_in depthwise)"),
    "hidden_size": N(r"h", "1", "transformer hidden size (model width)"),
    "n_heads": N(r"a", "1", "attention (query) heads"),
    "n_kv_heads": N(r"a_{kv}", "1", "key/value heads (grouped-query attention)"),
    "head_dim": N(r"d_{head}", "1", "dimension of one attention head"),
    # --- activation items (formulas/activations.py) -------------------------------------------
    "region_split": N(r"r", "1", "divisor of a replicated region: t with sequence parallelism, else 1"),
    "n_stats": N(r"n_{stat}", "1", "fp32 statistics a norm keeps per token (LayerNorm 2, RMSNorm 1)"),
    "width": N(r"k", "1", "input features of a linear layer held by one device"),
    "q_width": N(r"q", "1", "query width on one device (a d / t)"),
    "kv_width": N(r"k_v", "1", "key or value width on one device (max(a_kv / t, 1) d)"),
    "heads_per_device": N(r"a_t", "1", "query heads on one device (a / t)"),
    "dropout": N(r"\delta", "1", "1 when a dropout (and its mask) is applied, else 0"),
    "ffn_per_device": N(r"f_t", "1", "MLP inner width on one device (f / t)"),
    "gated": N(r"\gamma", "1", "1 for a gated (SwiGLU) MLP, else 0"),
    "seq_len": N(r"s", "1", "sequence length (tokens per sequence)"),
    "causal_fraction": N(r"c", "1", "computed fraction of the s x s score matrix (1 full, 0.5 causal skip)"),
    "n_elements": N(r"N_{el}", "1", "tensor elements a pointwise op processes"),
    "flops_per_element": N(r"f_{el}", "FLOP", "FLOPs per element of a pointwise op"),
    "n_accesses": N(r"n_{acc}", "1", "element reads plus writes per element of a pointwise op"),
    "bytes_per_element": N(r"w", "B", "bytes per tensor element (2 for bf16)"),
    "mask_bytes_per_element": N(r"w_{mask}", "B", "bytes of dropout mask per element (1 or 0)"),
    "vocab_size": N(r"V", "1", "vocabulary size"),
    "n_params": N(r"\Psi", "1", "number of parameters"),
    "flops_per_param": N(r"f_{opt}", "FLOP", "optimizer-step FLOPs per parameter"),
    "master_bytes_per_param": N(r"w_{master}", "B", "bytes per parameter of the optimizer's master weights"),
    "grad_bytes_per_param": N(r"w_{grad}", "B", "bytes per gradient element"),
    "moment_bytes_per_param": N(r"w_{mom}", "B", "bytes per element of one optimizer moment"),
    "n_moments": N(r"n_{mom}", "1", "optimizer moments kept (2 Adam, 1 momentum SGD)"),
    "weight_bytes_per_param": N(r"w_{weight}", "B", "bytes per parameter of the model (compute) weights"),
    "n_layers": N(r"L", "1", "transformer layers"),
    "model_flops_per_step": N(r"F_{model}", "FLOP", "model FLOPs of one step, recomputation excluded"),
    "step_time": N(r"T_{step}", "s", "time of one training step"),
    "n_devices": N(r"n_{dev}", "1", "devices (accelerators) running the step"),
    # --- gemm (shape model) ---------------------------------------------------------------------
    "gemm_m": N(r"M", "1", "rows of a GEMM's output C[M, N] = A[M, K] B[K, N]"),
    "gemm_n": N(r"N", "1", "columns of a GEMM's output"),
    "gemm_k": N(r"K", "1", "reduction (inner) dimension of a GEMM"),
    "tile_m": N(r"t_m", "1", "rows of the output tile one thread block (unit) computes"),
    "tile_n": N(r"t_n", "1", "columns of the output tile one thread block (unit) computes"),
    "tile_k": N(r"t_k", "1", "k step of a GEMM mainloop (depth of one A/B tile stage)"),
    "n_tiles": N(r"T_{tiles}", "1", "output tiles of a GEMM"),
    "n_units": N(r"U", "1", "compute units that each run one tile at a time (SMs, CUs, MMEs, MXUs, cores)"),
    "fill_steps": N(r"f_{fill}", "1", "k steps a tile's pipeline waits for its first operand stage"),
    "achievable_flops_per_s": N(r"R", "FLOP/s", "unquantized achievable matrix rate of the whole device"),
    "mamf_flops_per_s": N(r"R_{MAMF}", "FLOP/s", "measured maximum achievable matmul rate"),
    "mamf_m": N(r"M^*", "1", "M of the shape the MAMF was measured at"),
    "mamf_n": N(r"N^*", "1", "N of the shape the MAMF was measured at"),
    "mamf_k": N(r"K^*", "1", "K of the shape the MAMF was measured at"),
    "a_bytes_per_element": N(r"w_A", "B", "bytes per element of a GEMM's A operand"),
    "b_bytes_per_element": N(r"w_B", "B", "bytes per element of a GEMM's B operand"),
    "c_bytes_per_element": N(r"w_C", "B", "bytes per element of a GEMM's output C"),
    "fixed_time": N(r"t_{fix}", "s", "fixed per-kernel cost (launch) not overlapped with other work"),
    "softmax_flops": N(r"F_{sm}", "FLOP", "softmax FLOPs of an attention kernel"),
    "vector_flops_per_s": N(r"P_{vec}", "FLOP/s", "non-matrix (vector, fp32) FLOP rate of the device"),
    # --- memory ------------------------------------------------------------------------------
    "optimizer_bytes_per_param": N(r"K", "B", "optimizer-state bytes per parameter (ZeRO's K)"),
    "dp": N(r"N_d", "1", "data-parallel size"),
    "tp": N(r"t", "1", "tensor-parallel size"),
    "cp": N(r"c", "1", "context-parallel size (ranks each sequence is split over)"),
    "pp": N(r"p", "1", "pipeline-parallel size (stages)"),
    "n_microbatches": N(r"n_{mb}", "1", "micro-batches per step per pipeline"),
    "n_virtual_stages": N(r"n_{chunk}", "1", "model chunks per device (interleaved pipeline)"),
    "layer_activation_bytes": N(r"M_{layer}", "B", "activation bytes of one layer for one micro-batch"),
    # --- links -------------------------------------------------------------------------------
    "line_rate_bits_per_s": N(r"r_{line}", "bit/s", "signalling rate of one lane (transfers/s x 1 bit), before line encoding"),
    "encoding_efficiency": N(r"\eta_{enc}", "1", "payload fraction of the line code (8b/10b 0.8, 64b/66b, 128b/130b)"),
    "n_lanes": N(r"n_{lanes}", "1", "lanes (serial pairs per direction) in one link"),
    "n_links": N(r"n_{links}", "1", "parallel links used together (e.g. NVLinks of one GPU)"),
    "n_hops": N(r"n_{hops}", "1", "links a message traverses from sender to receiver"),
    "hop_latency": N(r"\delta", "s", "latency added per hop (switch traversal plus wire)"),
    "packet_bytes": N(r"P", "B", "packet size a message is split into for store-and-forward"),
    "bidirectional_bandwidth": N(r"\beta_{\leftrightarrow}", "B/s", "both directions of a full-duplex link added"),
    "payload_bytes": N(r"p_{pay}", "B", "payload bytes carried by one frame, packet or TLP"),
    "overhead_bytes": N(r"o", "B", "per-frame header, CRC, preamble and gap bytes on the wire"),
    # --- pcie --------------------------------------------------------------------------------
    "tlp_efficiency": N(r"\eta_{TLP}", "1", "data fraction of the link bytes of a TLP stream (framing, header, Lane-0 pad)"),
    "link_bandwidth": N(r"B_{link}", "B/s", "PCIe bytes/s per direction for TLPs and DLLPs (after encoding, flits, SKP)"),
    "flit_efficiency": N(r"\eta_{flit}", "1", "TLP bytes per flit byte (236/256 in PCIe Flit Mode, else 1)"),
    "skp_fraction": N(r"f_{SKP}", "1", "share of link time taken by SKP ordered sets"),
    "tlp_header_bytes": N(r"h_{TLP}", "B", "TLP header bytes (12 or 16; +4 with ECRC)"),
    "tlp_framing_bytes": N(r"f_{TLP}", "B", "per-TLP bytes below the transaction layer (STP, sequence, LCRC)"),
    "max_payload_bytes": N(r"\mathrm{MPS}", "B", "PCIe max payload size of one write TLP"),
    "completion_payload_bytes": N(r"c_{pay}", "B", "data bytes per read completion (MPS or the completer's RCB split)"),
    "max_read_request_bytes": N(r"\mathrm{MRRS}", "B", "PCIe max read request size"),
    "dllp_fraction": N(r"f_{DLLP}", "1", "share of one link direction used by DLLPs (Ack, UpdateFC)"),
    "n_dllp_types": N(r"n_{types}", "1", "DLLP streams sent at the interval (e.g. Ack and UpdateFC: 2)"),
    "dllp_bytes": N(r"d", "B", "bytes of one DLLP on the wire, framing included"),
    "n_symbols_per_dllp": N(r"N_{sym}", "1", "Symbol Times between two DLLPs of one type (Ack latency limit)"),
    "read_request_fraction": N(r"q", "1", "read-request bytes on the wire per byte read (opposite direction)"),
    "write_efficiency": N(r"\eta_{wr}", "1", "data fraction of posted-write TLP bytes"),
    "read_efficiency": N(r"\eta_{rd}", "1", "data fraction of read-completion TLP bytes"),
    "n_outstanding_reads": N(r"n_{rd}", "1", "read requests a PCIe requester may have in flight (tags)"),
    "read_latency_time": N(r"t_{rd}", "s", "PCIe read latency, request to last completion"),
    "uplink_bandwidth": N(r"B_{up}", "B/s", "bandwidth of a switch's upstream link, per direction"),
    "root_bandwidth": N(r"B_{root}", "B/s", "bandwidth a root complex sustains to host memory, per direction"),
    "n_switches": N(r"n_{sw}", "1", "PCIe switches below one root complex"),
    # --- topology ----------------------------------------------------------------------------
    "dim_x": N(r"k_x", "1", "nodes along x of a torus or mesh (ring length)"),
    "dim_y": N(r"k_y", "1", "nodes along y of a torus or mesh"),
    "dim_z": N(r"k_z", "1", "nodes along z of a 3D torus"),
    "arity": N(r"k_{ary}", "1", "children per switch of a k-ary tree"),
    "backplane_bandwidth": N(r"B_{bp}", "B/s", "total switching capacity of a switch backplane, shared by all flows"),
    "n_nodes_per_leaf": N(r"p_{leaf}", "1", "nodes attached to one leaf switch of a leaf-spine fat tree"),
    "oversubscription": N(r"o_{sub}", "1", "leaf oversubscription: downlink / uplink bandwidth (1 = full bisection)"),
    "n_nodes": N(r"N_{nodes}", "1", "nodes (servers) of a two-level system"),
    "n_devices_per_node": N(r"d_{node}", "1", "devices per node of a two-level system"),
    "beta_intra": N(r"\beta_{intra}", "B/s", "intra-node fabric bandwidth per device, per direction"),
    "beta_inter": N(r"\beta_{inter}", "B/s", "inter-node network bandwidth per device (its NIC share), per direction"),
    # --- collectives -------------------------------------------------------------------------
    "gamma": N(r"\gamma", "s/B", "reduction compute time per byte reduced"),
    "n_chunks": N(r"n_{ch}", "1", "pipeline chunks a message is split into"),
    "congestion": N(r"\kappa", "1", "equal flows sharing the busiest link of a step (max-min share beta/kappa)"),
    "n_flows": N(r"n_{fl}", "1", "concurrent equal flows sharing one uplink"),
    "alpha_intra": N(r"\alpha_{intra}", "s", "per-message latency inside a node"),
    "alpha_inter": N(r"\alpha_{inter}", "s", "per-message latency between nodes"),
    "elapsed_time": N(r"t_{coll}", "s", "measured time of one collective operation"),
    "algbw": N(r"\mathrm{algbw}", "B/s", "algorithm bandwidth S/t (nccl-tests)"),
    "busbw_factor": N(r"f_{bus}", "1", "nccl-tests bus-bandwidth correction factor of a collective"),
    # --- pipeline / data parallel ---------------------------------------------------------
    "stage_time": N(r"t_{stage}", "s", "one micro-batch's forward + backward on the slowest pipeline stage"),
    "sync_time": N(r"T_{sync}", "s", "time of the whole gradient synchronisation"),
    "overlap_window_time": N(r"T_{window}", "s", "backward compute the gradient sync can run under"),
    "last_bucket_time": N(r"T_{bucket}", "s", "all-reduce time of the last gradient bucket"),
    "comm_time": N(r"T_c", "s", "one unit's collective (a layer's parameter gather, plus its gradient reduce-scatter)"),
    "host_memory_bandwidth": N(r"B_{host}", "B/s", "a node's host DRAM bandwidth, all sockets, reads plus writes"),
    "copy_time": N(r"T_{copy}", "s", "one device<->host copy over PCIe"),
    "forward_time": N(r"T_f", "s", "one layer's forward compute"),
    "backward_time": N(r"T_b", "s", "one layer's backward compute (recompute included)"),
    "compute_time": N(r"T_x", "s", "one unit's compute, under which the next unit's collective runs"),
    "kv_transfer_time": N(r"t_{kv}", "s", "one ring-attention exchange with the neighbour rank (K, V chunk; backward also dK, dV)"),
    "step_attention_time": N(r"t_{att}", "s", "attention compute of one ring-attention step, under which the next exchange runs"),
    "n_servers": N(r"n_{srv}", "1", "parameter-server shards (servers)"),
    "p2p_time": N(r"T_{p2p}", "s", "one pipeline point-to-point transfer (a stage's activations or their gradients)"),
    "n_transfers": N(r"n", "1", "point-to-point transfers of one stage per micro-batch (2v with v model chunks)"),
    # --- mapped / treecoll / gridcoll (collectives mapped onto topologies) ---------------------
    "n_ports": N(r"k", "1", "links a rank drives at once (k-port model: n-1 fully connected, 1 on a switch)"),
    "bisection_bandwidth": N(r"B_{bis}", "B/s", "one-direction bandwidth across the minimum cut into two halves"),
    # --- scheduling (task graphs) ---------------------------------------------------------------
    "work_time": N(r"W", "s", "sum of the execution times of all tasks of a graph"),
    "critical_path_time": N(r"T_{cp}", "s", "execution time along the longest chain of dependent tasks"),
    "n_workers": N(r"m", "1", "workers (devices) a task graph is scheduled on"),
    "serial_time": N(r"T_1", "s", "time of all tasks in turn on the fastest single worker"),
    "makespan_time": N(r"T", "s", "finish time of the last task of a schedule"),
}


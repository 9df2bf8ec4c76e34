"""One prepared run on a lent Hopper GPU (H100/H200): what perfmodel's GEMM and
step models take as measured inputs, and whether the clock holds under load.

Writes CSVs under $OUT (or ./out):
  device.json         torch device properties and NVML clocks / power limit
  gemm.csv            bf16 and fp8 (torch._scaled_mm, e4m3, TN) TFLOP/s, medians of
                      CUDA events, square and transformer-shaped (same shapes as
                      perfmodel/data/validation/h100/gemm.csv and gemm_shapes.csv)
  sustained.csv       back-to-back work for ~40 s each (bf16 8192^3, fp8 8192^3, one
                      Llama-3-8B-shaped layer forward+backward): per window,
                      TFLOP/s (or ms per step), SM clock, power, temperature
  attention.csv       causal SDPA fwd and fwd+bwd by backend (flash, cudnn), GQA
  layer_kernels.csv   torch.profiler kernel table of that layer (3 steps)
  power.csv           ~15 s each of other work under the power cap (spin, copy, add,
                      attention, GEMMs of another shape, layers of other mixes)
  eager.csv           Hugging Face GPT-2 124M-774M and a TinyLlama-shaped 1.1B training in eager
                      PyTorch (autocast bf16, SDPA, fused AdamW), GPT-2 124M compiled: step
                      time and peak memory; eager_kernels_gpt2_124m.csv its kernel table
  more.csv            torchvision ResNet-50 (batch 256) and HF BERT-large MLM (16 x 512), eager bf16
                      autocast: step time and peak memory; more_kernels_resnet50.csv
  profiles.csv        GPT-2 355M under torch.compile: step time and memory; its kernel table
                      (profile_kernels_gpt2_355m_compiled.csv) and BERT-large's (..._bert_large.csv)
Run: python3 benchmarks/device/hopper_probe.py [gemm attention layer sustained power eager more profiles]
"""
import csv, json, os, threading, time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

OUT = os.environ.get("OUT", "out")
os.makedirs(OUT, exist_ok=True)
dev = torch.device("cuda")
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def write(name, rows):
    if not rows:
        return
    keys = list(rows[0].keys())
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    with open(os.path.join(OUT, name), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------- NVML
try:
    import pynvml as nv
    nv.nvmlInit()
    H = nv.nvmlDeviceGetHandleByIndex(0)
except Exception as e:  # noqa: BLE001
    log("no NVML:", e)
    nv = None


def nvml_read():
    if nv is None:
        return {}
    out = {}
    for key, fn in (
        ("sm_mhz", lambda: nv.nvmlDeviceGetClockInfo(H, nv.NVML_CLOCK_SM)),
        ("mem_mhz", lambda: nv.nvmlDeviceGetClockInfo(H, nv.NVML_CLOCK_MEM)),
        ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(H) / 1000.0),
        ("temp_c", lambda: nv.nvmlDeviceGetTemperature(H, nv.NVML_TEMPERATURE_GPU)),
        ("reasons", lambda: nv.nvmlDeviceGetCurrentClocksEventReasons(H)),
    ):
        try:
            out[key] = fn()
        except Exception:  # noqa: BLE001
            out[key] = ""
    return out


class Sampler:
    def __init__(self, period_s=0.1):
        self.period_s, self.rows, self.stop = period_s, [], False

    def run(self):
        while not self.stop:
            r = nvml_read()
            r["t"] = time.time()
            self.rows.append(r)
            time.sleep(self.period_s)

    def __enter__(self):
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.th.join()

    def window(self, t0, t1):
        sel = [r for r in self.rows if t0 <= r["t"] <= t1 and r.get("sm_mhz") != ""]
        if not sel:
            return {}
        avg = lambda k: sum(float(r[k]) for r in sel if r.get(k) != "") / max(1, sum(1 for r in sel if r.get(k) != ""))
        reasons = 0
        for r in sel:
            if isinstance(r.get("reasons"), int):
                reasons |= r["reasons"]
        return {"sm_mhz": round(avg("sm_mhz"), 1), "power_w": round(avg("power_w"), 1),
                "temp_c": round(avg("temp_c"), 1), "reasons_or": hex(reasons), "samples": len(sel)}


info = {"torch": torch.__version__, "cuda": torch.version.cuda,
        "name": torch.cuda.get_device_name(0),
        "sms": torch.cuda.get_device_properties(0).multi_processor_count,
        "mem_bytes": torch.cuda.get_device_properties(0).total_memory}
if nv is not None:
    for key, fn in (
        ("max_sm_mhz", lambda: nv.nvmlDeviceGetMaxClockInfo(H, nv.NVML_CLOCK_SM)),
        ("max_mem_mhz", lambda: nv.nvmlDeviceGetMaxClockInfo(H, nv.NVML_CLOCK_MEM)),
        ("power_limit_w", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(H) / 1000.0),
        ("idle", nvml_read),
    ):
        try:
            info[key] = fn()
        except Exception as e:  # noqa: BLE001
            info[key] = f"n/a: {e}"
with open(os.path.join(OUT, "device.json"), "w") as fh:
    json.dump(info, fh, indent=1, default=str)
log(info)


# ---------------------------------------------------------------- GEMMs
def timed(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record(); fn(); b.record()
    torch.cuda.synchronize()
    ts = sorted(a.elapsed_time(b) for a, b in ev)
    return ts[len(ts) // 2], ts[0]


FP8 = torch.float8_e4m3fn
one = torch.ones((), device=dev)


def gemm_fn(dtype, m, k, n, wgrad=False):
    """C[m,n] = A[m,k] B[k,n]; wgrad: A given transposed (column-major), as dW = X^T dY."""
    if dtype == "fp8":
        a = (torch.randn(m, k, device=dev) * 0.5).to(FP8)
        bt = (torch.randn(n, k, device=dev) * 0.5).to(FP8)
        b = bt.t()  # column-major: the TN layout cuBLASLt's FP8 path takes
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    dt = torch.bfloat16
    a = torch.randn(k, m, device=dev, dtype=dt).t() if wgrad else torch.randn(m, k, device=dev, dtype=dt)
    b = torch.randn(k, n, device=dev, dtype=dt)
    return lambda: a @ b


def section_gemm():
    shapes = [("square", s, s, s) for s in (1024, 2048, 4096, 8192, 16384)]
    for h in (768, 1024, 1600, 2048, 4096, 8192):
        f = 4 * h
        shapes += [("fwd_up", 8192, h, f), ("dgrad_up", 8192, f, h), ("wgrad_up", h, 8192, f),
                   ("fwd_down", 8192, f, h), ("wgrad_down", f, 8192, h)]
    # Llama-3-8B / 70B and Nemotron-4-15B layer GEMMs at 8192 tokens (TP1)
    shapes += [("qkv_l8b", 8192, 4096, 6144), ("up_l8b", 8192, 4096, 28672), ("down_l8b", 8192, 14336, 4096),
               ("up_l70b_tp8", 8192, 8192, 7168), ("down_l70b_tp8", 8192, 3584, 8192),
               ("up_n15b_tp2", 8192, 6144, 12288), ("down_n15b_tp2", 8192, 12288, 6144)]
    rows = []
    for dtype in ("bf16", "fp8"):
        for kind, m, k, n in shapes:
            try:
                fn = gemm_fn(dtype, m, k, n, wgrad=kind.startswith("wgrad"))
                reps = 10 if m * k * n > 2e12 else 30
                med, mn = timed(fn, reps=reps)
                rows.append({"dtype": dtype, "kind": kind, "m": m, "k": k, "n": n, "ms_median": round(med, 5),
                             "ms_min": round(mn, 5), "tflops_median": round(2 * m * n * k / med / 1e9, 1)})
            except Exception as e:  # noqa: BLE001
                rows.append({"dtype": dtype, "kind": kind, "m": m, "k": k, "n": n, "error": str(e)[:120]})
            del fn
        torch.cuda.empty_cache()
        log("gemm", dtype, "done")
    write("gemm.csv", rows)
    for r in rows:
        if r["kind"] in ("square", "up_l8b", "down_l8b"):
            print(r)


# ---------------------------------------------------------------- attention
def section_attention():

    att = []
    for b, hq, hkv, s, d in ((8, 16, 16, 1024, 64), (4, 32, 32, 4096, 128), (2, 32, 8, 4096, 128),
                             (1, 32, 8, 8192, 128), (1, 64, 8, 4096, 128)):
        q = torch.randn(b, hq, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        kk = torch.randn(b, hkv, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(b, hkv, s, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        go = torch.randn(b, hq, s, d, device=dev, dtype=torch.bfloat16)
        flop_fwd = 4 * b * hq * s * s * d / 2  # causal
        for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                         ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
            try:
                with sdpa_kernel([be]):
                    fwd = lambda: F.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=hkv != hq)
                    def fb():
                        o = fwd(); o.backward(go)
                    tf, _ = timed(fwd)
                    tfb, _ = timed(fb)
                att.append({"backend": name, "b": b, "hq": hq, "hkv": hkv, "seq": s, "head_dim": d,
                            "fwd_ms": round(tf, 4), "fwd_bwd_ms": round(tfb, 4),
                            "fwd_tflops": round(flop_fwd / tf / 1e9, 1),
                            "fwd_bwd_tflops": round(3.5 * flop_fwd / tfb / 1e9, 1)})
            except Exception as e:  # noqa: BLE001
                att.append({"backend": name, "b": b, "hq": hq, "hkv": hkv, "seq": s, "head_dim": d, "error": str(e)[:120]})
            q.grad = kk.grad = v.grad = None
    write("attention.csv", att)
    for r in att:
        print(r)
    log("attention done")



# ---------------------------------------------------------------- one layer
class Layer(torch.nn.Module):
    """Llama-3-8B decoder layer, bf16 weights, no autocast."""

    def __init__(self, h=4096, heads=32, kv=8, ffn=14336):
        super().__init__()
        self.h, self.heads, self.kv, self.d = h, heads, kv, h // heads
        self.qkv = torch.nn.Linear(h, h + 2 * kv * self.d, bias=False)
        self.o = torch.nn.Linear(h, h, bias=False)
        self.up = torch.nn.Linear(h, 2 * ffn, bias=False)
        self.down = torch.nn.Linear(ffn, h, bias=False)
        self.n1 = torch.nn.RMSNorm(h)
        self.n2 = torch.nn.RMSNorm(h)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(self.n1(x)).split([h, self.kv * self.d, self.kv * self.d], dim=-1)
        q = q.view(b, s, self.heads, self.d).transpose(1, 2)
        k = k.view(b, s, self.kv, self.d).transpose(1, 2)
        v = v.view(b, s, self.kv, self.d).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, h))
        g, u = self.up(self.n2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(g) * u)


def make_step(b=2, s=4096, **dims):
    layer = Layer(**dims).to(dev, torch.bfloat16)
    h = layer.h
    xin = torch.randn(b, s, h, device=dev, dtype=torch.bfloat16, requires_grad=True)
    gout = torch.randn_like(xin)

    def step():
        layer(xin).backward(gout)
    return step


def section_layer():
    profile_layer(make_step(), "layer_kernels.csv")


def profile_layer(step, name):
    """torch.profiler's kernel table of three calls of ``step`` (after three warm-ups), per call."""
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        kt = []
        for e in prof.key_averages():
            dt = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
            if dt and e.count:
                kt.append({"kernel": e.key[:160], "count": e.count // 3, "us_per_step": round(dt / 3, 1)})
        kt.sort(key=lambda r: -r["us_per_step"])
        write(name, kt)
        print(name, "kernels us per step:", round(sum(r["us_per_step"] for r in kt), 1))
        for r in kt[:25]:
            print(r)
    except Exception as e:  # noqa: BLE001
        log("profiler failed:", e)
    log("layer profile done")



# ---------------------------------------------------------------- sustained
def sustained(tag, fn, flop, seconds=40.0, chunk=20, rest_s=5.0, nbytes=0):
    """Run ``fn`` back to back for ``seconds``; per window of ``chunk`` calls: ms per call,
    TFLOP/s (``flop`` per call) or GB/s (``nbytes`` per call), and the NVML readings."""
    rows = []
    torch.cuda.synchronize()
    time.sleep(rest_s)  # let the clock come back from the last section
    with Sampler() as smp:
        t_end = time.time() + seconds
        i = 0
        while time.time() < t_end:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.time()
            a.record()
            for _ in range(chunk):
                fn()
            b.record()
            b.synchronize()
            t1 = time.time()
            ms = a.elapsed_time(b) / chunk
            r = {"test": tag, "window": i, "t_s": round(t1 - (t_end - seconds), 2), "ms_each": round(ms, 4)}
            if flop:
                r["tflops"] = round(flop / ms / 1e9, 1)
            if nbytes:
                r["gbps"] = round(nbytes / ms / 1e6, 1)
            r.update(smp.window(t0, t1))
            rows.append(r)
            i += 1
    first, late = rows[0], [r for r in rows if r["t_s"] > 2.0]
    def med(k):
        vals = sorted(float(r[k]) for r in late if r.get(k) not in (None, ""))
        return vals[len(vals) // 2] if vals else float("nan")
    log(tag, "first window", first["ms_each"], "ms | after 2 s: median ms", med("ms_each"), "ratio",
        round(med("ms_each") / first["ms_each"], 4), "| SM MHz", med("sm_mhz"), "power W", med("power_w"))
    return rows


def section_sustained():
    """~40 s each: bf16 and fp8 GEMM loops at 8192^3, one Llama-3-8B layer (b2, s4096)."""
    sus = []
    a16 = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    b16 = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    sus += sustained("bf16_8192", lambda: a16 @ b16, 2 * 8192 ** 3)
    write("sustained.csv", sus)
    sus += sustained("fp8_8192", gemm_fn("fp8", 8192, 8192, 8192), 2 * 8192 ** 3)
    write("sustained.csv", sus)
    sus += sustained("layer_l8b_mb2_s4096", make_step(), 0, chunk=2)
    write("sustained.csv", sus)


def section_power():
    """~15 s each: what the power cap does to other kinds of work. An almost idle spin (static
    power at a raised clock), a device copy and a bf16 add (memory-bound), causal attention
    (cuDNN, GQA), GEMMs of another shape in bf16 and fp8, and two layers with other mixes."""
    out = []
    run = lambda *a, **k: out.extend(sustained(*a, seconds=15.0, rest_s=3.0, **k))  # noqa: E731
    run("spin", lambda: torch.cuda._sleep(1_000_000), 0, chunk=10)
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device=dev).random_()
    dst = torch.empty_like(src)
    run("copy_1GiB", lambda: dst.copy_(src), 0, chunk=10, nbytes=2 * n)
    x = torch.randn(n // 2, device=dev, dtype=torch.bfloat16)
    y = torch.randn_like(x)
    run("add_bf16_1GiB", lambda: torch.add(x, y), 0, chunk=10, nbytes=3 * n)
    q = torch.randn(2, 32, 4096, 128, device=dev, dtype=torch.bfloat16, requires_grad=True)
    kv = [torch.randn(2, 8, 4096, 128, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(2)]
    go = torch.randn_like(q)

    def att():
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            F.scaled_dot_product_attention(q, *kv, is_causal=True, enable_gqa=True).backward(go)
    run("attention_cudnn_fb", att, 3.5 * 4 * 2 * 32 * 4096 ** 2 * 128 / 2, chunk=10)
    write("power.csv", out)
    m, k, n_ = 8192, 8192, 7168
    a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
    b = torch.randn(k, n_, device=dev, dtype=torch.bfloat16)
    run("bf16_8192x8192x7168", lambda: a @ b, 2 * m * k * n_)
    run("fp8_8192x8192x7168", gemm_fn("fp8", m, k, n_), 2 * m * k * n_)
    small = make_step(b=1, s=2048)
    profile_layer(small, "layer_kernels_l8b_mb1_s2048.csv")
    run("layer_l8b_mb1_s2048", small, 0, chunk=4)
    narrow = make_step(b=8, s=2048, h=1024, heads=16, kv=16, ffn=2816)
    profile_layer(narrow, "layer_kernels_h1024_mb8_s2048.csv")
    run("layer_h1024_mb8_s2048", narrow, 0, chunk=4)
    write("power.csv", out)


def hf_train_step(cls, config, b, seq, compiled=False):
    """(model, step) of a Hugging Face language model trained as the pytorch-eager stack assumes:
    fp32 parameters, bf16 autocast, SDPA attention, fused AdamW, the loss from labels = inputs;
    under torch.compile when ``compiled``."""
    config._attn_implementation = "sdpa"
    model = cls(config).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    run_model = torch.compile(model) if compiled else model
    ids = torch.randint(0, config.vocab_size, (b, seq), device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = run_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, step


def bert_large_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)


def _train_row(name, step, b, extra, params):
    """Median of 10 timed steps after 3 warm-ups (their wall time: compilation included) and the
    peak memory of the timed steps."""
    t_warm = time.time()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t_warm = time.time() - t_warm
    torch.cuda.reset_peak_memory_stats()
    med, mn = timed(step, reps=10, warm=0)
    row = {"model": name, "batch": b, **extra, "params": params, "step_ms_median": round(med, 3),
           "step_ms_min": round(mn, 3), "peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3),
           "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 3), "warmup_s": round(t_warm, 1)}
    log(row)
    return row


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def section_eager():
    """Hugging Face models training in eager PyTorch as the pytorch-eager stack assumes (fp32
    parameters, bf16 autocast, SDPA attention, fused AdamW, dropout as configured), and GPT-2 124M
    under torch.compile: median step time of 10 steps after 3 warm-ups, peak memory of those steps,
    and one step's kernel table for GPT-2 124M."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    out = []
    runs = [("gpt2-124m", GPT2Config(), 8, 1024), ("gpt2-355m", GPT2Config(n_embd=1024, n_layer=24, n_head=16), 8, 1024),
            ("gpt2-774m", GPT2Config(n_embd=1280, n_layer=36, n_head=20), 8, 1024),
            ("tinyllama-1.1b", LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                           num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                                           max_position_embeddings=2048), 4, 2048)]

    def run_one(name, config, b, seq, compiled):
        cls = GPT2LMHeadModel if name.startswith("gpt2") else LlamaForCausalLM
        model, step = hf_train_step(cls, config, b, seq, compiled)
        out.append(_train_row(name + (" compiled" if compiled else ""), step, b, {"seq": seq}, _n_params(model)))
        if name == "gpt2-124m" and not compiled:
            profile_layer(step, "eager_kernels_gpt2_124m.csv")

    for compiled in (False, True):
        for name, config, b, seq in runs if not compiled else runs[:1]:
            if compiled and time.time() - T0 > 240:
                log("skipping the compiled run: out of time")
                break
            try:
                run_one(name, config, b, seq, compiled)
            except Exception as e:  # noqa: BLE001 - one model failing must not lose the others
                log("eager run failed:", name, compiled, repr(e)[:300])
            torch.cuda.empty_cache()  # the run's model and optimizer are gone with run_one's frame
        write("eager.csv", out)


def section_more():
    """torchvision ResNet-50 (batch 256, channels_last, bf16 autocast, SGD with momentum) with its
    kernel table, and Hugging Face BERT-large masked-LM (batch 16 x 512, bf16 autocast, fused AdamW)."""
    import torchvision
    from transformers import BertForMaskedLM

    out = []
    model = torchvision.models.resnet50().to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(256, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (256,), device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    out.append(_train_row("resnet50", step, 256, {"image": 224}, _n_params(model)))
    profile_layer(step, "more_kernels_resnet50.csv")
    model = opt = None
    torch.cuda.empty_cache()
    bert, step = hf_train_step(BertForMaskedLM, bert_large_config(), 16, 512)
    out.append(_train_row("bert-large", step, 16, {"seq": 512}, _n_params(bert)))
    write("more.csv", out)


def section_profiles():
    """Kernel tables for later modelling: one step of GPT-2 355M under torch.compile (what Inductor
    fuses) and one of HF BERT-large (an encoder's eager kernels), each after its warm-up."""
    from transformers import BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    model, step = hf_train_step(GPT2LMHeadModel, GPT2Config(n_embd=1024, n_layer=24, n_head=16), 8, 1024,
                                compiled=True)
    row = _train_row("gpt2-355m compiled", step, 8, {"seq": 1024}, _n_params(model))
    profile_layer(step, "profile_kernels_gpt2_355m_compiled.csv")
    model = step = None
    torch.cuda.empty_cache()
    _, step = hf_train_step(BertForMaskedLM, bert_large_config(), 16, 512)
    profile_layer(step, "profile_kernels_bert_large.csv")
    write("profiles.csv", [row])


if __name__ == "__main__":
    import sys
    chosen = sys.argv[1:] or ["gemm", "attention", "layer", "sustained"]
    for name in chosen:
        globals()["section_" + name]()
        torch.cuda.empty_cache()
        log(name, "done")



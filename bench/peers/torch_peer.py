# PyTorch peer for `deno task bench` (bench/peers/mod.ts runs it; it is never part of the tests).
#
# The same jobs knot's bench times, written the way a PyTorch 1.13 user would write them:
#   - a Tied-LoRA TL6 (and a LoRA) fine-tuning step on a random Llama of TinyStories-15M's shape
#     (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000), batch 4 x seq 256, every position in the
#     loss, rank 8, AdamW + clip_grad_norm_(1.0); base weights frozen (requires_grad=False);
#   - matmul GFLOP/s at 1024^2 and the rank-r adapter shapes; add of two 16M-element tensors.
# Prints one JSON object on the last line of stdout.
#
#   /usr/bin/python3 bench/peers/torch_peer.py [--threads 2] [--reps 3] [--only train|ops] [--methods tl6,lora]
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DIM, LAYERS, HEADS, HIDDEN, VOCAB = 288, 6, 6, 768, 32000
BATCH, SEQ, RANK = 4, 256, 8
EPS, THETA = 1e-5, 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rope_tables(seq, head_dim):
    inv = 1.0 / (THETA ** (torch.arange(0, head_dim, 2).float() / head_dim))
    ang = torch.outer(torch.arange(seq).float(), inv)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    # rotate-half convention (HF Llama): element i pairs with i + head_dim/2
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Adapter(nn.Module):
    """The low-rank update of one layer's fused Q|K|V map: v * (B @ (u * (A @ x)))."""

    def __init__(self, A, B, u=None, v=None):
        super().__init__()
        self.A, self.B, self.u, self.v = A, B, u, v

    def forward(self, x):
        h = x @ self.A.t()
        if self.u is not None:
            h = h * self.u
        h = h @ self.B.t()
        if self.v is not None:
            h = h * self.v
        return h


class Layer(nn.Module):
    def __init__(self, adapter):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(DIM), RMSNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM, bias=False)
        self.wo = nn.Linear(DIM, DIM, bias=False)
        self.w1 = nn.Linear(DIM, HIDDEN, bias=False)
        self.w3 = nn.Linear(DIM, HIDDEN, bias=False)
        self.w2 = nn.Linear(HIDDEN, DIM, bias=False)
        self.adapter = adapter

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        hd = DIM // HEADS
        xa = self.attn_norm(x)
        qkv = self.qkv(xa) + self.adapter(xa)
        q, k, v = qkv.split(DIM, dim=-1)
        q = apply_rope(q.view(B, T, HEADS, hd).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(B, T, HEADS, hd).transpose(1, 2), cos, sin)
        v = v.view(B, T, HEADS, hd).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        probs = F.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        att = (probs @ v).transpose(1, 2).reshape(B, T, DIM)
        x = x + self.wo(att)
        h = self.mlp_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Llama(nn.Module):
    def __init__(self, adapters):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.layers = nn.ModuleList([Layer(a) for a in adapters])
        self.norm = RMSNorm(DIM)

    def forward(self, tokens):
        T = tokens.shape[1]
        cos, sin = rope_tables(T, DIM // HEADS)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x) @ self.embed.weight.t()  # tied LM head


def build(method):
    torch.manual_seed(0)
    m = 3 * DIM
    if method == "tl6":
        A = nn.Parameter(torch.randn(RANK, DIM))  # tied across layers
        B = nn.Parameter(torch.randn(m, RANK))
        adapters = [Adapter(A, B, nn.Parameter(torch.ones(RANK)), nn.Parameter(torch.zeros(m))) for _ in range(LAYERS)]
    else:  # lora: per-layer A (Kaiming-uniform) and B (zeros)
        bound = 1 / math.sqrt(DIM)
        adapters = [
            Adapter(nn.Parameter(torch.empty(RANK, DIM).uniform_(-bound, bound)), nn.Parameter(torch.zeros(m, RANK)))
            for _ in range(LAYERS)
        ]
    model = Llama(adapters)
    with torch.no_grad():
        model.embed.weight.normal_(0, DIM**-0.5)
    for name, p in model.named_parameters():
        if ".adapter." not in name:
            p.requires_grad_(False)
    return model


def batch():
    seqs = [[(1 + b * 131 + t * 17) % VOCAB for t in range(SEQ + 1)] for b in range(BATCH)]
    t = torch.tensor(seqs)
    return t[:, :-1], t[:, 1:]


def bench_train(method, reps):
    model = build(method)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    tokens, targets = batch()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    return {"stepMs": ms, "tokensPerS": BATCH * SEQ / (ms / 1000)}


def median_ms(fn, min_reps=5, min_s=0.3):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_ops():
    out = {}
    for name, (M, K, N) in {
        "1024x1024x1024": (1024, 1024, 1024),
        "4096x288x8": (4096, 288, 8),
        "4096x8x864": (4096, 8, 864),
    }.items():
        a, b = torch.randn(M, K), torch.randn(K, N)
        ms = median_ms(lambda: torch.matmul(a, b))
        out[name] = {"ms": ms, "gflops": 2 * M * N * K / ms / 1e6}
    n = 1 << 24
    x, y = torch.randn(n), torch.randn(n)
    ms = median_ms(lambda: torch.add(x, y))
    out["add16M"] = {"ms": ms, "gbps": 3 * 4 * n / ms / 1e6}
    return out


def peak_rss_mib():
    """VmHWM of this process in MiB (Linux). Not ru_maxrss: Linux carries that across execve from the process that
    forked this one, so a child of a large process (the bench, at several GiB) would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["train", "ops"], default=None)
    ap.add_argument("--methods", default="tl6,lora", help="training steps to time, comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.only in (None, "ops"):
        result["ops"] = bench_ops()
    if args.only in (None, "train"):
        result["train"] = {m: bench_train(m, args.reps) for m in args.methods.split(",")}
    # Peak resident memory of this process: with --methods tl6, that step's peak.
    result["peakRssMiB"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

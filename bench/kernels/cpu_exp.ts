/**
 * The exp family on cpu: ns per element of the engine's exp, sigmoid and silu (backends/cpu/wasm/elementwise.as.ts:
 * unaryF32) and of logsumexp over rows (reduceF32, the vocabulary loss's kernel), as eager ops on one thread, at
 * a few sizes; exp also over masked softmax scores (most of each row −∞). Minimum over rounds (the fastest run is
 * the one least disturbed by other work on the machine). At [768] the eager op's own cost (dispatch, allocation)
 * is most of the time.
 *
 *   deno run -A bench/kernels/cpu_exp.ts [--rounds 15] [--threads 1]
 * @module
 */
import { parseArgs } from "node:util";
import { dispose, exp, setBackend, type Tensor, tensor } from "../../mod.ts";
import { logsumexp, sigmoid, silu } from "../../core/nn.ts";
import { setCpuThreads } from "../../backends/cpu/mod.ts";
import { machineLine, table } from "../util.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "15" }, threads: { type: "string", default: "1" } },
});
const rounds = Number(values.rounds);
await setBackend("cpu");
setCpuThreads(Number(values.threads));

/** Minimum ns per element of `f` over `rounds` rounds, each timing enough calls to cover ~2M elements. */
function nsPerElement(f: () => Tensor, elements: number): number {
  const calls = Math.max(1, Math.round(2 ** 21 / elements));
  let best = Infinity;
  for (let i = 0; i < calls; i++) dispose(f()); // warm-up: the engine's functions reach V8's optimizing tier
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) dispose(f());
    best = Math.min(best, (performance.now() - t0) * 1e6 / (calls * elements));
  }
  return best;
}

/** n floats of an ordinary spread (a normal-ish sum of uniforms, times `scale`), from a fixed seed. */
function spread(n: number, scale: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed;
  const u = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < n; i++) v[i] = (u() + u() + u() - 1.5) * 2 * scale;
  return v;
}

const rows: (string | number)[][] = [];
for (const n of [768, 1 << 16, 1 << 20]) {
  const x = tensor(spread(n, 4, n));
  for (const [name, f] of [["exp", exp], ["sigmoid", sigmoid], ["silu", silu]] as const) {
    rows.push([name, `[${n}]`, nsPerElement(() => f(x), n).toFixed(2)]);
  }
  dispose(x);
}
{
  // Causal-mask-like scores: the first quarter of each 768-wide row ordinary, the rest −∞.
  const v = spread(1024 * 768, 4, 1);
  for (let i = 0; i < v.length; i++) if (i % 768 >= 192) v[i] = -Infinity;
  const masked = tensor(v, [1024, 768]);
  rows.push(["exp (¾ of each row −∞)", "[1024, 768]", nsPerElement(() => exp(masked), v.length).toFixed(2)]);
  dispose(masked);
}
for (const [r, c] of [[1024, 768], [64, 32000]]) {
  const x = tensor(spread(r * c, 3, r), [r, c]);
  rows.push(["logsumexp (rows)", `[${r}, ${c}]`, nsPerElement(() => logsumexp(x, -1), r * c).toFixed(2)]);
  dispose(x);
}

console.log(`# cpu exp family\n\n${machineLine()} · ${values.threads} thread(s), eager ops, min of ${rounds} rounds\n`);
console.log(table(["kernel", "shape", "ns / element"], rows));

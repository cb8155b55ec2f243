/**
 * Llama benchmarks on the CPU backend: forward tokens/s for a 256-token
 * prefill and for decoding with the KV cache, on stories260K (when
 * ../shared has it) and on a random-weight model of TinyStories-15M's shape;
 * and the memory cost of loading a checkpoint (RSS before/after and peak,
 * against the file size).
 *
 *   deno run -A bench/llama.ts
 * @module
 */
import { dispose, jit, pad, scope, setBackend, slice, type Tensor, tensor } from "../mod.ts";
import { decodeStep, type FixedKVCache } from "../llama/decode.ts";
import { ropeTables } from "../llama/rope.ts";
import {
  clearGenerateCache,
  forward,
  forwardWithCache,
  generate,
  type KVCache,
  type LlamaConfig,
  type LlamaParams,
  randomLlama,
  TINYSTORIES_15M,
} from "../llama/mod.ts";
import { loadLlama, saveLlama } from "../io/mod.ts";
import { exists, machineLine, STORIES, table } from "./util.ts";

const MB = 1024 * 1024;
const mb = (bytes: number) => (bytes / MB).toFixed(1);

interface LoadRss {
  ms: number;
  before: number;
  after: number;
  peak: number;
}

/** Child side of {@link loadInChild}: loads `dir`, prints RSS figures as JSON. */
async function measureLoadHere(dir: string): Promise<void> {
  await setBackend("cpu");
  const t0 = performance.now();
  const m = await withRss(() => loadLlama(dir));
  const result: LoadRss = { ms: performance.now() - t0, before: m.before, after: m.after, peak: m.peak };
  console.log(JSON.stringify(result));
}

/** Loads `dir` in a fresh `deno` process running this file and returns its RSS figures. */
async function loadInChild(dir: string): Promise<LoadRss> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--measure-load", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (code !== 0) throw new Error(`bench/llama.ts: measuring the load of ${dir} failed: ${dec.decode(stderr)}`);
  return JSON.parse(dec.decode(stdout).trim().split("\n").at(-1)!);
}

/** Runs `fn` while sampling RSS every millisecond; returns its result with RSS before, after and the peak. */
async function withRss<T>(fn: () => Promise<T>): Promise<{ value: T; before: number; after: number; peak: number }> {
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 1);
  try {
    const value = await fn();
    const after = Deno.memoryUsage().rss;
    return { value, before, after, peak: Math.max(peak, after) };
  } finally {
    clearInterval(timer);
  }
}

/** Matmul FLOPs of one token's forward at context length `ctx` (linears, attention, LM head). */
function flopsPerToken(c: LlamaConfig, ctx: number): number {
  const d = c.hiddenSize, q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  const linears = d * (q + 2 * kv) + q * d + 3 * d * c.intermediateSize;
  const attention = 2 * ctx * q; // scores and the weighted sum
  return 2 * (c.numLayers * (linears + attention) + c.vocabSize * d);
}

/** Deterministic token ids in [3, vocab). */
const tokens = (n: number, vocab: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));

export interface Speed {
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  /** The same decode with the jitted step over a preallocated cache (llama/decode.ts; generate runs it when sampling). */
  jitDecodeMs: number;
  decodeSteps: number;
  decodeStart: number;
}

export async function measure(
  params: LlamaParams,
  config: LlamaConfig,
  prefillTokens: number,
  decodeSteps: number,
  reps: number,
): Promise<Speed> {
  const ids = tokens(prefillTokens, config.vocabSize);
  // Prefill: the whole prompt in one forward, logits read back.
  const prefillRun = async () => {
    const t0 = performance.now();
    await scope(async () => void (await forward(params, tensor(ids, [ids.length], "int32"), config).data()));
    return performance.now() - t0;
  };
  await prefillRun(); // warm-up
  const prefills: number[] = [];
  for (let r = 0; r < reps; r++) prefills.push(await prefillRun());

  // Decode: after a short prompt, one token per forward through the KV cache, logits read back each step.
  const decodeStart = 16;
  const decodeRun = async () => {
    let cache: KVCache = scope(() =>
      forwardWithCache(params, tensor(ids.slice(0, decodeStart), [decodeStart], "int32"), config, null).cache
    );
    const t0 = performance.now();
    for (let s = 0; s < decodeSteps; s++) {
      const prev = cache;
      const step = scope(() => {
        const r = forwardWithCache(params, tensor([ids[(decodeStart + s) % ids.length]], [1], "int32"), config, prev);
        return { last: slice(r.logits, [0], [1]), cache: r.cache };
      });
      await step.last.data();
      step.last.dispose();
      dispose(prev.layers);
      cache = step.cache;
    }
    const ms = performance.now() - t0;
    dispose(cache.layers);
    return ms;
  };
  // Jitted decode: the cache preallocated to every position reached, the position a tensor. One jitted step for
  // all runs: the warm-up run traces and compiles it, so the timed runs measure replays only.
  const step = jit(decodeStep, { static: [5], donate: [1] });
  const jitDecodeRun = async () => {
    const length = decodeStart + decodeSteps;
    const start = scope(() => {
      const r = forwardWithCache(params, tensor(ids.slice(0, decodeStart), [decodeStart], "int32"), config, null);
      const grow = (x: Tensor) => pad(x, [[0, 0], [0, 0], [0, length - decodeStart], [0, 0]]);
      return {
        cache: { layers: r.cache.layers.map(({ k, v }) => ({ k: grow(k), v: grow(v) })) } as FixedKVCache,
        rope: ropeTables(config, Array.from({ length }, (_, i) => i)),
      };
    });
    let cache = start.cache;
    const t0 = performance.now();
    for (let s = 0; s < decodeSteps; s++) {
      const prev = cache;
      const out = scope(() => {
        const token = tensor([ids[(decodeStart + s) % ids.length]], [1], "int32");
        return step(params, prev, token, tensor([decodeStart + s], [1], "int32"), start.rope, config);
      });
      await out.logits.data();
      out.logits.dispose();
      cache = out.cache;
    }
    const ms = performance.now() - t0;
    dispose([cache.layers, start.rope]);
    return ms;
  };
  await decodeRun();
  const decodes: number[] = [];
  for (let r = 0; r < reps; r++) decodes.push(await decodeRun());
  await jitDecodeRun();
  const jitDecodes: number[] = [];
  for (let r = 0; r < reps; r++) jitDecodes.push(await jitDecodeRun());
  step.clear();
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    prefillMs: median(prefills),
    prefillTokens,
    decodeMs: median(decodes),
    jitDecodeMs: median(jitDecodes),
    decodeSteps,
    decodeStart,
  };
}

/**
 * Greedy `generate` (jitted decode, as users run it) after the BOS token: tokens/s counted as llama2.c's
 * run.c counts them, from the first generated token to the last; the median of `reps` calls after one
 * warm-up call (which traces and compiles the decode programs generate then keeps for the later calls).
 */
/** One greedy `generate` of `tokens` tokens from BOS: its tokens/s after the first token (the prefill's). */
export function generateOnce(params: LlamaParams, config: LlamaConfig, tokens: number): () => Promise<number> {
  return async () => {
    let t0 = 0, n = 0;
    for await (const _ of generate(params, config, [1], { maxTokens: tokens, stop: [] })) {
      if (n++ === 0) t0 = performance.now();
    }
    return (n - 1) / ((performance.now() - t0) / 1000);
  };
}

export async function generateTokensPerS(
  params: LlamaParams,
  config: LlamaConfig,
  tokens: number,
  reps: number,
): Promise<number> {
  const once = generateOnce(params, config, tokens);
  await once();
  const tps: number[] = [];
  for (let r = 0; r < reps; r++) tps.push(await once());
  clearGenerateCache();
  return tps.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

function speedRows(name: string, c: LlamaConfig, s: Speed): (string | number)[][] {
  // Prefill of T tokens: query t attends to t + 1 keys, so the mean context is (T + 1) / 2.
  const prefillFlops = s.prefillTokens * flopsPerToken(c, (s.prefillTokens + 1) / 2);
  const decodeFlops = s.decodeSteps * flopsPerToken(c, s.decodeStart + s.decodeSteps / 2);
  return [
    [
      name,
      `prefill ${s.prefillTokens}`,
      s.prefillMs.toFixed(1),
      (s.prefillTokens / (s.prefillMs / 1000)).toFixed(0),
      (prefillFlops / s.prefillMs / 1e6).toFixed(2),
    ],
    [
      name,
      `decode ${s.decodeSteps} (KV cache)`,
      s.decodeMs.toFixed(1),
      (s.decodeSteps / (s.decodeMs / 1000)).toFixed(1),
      (decodeFlops / s.decodeMs / 1e6).toFixed(2),
    ],
    [
      name,
      `decode ${s.decodeSteps} jitted (preallocated cache)`,
      s.jitDecodeMs.toFixed(1),
      (s.decodeSteps / (s.jitDecodeMs / 1000)).toFixed(1),
      "-",
    ],
  ];
}

function describe(c: LlamaConfig): string {
  const gqa = c.numKvHeads === c.numHeads ? `${c.numHeads} heads` : `${c.numHeads}/${c.numKvHeads} heads`;
  return `d=${c.hiddenSize}, ${c.numLayers} layers, ${gqa}, hidden ${c.intermediateSize}, vocab ${c.vocabSize}`;
}

/** Runs the Llama section, printing Markdown through `log`. */
export async function benchLlama(log: (s: string) => void = console.log): Promise<void> {
  await setBackend("cpu");
  const haveStories = exists(`${STORIES}/model.safetensors`);

  // Memory: each load in a fresh subprocess, so earlier allocations do not blur RSS.
  log("\n## Llama checkpoint loading (RSS in MiB, each in a fresh process)\n");
  const memRows: (string | number)[][] = [];
  const loadRow = async (name: string, dir: string) => {
    const file = Deno.statSync(`${dir}/model.safetensors`).size;
    const m = await loadInChild(dir);
    memRows.push([
      name,
      mb(file),
      m.ms.toFixed(0),
      mb(m.before),
      mb(m.after),
      mb(m.peak),
      mb(m.peak - m.before),
      ((m.peak - m.before) / file).toFixed(2),
    ]);
  };
  if (haveStories) await loadRow("stories260K", STORIES);
  const tmp = await Deno.makeTempDir({ prefix: "knot_bench_llama_" });
  const big = randomLlama({ ...TINYSTORIES_15M, seed: 15 });
  try {
    await saveLlama(tmp, big.params, big.config);
    await loadRow("random, TinyStories-15M shape", tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  log(table(["model", "file", "load ms", "RSS before", "after", "peak", "peak − before", "÷ file size"], memRows));
  const stories = haveStories ? await loadLlama(STORIES) : null;
  if (stories) dispose(stories.params);

  log("\n## Llama forward, cpu and webgpu (tokens/s; logits read back every forward)\n");
  const rows: (string | number)[][] = [];
  for (const backend of ["cpu", "webgpu"]) {
    try {
      await setBackend(backend);
    } catch (e) {
      log(`(${backend} skipped: ${(e as Error).message})`);
      continue;
    }
    // Weights live on a backend: load or build them on the one being measured.
    if (haveStories) {
      const s = await loadLlama(STORIES);
      rows.push(
        ...speedRows(
          `${backend} stories260K`,
          s.config,
          await measure(s.params, s.config, 256, 32, backend === "cpu" ? 5 : 2),
        ),
      );
      dispose(s.params);
    }
    const b = randomLlama({ ...TINYSTORIES_15M, seed: 15 });
    rows.push(
      ...speedRows(
        `${backend} TinyStories-15M shape`,
        b.config,
        await measure(b.params, b.config, 256, 32, backend === "cpu" ? 3 : 1),
      ),
    );
    dispose(b.params);
  }
  await setBackend("cpu");
  dispose(big.params);
  log(table(["backend / model", "pass", "ms", "tokens/s", "GFLOP/s (matmuls)"], rows));
  if (stories) log(`\nstories260K: ${describe(stories.config)}`);
  else log(`\nstories260K skipped: ${STORIES} absent`);
  log(`TinyStories-15M shape (random weights): ${describe(big.config)}`);
  log("Decode starts after a 16-token prompt; GFLOP/s counts the matmuls of linears, attention and the LM head.");
}

if (import.meta.main) {
  if (Deno.args[0] === "--measure-load") {
    await measureLoadHere(Deno.args[1]);
  } else {
    console.log(`# knot bench: Llama\n\n${machineLine()}`);
    await benchLlama();
  }
}

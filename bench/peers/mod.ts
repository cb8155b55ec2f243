/**
 * knot against its peers, measured in one run on one machine: PyTorch (CPU, 2 threads) on the TL6 and LoRA
 * fine-tuning steps, matmul at the square and rank-r adapter shapes, and a 16M-element add (against this
 * machine's copy bandwidth, probed here); llama2.c on greedy decode. Each peer is skipped with one line when
 * it is not installed. These are the bars of issue 11.
 *
 *   deno run -A bench/peers/mod.ts [--reps 3] [--only ops|train|decode]
 * @module
 */
import { parseArgs } from "node:util";
import { add, dispose, matmul, setBackend } from "../../mod.ts";
import { key, normal, split } from "../../core/random.ts";
import { clearGenerateCache, MAX_BLOCK, randomLlama, SMALL_MODEL_BLOCK, TINYSTORIES_15M } from "../../llama/mod.ts";
import { machineLine, STORIES, table, timeMedian } from "../util.ts";
import { timeStep } from "../train.ts";
import { generateOnce, generateTokensPerS, measure } from "../llama.ts";
import { loadLlama } from "../../io/mod.ts";
import { llama2cMissing, median, openLlama2c, pinThread, STORIES260K } from "./llama2c.ts";
import { measureCompiledDecode } from "../kernels/cpu_compile.ts";
import { cpuThreads, cpuWorkersReady } from "../../backends/cpu/mod.ts";
import { coreFromFlags } from "../../backends/cpu/wasm/blas.ts";

const PYTHON = "/usr/bin/python3";
const TORCH_SCRIPT = new URL("./torch_peer.py", import.meta.url).pathname;

interface TorchResult {
  torch: string;
  threads: number;
  ops?: Record<string, { ms: number; gflops?: number; gbps?: number }>;
  train?: Record<string, { stepMs: number; tokensPerS: number }>;
}

/** Why the PyTorch peer cannot run, or null. */
async function torchMissing(): Promise<string | null> {
  try {
    const { code } = await new Deno.Command(PYTHON, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
      .output();
    return code === 0 ? null : `${PYTHON} cannot import torch (apt-get install -y python3-torch libopenblas0-pthread)`;
  } catch {
    return `${PYTHON} not found`;
  }
}

/**
 * OpenBLAS's kernels for PyTorch: the CPU's (as knot's BLAS gets them). On a VM whose CPUID names a generic
 * model OpenBLAS falls back to its Prescott kernels: PyTorch's 1024² matmul ran 34 GFLOP/s here, 180–211 with
 * SkylakeX's, and its TL6 step 399–422 vs 790–970 tokens/s. A peer on the wrong kernels flatters knot.
 */
const TORCH_CORE = Deno.env.get("OPENBLAS_CORETYPE") ?? coreFromFlags();

async function runTorch(only: "train" | "ops", reps: number, threads = 2): Promise<TorchResult> {
  const { code, stdout, stderr } = await new Deno.Command(PYTHON, {
    args: [TORCH_SCRIPT, "--threads", String(threads), "--reps", String(reps), "--only", only],
    env: TORCH_CORE ? { OPENBLAS_CORETYPE: TORCH_CORE } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (code !== 0) throw new Error(`torch peer failed: ${dec.decode(stderr).slice(-2000)}`);
  return JSON.parse(dec.decode(stdout).trim().split("\n").at(-1)!);
}

/** Copy bandwidth probe: GB/s of a 64 MiB memcpy (bytes read + written), the machine's own ceiling. */
async function copyBandwidth(): Promise<number> {
  const n = 1 << 24; // 64 MiB of float32
  const src = new Float32Array(n).fill(1), dst = new Float32Array(n);
  const ms = await timeMedian(() => dst.set(src), 5, 300);
  return (2 * 4 * n) / ms / 1e6;
}

async function knotOps(): Promise<Record<string, { ms: number; gflops?: number; gbps?: number }>> {
  const out: Record<string, { ms: number; gflops?: number; gbps?: number }> = {};
  for (
    const [name, [M, K, N]] of Object.entries({
      "1024x1024x1024": [1024, 1024, 1024],
      "4096x288x8": [4096, 288, 8],
      "4096x8x864": [4096, 8, 864],
    })
  ) {
    const [ka, kb] = split(key(M + N));
    const a = normal(ka, [M, K]), b = normal(kb, [K, N]);
    const ms = await timeMedian(() => matmul(a, b).dispose(), 5, 300);
    out[name] = { ms, gflops: (2 * M * N * K) / ms / 1e6 };
    dispose([a, b]);
  }
  const n = 1 << 24;
  const [kx, ky] = split(key(3));
  const x = normal(kx, [n]), y = normal(ky, [n]);
  const ms = await timeMedian(() => add(x, y).dispose(), 5, 300);
  out.add16M = { ms, gbps: (3 * 4 * n) / ms / 1e6 };
  dispose([x, y]);
  return out;
}

const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : "-");

/** Runs the peer section, printing Markdown through `log`. */
export async function benchPeers(
  log: (s: string) => void = console.log,
  reps = 3,
  only?: "ops" | "train" | "decode",
): Promise<void> {
  const cpu = await setBackend("cpu");
  const blasName = () => (cpu as { blas?: string | null }).blas ?? "none (the wasm kernels)";
  log("\n## knot against its peers (same run, same machine; issue 11's bars)\n");
  const torchWhy = await torchMissing();
  const l2cWhy = llama2cMissing();

  const workers = await cpuWorkersReady();
  log(
    `knot cpu engine: ${cpuThreads()} thread(s) (${workers} worker(s) running), system BLAS: ${blasName()}; ` +
      `PyTorch: 2 threads, OpenBLAS kernels: ${TORCH_CORE ?? "its own detection"}\n`,
  );
  if (!only || only === "ops") await benchOps(log, reps, torchWhy);
  if (!only || only === "train") await benchTrainPeers(log, reps, torchWhy);
  if (!only || only === "decode") await benchDecode(log, reps, l2cWhy);
}

async function benchOps(log: (s: string) => void, reps: number, torchWhy: string | null): Promise<void> {
  // Ops: matmul shapes and add, against PyTorch; add against this machine's copy bandwidth.
  const copy = await copyBandwidth();
  const kOps = await knotOps();
  const tOps = torchWhy ? null : (await runTorch("ops", reps)).ops!;
  const tOps1 = torchWhy ? null : (await runTorch("ops", reps, 1)).ops!;
  const opRows = Object.keys(kOps).map((name) => {
    const k = kOps[name], t = tOps?.[name], t1 = tOps1?.[name];
    const unit = name === "add16M" ? "GB/s" : "GFLOP/s";
    const kv = k.gflops ?? k.gbps!, tv = t ? (t.gflops ?? t.gbps!) : undefined;
    const tv1 = t1 ? (t1.gflops ?? t1.gbps!) : undefined;
    return [
      `${name} (${unit})`,
      kv.toFixed(2),
      tv?.toFixed(2) ?? "-",
      ratio(kv, tv),
      tv1?.toFixed(2) ?? "-",
      name === "add16M" ? `${((100 * kv) / copy).toFixed(0)}% of copy` : "",
    ];
  });
  log(table(["op", "knot", "PyTorch 2 thr", "knot ÷ PyTorch 2 thr", "PyTorch 1 thr", "note"], opRows));
  log(`\ncopy bandwidth probe (64 MiB TypedArray.set, read + write): ${copy.toFixed(2)} GB/s`);
  if (torchWhy) log(`(PyTorch skipped: ${torchWhy})`);
  // Peak memory of the TL6 step, each in a process of its own (nothing else of the bench counted).
  const knotRss = await peakOf(Deno.execPath(), ["run", "-A", RSS_SCRIPT, String(reps)]);
  const torchRss = torchWhy ? null : await peakOf(PYTHON, [
    TORCH_SCRIPT,
    "--threads",
    "2",
    "--reps",
    String(reps),
    "--only",
    "train",
    "--methods",
    "tl6",
  ]);
  log(
    `\npeak RSS of a process running the 15M-shape b4×s256 TL6 step (${reps} steps and a warm-up): knot ` +
      `${knotRss?.toFixed(0) ?? "-"} MiB, PyTorch ${torchRss?.toFixed(0) ?? "-"} MiB` +
      (knotRss && torchRss ? ` (knot ÷ PyTorch ${(knotRss / torchRss).toFixed(2)}×)` : ""),
  );
}

const RSS_SCRIPT = new URL("./train_rss.ts", import.meta.url).pathname;

/** Runs a command that prints JSON with `peakRssMiB` on its last line; null when it fails or has none. */
async function peakOf(cmd: string, args: string[]): Promise<number | null> {
  const { code, stdout } = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  if (code !== 0) return null;
  const line = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  try {
    return (JSON.parse(line) as { peakRssMiB?: number }).peakRssMiB ?? null;
  } catch {
    return null;
  }
}

async function benchTrainPeers(log: (s: string) => void, reps: number, torchWhy: string | null): Promise<void> {
  // Training steps on the 15M shape.
  const big = randomLlama({ ...TINYSTORIES_15M, seed: 0 });
  const trainRows: (string | number)[][] = [];
  const tTrain = torchWhy ? null : (await runTorch("train", reps)).train!;
  const tTrain1 = torchWhy ? null : (await runTorch("train", reps, 1)).train!;
  for (const method of ["tl6", "lora"]) {
    const k = await timeStep(method, big.config, big.params, 4, 256, reps);
    const t = tTrain?.[method], t1 = tTrain1?.[method];
    trainRows.push([
      `15M-shape b4×s256 ${method}`,
      k.tokensPerS.toFixed(0),
      (4 * 256 / (k.ms.unfused / 1000)).toFixed(0),
      t?.tokensPerS.toFixed(0) ?? "-",
      ratio(k.tokensPerS, t?.tokensPerS),
      t1?.tokensPerS.toFixed(0) ?? "-",
      ratio(k.tokensPerS, t1?.tokensPerS),
    ]);
  }
  dispose(big.params);
  log(
    "\n" + table(
      [
        "training step (tokens/s)",
        "knot",
        "knot unfused",
        "PyTorch 2 thr",
        "knot ÷ PyTorch 2 thr",
        "PyTorch 1 thr",
        "knot ÷ PyTorch 1 thr",
      ],
      trainRows,
    ),
  );
  if (torchWhy) log(`(PyTorch skipped: ${torchWhy})`);
}

/**
 * Knot's greedy generate and llama2.c taking turns, `pairs` times (the order alternating), so both see the same
 * minutes of a machine whose speed moves: medians of each, and the median of the pairs' ratios.
 */
async function paired(
  knot: () => Promise<number>,
  peer: () => Promise<number>,
  pairs: number,
  setup: (pair: number) => void = () => {},
): Promise<{ knot: number; peer: number; ratio: number }> {
  const k: number[] = [], p: number[] = [], r: number[] = [];
  await knot(); // warm-up: traces and compiles the decode programs
  for (let i = 0; i < pairs; i++) {
    setup(i);
    let kk: number, pp: number;
    if (i % 2) pp = await peer(), kk = await knot();
    else kk = await knot(), pp = await peer();
    k.push(kk), p.push(pp), r.push(kk / pp);
  }
  return { knot: median(k), peer: median(p), ratio: median(r) };
}

/**
 * Decode pairs per comparison: each turn is one generate call and one llama2.c process. This VM's speed moves ±15–40%
 * between back-to-back calls; 9 pairs read stories260K at 0.94× and 1.28× of llama2.c within an hour (2026-12-01).
 */
const DECODE_PAIRS = 15;

async function benchDecode(log: (s: string) => void, reps: number, l2cWhy: string | null): Promise<void> {
  // Decode against llama2.c.
  const steps = 112, prompt = 16;
  const dec = randomLlama({ ...TINYSTORIES_15M, seed: 15 });
  const s = await measure(dec.params, dec.config, prompt, steps, reps);
  const knotTps = s.decodeSteps / (s.decodeMs / 1000);
  const jitTps = s.decodeSteps / (s.jitDecodeMs / 1000);
  // The floor a jitted decode reaches: one decode step (at the run's mean context) recorded as a Program and
  // run by CpuBackend.compile (bench/kernels/cpu_compile.ts); likewise for stories260K against llama2.c on it.
  const compiled = await measureCompiledDecode("15M", prompt + steps / 2, 20, 0);
  const compiledTps = 1e6 / compiled.compiled.wall;
  const tiny = await measureCompiledDecode("stories260K", prompt + steps / 2, 300, 0);
  const tinyTps = 1e6 / tiny.compiled.wall;
  log(
    `\nknot compiled decode step (a recorded step run by CpuBackend.compile, bit-identical to eager: ` +
      `${compiled.bitIdentical && tiny.bitIdentical}): 15M shape ${compiledTps.toFixed(1)} tokens/s, ` +
      `stories260K shape ${tinyTps.toFixed(0)} tokens/s`,
  );
  // Greedy generate as users run it (decode blocks of jitted steps, programs kept across calls), from BOS.
  const genOnce = generateOnce(dec.params, dec.config, prompt + steps);
  if (l2cWhy) {
    const gen = await generateTokensPerS(dec.params, dec.config, prompt + steps, reps);
    dispose(dec.params);
    log(
      `\nknot decode (15M shape, ${steps} tokens after a ${prompt}-token prompt): ${knotTps.toFixed(1)} tokens/s, ` +
        `jitted ${jitTps.toFixed(1)} tokens/s; greedy generate (${prompt + steps} tokens) ${gen.toFixed(1)} tokens/s`,
    );
    log(`(llama2.c skipped: ${l2cWhy})`);
    return;
  }
  const l2c = await openLlama2c(prompt + steps);
  const pinned = l2c.pinned;
  const rows: (string | number)[][] = [];
  try {
    for (const threads of [1, 2] as const) {
      const p = await paired(genOnce, () => l2c.once(threads), DECODE_PAIRS);
      rows.push([
        `llama2.c ${threads} thread(s)`,
        knotTps.toFixed(1),
        jitTps.toFixed(1),
        p.peer.toFixed(1),
        ratio(knotTps, p.peer),
        ratio(jitTps, p.peer),
        p.knot.toFixed(1),
        ratio(p.knot, p.peer),
        `${p.ratio.toFixed(2)}×`,
        compiledTps.toFixed(1),
        ratio(compiledTps, p.peer),
      ]);
    }
  } finally {
    await l2c.close();
    dispose(dec.params);
    clearGenerateCache();
  }
  const cols = ["knot", "knot jitted", "llama2.c", "knot ÷ llama2.c", "jitted ÷ llama2.c", "knot generate"];
  log(
    "\n" + table(
      [
        "decode, random 15M shape (tokens/s)",
        ...cols,
        "generate ÷ llama2.c",
        "median of pairs' ratios",
        "knot compiled step",
        "÷ llama2.c",
      ],
      rows,
    ),
  );
  try {
    Deno.statSync(STORIES260K.model);
    const stories = await loadLlama(STORIES), real = await openLlama2c(prompt + steps, STORIES260K);
    let pinnedCpus = false;
    try {
      // Both sides on one CPU a pair (knot's main thread pinned, llama2.c by taskset to where it runs), the CPUs
      // in turn: stories260K's decode runs on the main thread alone, at each vCPU's own speed.
      const cpus = navigator.hardwareConcurrency || 1;
      const p = await paired(
        generateOnce(stories.params, stories.config, prompt + steps),
        () => real.once(1),
        DECODE_PAIRS,
        (i) => pinnedCpus = pinThread(i % cpus) && real.pinned,
      ).finally(() => pinThread(null));
      log(
        `\nstories260K: llama2.c 1 thread ${
          p.peer.toFixed(0)
        } tokens/s (the real checkpoint); knot generate (the same ` +
          `checkpoint, jitted decode, ${prompt + steps} tokens) ${p.knot.toFixed(0)} tokens/s on ${cpuThreads()} ` +
          `thread(s)${pinnedCpus ? ", each pair's two runs pinned to one CPU, the CPUs in turn" : ""}: ` +
          `${ratio(p.knot, p.peer)} (median of the pairs' ratios ${p.ratio.toFixed(2)}×); knot compiled ` +
          `step (random weights, same shape) ${tinyTps.toFixed(0)} tokens/s: ${ratio(tinyTps, p.peer)}`,
      );
    } finally {
      await real.close();
      dispose(stories.params);
      clearGenerateCache();
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    log(`(stories260K vs llama2.c skipped: ${STORIES260K.model} absent)`);
  }
  log(
    `\nllama2.c: gcc -Ofast -march=native (its timer in µs, not ms), ${prompt + steps} greedy tokens` +
      (pinned ? ", one thread pinned (taskset) to the CPU knot's main thread last ran on" : "") + `; knot: ` +
      `${steps} tokens after a ${prompt}-token prompt, logits read back each step (jitted: llama/decode.ts's ` +
      `step over a cache preallocated to ${prompt + steps} positions, traced once, in the warm-up run); knot ` +
      `generate: greedy, ${prompt + steps} tokens from BOS, decode blocks of up to ${MAX_BLOCK} jitted steps ` +
      `(${SMALL_MODEL_BLOCK} for stories260K, a small model: blockCap), tokens read back once a block. Generate ` +
      `and llama2.c take turns, ${DECODE_PAIRS} of each after a warm-up call, so both see the same minutes of ` +
      `the machine: their medians, and the median of the pairs' ratios.`,
  );
}

if (import.meta.main) {
  const usage = "usage: deno run -A bench/peers/mod.ts [--reps N] [--only ops|train|decode]";
  let values: { reps: string; only?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { reps: { type: "string", default: "3" }, only: { type: "string" }, help: { type: "boolean" } },
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${usage}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(`error: --reps must be a positive integer, got ${values.reps}\n${usage}`);
    Deno.exit(2);
  }
  if (values.only !== undefined && !["ops", "train", "decode"].includes(values.only)) {
    console.error(`error: --only must be ops, train or decode, got ${values.only}\n${usage}`);
    Deno.exit(2);
  }
  console.log(`# knot bench: peers\n\n${machineLine()}`);
  await benchPeers(console.log, reps, values.only as "ops" | "train" | "decode" | undefined);
}

/**
 * Training throughput: tokens/s of a fine-tuning step for TL6 and LoRA (r=8)
 * on a random-weight Llama of TinyStories-15M's shape (dim 288, 6 layers,
 * 6 heads, hidden 768, vocab 32000; batch 4 × seq 256) and on stories260K,
 * with one step split into forward, backward and optimizer.
 *
 *   deno run -A bench/train.ts [--backend cpu|webgpu] [--only-260k] [--method tl6|lora …]
 * @module
 */
import { parseArgs } from "node:util";
import { adamw, chain, clipByGlobalNorm } from "../optim/mod.ts";
import { dispose, getBackend, scope, setBackend, valueAndGrad } from "../mod.ts";
import type { WebGpuBackend } from "../backends/webgpu/mod.ts";
import type { Program } from "../backends/program.ts";
import { key } from "../core/random.ts";
import { type LlamaConfig, type LlamaParams, randomLlama, TINYSTORIES_15M } from "../llama/mod.ts";
import { loadLlama } from "../io/mod.ts";
import { preset } from "../peft/mod.ts";
import { type LmBatch, makeBatch, planLoss, trainStep } from "../train/mod.ts";
import { exists, machineLine, STORIES, table, timeMedian } from "./util.ts";

/** A batch whose every position counts in the loss (the costliest case: the LM head runs everywhere). */
export function fullBatch(config: LlamaConfig, batch: number, seq: number): LmBatch {
  const seqs = Array.from(
    { length: batch },
    (_, b) => Array.from({ length: seq + 1 }, (_, t) => (1 + b * 131 + t * 17) % config.vocabSize),
  );
  return makeBatch(seqs.map((s) => ({ prompt: s.slice(0, 1), answer: s.slice(1) })), seq);
}

/** How a step runs: jitted with fusion (trainStep's default), jitted one kernel per primitive, or eager. */
const MODES = ["fused", "unfused", "eager"] as const;
type Mode = typeof MODES[number];

/** Times one method's step (forward, forward+backward, each mode's full step); medians in ms. */
export async function timeStep(
  method: string,
  config: LlamaConfig,
  params: LlamaParams,
  batchSize: number,
  seq: number,
  reps: number,
): Promise<{
  fwd: number;
  fb: number;
  ms: Record<Mode, number>;
  tokensPerS: number;
  primitives: number;
  gpu: Partial<Record<Mode, { submits: number; dispatches: number }>>;
}> {
  const batch = fullBatch(config, batchSize, seq);
  const plan = preset(method, { rank: 8 });
  const { trainable, frozen } = plan.init(params, key(0));
  const loss = planLoss(plan, config);
  const opt = chain(clipByGlobalNorm(1), adamw(1e-3));
  let state = { trainable, opt: opt.init(trainable) };
  const fwd = await timeMedian(
    () => scope(async () => void (await loss(state.trainable, frozen, batch).item())),
    reps,
    0,
  );
  const vg = valueAndGrad(loss);
  const fb = await timeMedian(
    () => scope(async () => void (await vg(state.trainable, frozen, batch)[0].item())),
    reps,
    0,
  );
  // The primitives of a step: the steps of the program jit compiles unfused, the largest it compiles (seen by
  // wrapping `compile`).
  const backend = getBackend();
  const compile = backend.compile?.bind(backend);
  let primitives = 0;
  const seen = (p: Program) => (primitives = Math.max(primitives, p.steps.length), compile!(p));
  if (compile) Object.assign(backend, { compile: seen });
  // The modes take turns, so a change in machine load shifts all of them; the first round (traces and compiles)
  // is not counted. On webgpu: queue submits and dispatches per step, from the engine's counters.
  const stats = (backend as Partial<WebGpuBackend>).engine?.stats;
  const steps = MODES.map((mode) => trainStep(loss, opt, { jit: mode !== "eager", fuse: mode === "fused" }));
  const times = MODES.map(() => [] as number[]), counts = MODES.map(() => ({ submits: 0, dispatches: 0 }));
  for (let round = 0; round <= reps; round++) {
    for (const [i, step] of steps.entries()) {
      const s0 = stats?.submits ?? 0, d0 = stats?.dispatches ?? 0, t0 = performance.now();
      const r = step(state, frozen, batch);
      await r.loss.item();
      r.loss.dispose();
      state = r.state;
      if (round === 0) continue;
      times[i].push(performance.now() - t0);
      counts[i].submits += ((stats?.submits ?? 0) - s0) / reps;
      counts[i].dispatches += ((stats?.dispatches ?? 0) - d0) / reps;
    }
  }
  for (const step of steps) step.clear();
  const median = (ts: number[]) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
  const ms = Object.fromEntries(MODES.map((m, i) => [m, median(times[i])])) as Record<Mode, number>;
  const gpu: Partial<Record<Mode, { submits: number; dispatches: number }>> = stats
    ? Object.fromEntries(MODES.map((m, i) => [m, counts[i]]))
    : {};
  if (compile) delete (backend as { compile?: unknown }).compile;
  dispose([state.trainable, state.opt]);
  dispose([batch.tokens, batch.positions, batch.targets]);
  return { fwd, fb, ms, tokensPerS: (batchSize * seq) / (ms.fused / 1000), primitives, gpu };
}

async function benchModel(
  name: string,
  config: LlamaConfig,
  params: LlamaParams,
  batchSize: number,
  seq: number,
  reps: number,
  methods: readonly string[],
) {
  const rows: (string | number)[][] = [];
  for (const method of methods) {
    const { fwd, fb, ms, tokensPerS, primitives, gpu } = await timeStep(method, config, params, batchSize, seq, reps);
    const g = gpu.fused ? MODES.map((m) => `${gpu[m]!.submits.toFixed(1)} / ${gpu[m]!.dispatches.toFixed(0)}`) : [];
    rows.push([
      `${name} ${method}`,
      ...MODES.map((m) => ms[m].toFixed(0)),
      (ms.eager / ms.fused).toFixed(2),
      fwd.toFixed(0),
      Math.max(0, fb - fwd).toFixed(0),
      Math.max(0, ms.eager - fb).toFixed(0),
      tokensPerS.toFixed(0),
      primitives,
      ...(gpu.fused ? [(primitives / gpu.fused.dispatches).toFixed(2), ...g] : []),
    ]);
  }
  return rows;
}

/** Runs the training section. */
export async function benchTrain(
  log: (s: string) => void = console.log,
  backend = "cpu",
  opts: { only260K?: boolean; methods?: readonly string[] } = {},
): Promise<void> {
  try {
    await setBackend(backend);
  } catch (e) {
    log(`\n(training bench on ${backend} skipped: ${(e as Error).message})`);
    return;
  }
  const methods = opts.methods ?? ["tl6", "lora"];
  log(`\n## Training step (${backend}): tokens/s and the split of one step, rank 8, AdamW\n`);
  const rows: (string | number)[][] = [];
  if (exists(STORIES)) {
    const { config, params } = await loadLlama(STORIES);
    rows.push(...await benchModel("stories260K b8×s128", config, params, 8, 128, 5, methods));
    dispose(params);
  } else log("(stories260K skipped: ../shared/models/stories260K absent)");
  if (!opts.only260K) {
    const { config, params } = randomLlama({ ...TINYSTORIES_15M, seed: 0 });
    rows.push(...await benchModel("15M-shape b4×s256", config, params, 4, 256, 3, methods));
    dispose(params);
  }
  const head = [
    "model / method",
    "step ms (jitted, fused)",
    "(jitted, unfused)",
    "(eager)",
    "eager ÷ fused",
    "forward",
    "backward",
    "optimizer",
    "tokens/s (fused)",
    "primitives per step",
  ];
  if (rows.some((r) => r.length > head.length)) {
    head.push("primitives ÷ fused dispatches", "submits / dispatches per step (fused)", "(unfused)", "(eager)");
  }
  log(table(head, rows));
  log("(jitted, fused: trainStep's default, one program per step with elementwise chains fused; unfused:");
  log(" trainStep(..., { fuse: false }), one kernel per primitive; eager: trainStep(..., { jit: false }); forward,");
  log(" backward and optimizer split the eager step; primitives: the steps of the unfused program; on webgpu a");
  log(" jitted step and the read of its loss are one submit (the program is recorded, the read submits it with");
  log(" the copy it reads through), where eager flushes every ~500 dispatches; the three modes take turns,");
  log(" medians of 5 turns (stories260K) or 3)");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: "cpu" },
      "only-260k": { type: "boolean" },
      method: { type: "string", multiple: true },
    },
  });
  console.log(`# knot training bench\n\n${machineLine()}`);
  await benchTrain(console.log, values.backend!, { only260K: values["only-260k"], methods: values.method });
}

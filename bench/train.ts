/**
 * Training throughput: tokens/s of a fine-tuning step for TL6 and LoRA (r=8)
 * on a random-weight Llama of TinyStories-15M's shape (dim 288, 6 layers,
 * 6 heads, hidden 768, vocab 32000; batch 4 × seq 256) and on stories260K,
 * with one step split into forward, backward and optimizer.
 *
 *   deno run -A bench/train.ts [--backend cpu|webgpu]
 * @module
 */
import { parseArgs } from "node:util";
import { adamw, chain, clipByGlobalNorm } from "../optim/mod.ts";
import { dispose, getBackend, scope, setBackend, valueAndGrad } from "../mod.ts";
import type { WebGpuBackend } from "../backends/webgpu/mod.ts";
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

/** Times one method's step (forward, forward+backward, full step) on `params`; medians in ms. */
export async function timeStep(
  method: string,
  config: LlamaConfig,
  params: LlamaParams,
  batchSize: number,
  seq: number,
  reps: number,
): Promise<
  {
    fwd: number;
    fb: number;
    full: number;
    unfused: number;
    eager: number;
    tokensPerS: number;
    gpu: Record<string, string>;
  }
> {
  const batch = fullBatch(config, batchSize, seq);
  const plan = preset(method, { rank: 8 });
  const { trainable, frozen } = plan.init(params, key(0));
  const loss = planLoss(plan, config);
  const opt = chain(clipByGlobalNorm(1), adamw(1e-3));
  const step = trainStep(loss, opt); // jitted (the default), fused where the backend fuses
  const unfusedStep = trainStep(loss, opt, { fuse: false });
  const eagerStep = trainStep(loss, opt, { jit: false });
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
  // On webgpu: queue submits and dispatches per step, from the engine's counters.
  const stats = (getBackend() as Partial<WebGpuBackend>).engine?.stats;
  const gpu = { jit: "", unfused: "", eager: "" };
  const timed = async (which: keyof typeof gpu, run: typeof step) => {
    let calls = 0, s0 = 0, d0 = 0;
    const ms = await timeMedian(
      async () => {
        const r = run(state, frozen, batch);
        await r.loss.item();
        r.loss.dispose();
        state = r.state;
        // Counted from the end of the warm-up call (which traces and compiles).
        if (++calls === 1) [s0, d0] = [stats?.submits ?? 0, stats?.dispatches ?? 0];
      },
      reps,
      0,
    );
    const n = calls - 1;
    if (stats && n > 0) {
      gpu[which] = `${((stats.submits - s0) / n).toFixed(1)} / ${((stats.dispatches - d0) / n).toFixed(0)}`;
    }
    return ms;
  };
  const full = await timed("jit", step);
  const unfused = await timed("unfused", unfusedStep);
  const eager = await timed("eager", eagerStep);
  step.clear();
  unfusedStep.clear();
  dispose([state.trainable, state.opt]);
  dispose([batch.tokens, batch.positions, batch.targets]);
  return { fwd, fb, full, unfused, eager, tokensPerS: (batchSize * seq) / (full / 1000), gpu };
}

async function benchModel(
  name: string,
  config: LlamaConfig,
  params: LlamaParams,
  batchSize: number,
  seq: number,
  reps: number,
) {
  const rows: (string | number)[][] = [];
  for (const method of ["tl6", "lora"]) {
    const { fwd, fb, full, unfused, eager, tokensPerS, gpu } = await timeStep(
      method,
      config,
      params,
      batchSize,
      seq,
      reps,
    );
    rows.push([
      `${name} ${method}`,
      full.toFixed(0),
      unfused.toFixed(0),
      eager.toFixed(0),
      fwd.toFixed(0),
      Math.max(0, fb - fwd).toFixed(0),
      Math.max(0, eager - fb).toFixed(0),
      tokensPerS.toFixed(0),
      ...(gpu.jit ? [gpu.jit, gpu.eager] : []),
    ]);
  }
  return rows;
}

/** Runs the training section. */
export async function benchTrain(
  log: (s: string) => void = console.log,
  backend = "cpu",
  opts: { only260K?: boolean } = {},
): Promise<void> {
  try {
    await setBackend(backend);
  } catch (e) {
    log(`\n(training bench on ${backend} skipped: ${(e as Error).message})`);
    return;
  }
  log(`\n## Training step (${backend}): tokens/s and the split of one step, rank 8, AdamW\n`);
  const rows: (string | number)[][] = [];
  if (exists(STORIES)) {
    const { config, params } = await loadLlama(STORIES);
    rows.push(...await benchModel("stories260K b8×s128", config, params, 8, 128, 5));
    dispose(params);
  } else log("(stories260K skipped: ../shared/models/stories260K absent)");
  if (!opts.only260K) {
    const { config, params } = randomLlama({ ...TINYSTORIES_15M, seed: 0 });
    rows.push(...await benchModel("15M-shape b4×s256", config, params, 4, 256, 3));
    dispose(params);
  }
  const head = [
    "model / method",
    "step ms (jitted)",
    "(jitted, unfused)",
    "step ms (eager)",
    "forward",
    "backward",
    "optimizer",
    "tokens/s",
  ];
  if (rows.some((r) => r.length > head.length)) head.push("submits / dispatches per step (jitted)", "(eager)");
  log(table(head, rows));
  log("(jitted: trainStep's default, one program per step, elementwise chains fused where the backend fuses;");
  log(" unfused: trainStep(..., { fuse: false }); eager: trainStep(..., { jit: false }); forward,");
  log(" backward and optimizer split the eager step; on webgpu a jitted step is one submit for the program and");
  log(" one for the copy that reads its loss back, where eager flushes every ~500 dispatches)");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { backend: { type: "string", default: "cpu" }, "only-260k": { type: "boolean" } },
  });
  console.log(`# knot training bench\n\n${machineLine()}`);
  await benchTrain(console.log, values.backend!, { only260K: values["only-260k"] });
}

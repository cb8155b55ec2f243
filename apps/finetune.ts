/**
 * Fine-tuning one method on one task, end to end: tokenise the task, train a
 * preset with AdamW + cosine schedule through `fit`, score the task metric
 * with the best parameters, and write the adapter, its PEFT LoRA export,
 * metrics.jsonl and loss.svg into a run directory that records the run
 * (train/run.ts). Shared by examples/train_tl6.ts and examples/sweep.ts.
 * @module
 */
import { resolve } from "node:path";
import { appendText, removeTempFiles, writeTextAtomic } from "../io/atomic.ts";
import { getBackend } from "../core/runtime.ts";
import { exportPeftLora, saveAdapter } from "../io/adapter.ts";
import type { Tokenizer } from "../io/tokenizer.ts";
import type { LlamaConfig } from "../llama/config.ts";
import type { LlamaParams } from "../llama/llama.ts";
import { key } from "../core/random.ts";
import { dispose } from "../core/scope.ts";
import { adamw, clipByGlobalNorm } from "../optim/optimizers.ts";
import { cosineWithWarmup } from "../optim/schedules.ts";
import { chain, type GradientTransformation } from "../optim/transform.ts";
import { preset } from "../peft/methods/presets.ts";
import { summary } from "../peft/summary.ts";
import { type LmBatch, makeBatch, type TokenizedExample, tokenizePair } from "../train/batch.ts";
import { generateAnswers, meanLoss, scoreEndings } from "./evaluate.ts";
import { fit, type StopReason } from "../train/loop.ts";
import { fingerprint, resumeRun, type RunRecord, type RunSettings, startRun, trimLog, writeRun } from "./run.ts";
import { lmLoss, planLoss } from "../train/loss.ts";
import { lineChart, smooth } from "./plot.ts";
import { ProgressBar } from "./progress.ts";
import { trainStep } from "../train/step.ts";
import { jit } from "../jit/jit.ts";
import { isChoiceTask, type MetricResult, type Task } from "./tasks/index.ts";
import type { Example } from "./tasks/types.ts";

/** A task's data, tokenised for a model. */
export interface PreparedTask {
  /** The task. */
  task: Task;
  /** Tokenised training examples. */
  train: TokenizedExample[];
  /** A few batches of eval examples for the validation loss. */
  valBatches: LmBatch[];
  /** Eval examples scored with the task metric. */
  metricExamples: Example[];
  /** Sequence length of every batch. */
  seqLen: number;
  /** sha256 of the task name, the tokenised training examples and the validation batches. */
  fingerprint: string;
  /** How the splits were made when the task says (e.g. a jsonl file split into train and eval). */
  note?: string;
}

/** Loads and tokenises a task's train and eval splits. */
export async function prepareTask(
  task: Task,
  tok: Tokenizer,
  opts: {
    data?: string;
    seqLen: number;
    evalLimit: number;
    valBatchSize: number;
    valBatches?: number;
    trainLimit?: number;
  },
): Promise<PreparedTask> {
  const trainExamples = await task.load({ split: "train", path: opts.data, limit: opts.trainLimit });
  const evalExamples = await task.load({ split: "eval", path: opts.data });
  if (!trainExamples.length || !evalExamples.length) throw new Error(`task ${task.name}: empty train or eval split`);
  const pair = (e: Example) => {
    const f = task.format(e);
    return tokenizePair(tok, f.prompt, f.answer);
  };
  const nVal = Math.min(opts.valBatches ?? 4, Math.ceil(evalExamples.length / opts.valBatchSize));
  const train = trainExamples.map(pair);
  const val = Array.from(
    { length: nVal },
    (_, i) => evalExamples.slice(i * opts.valBatchSize, (i + 1) * opts.valBatchSize).map(pair),
  );
  return {
    task,
    train,
    valBatches: val.map((examples) => makeBatch(examples, opts.seqLen)),
    metricExamples: evalExamples.slice(0, opts.evalLimit),
    seqLen: opts.seqLen,
    fingerprint: await fingerprint({ task: task.name, seqLen: opts.seqLen, train, val }),
    note: (await task.splitNote?.(opts.data)) ?? undefined,
  };
}

/** The task metric of a model on the prepared eval examples (generation, or choice log-likelihoods). */
export async function taskMetric(
  model: LlamaParams,
  config: LlamaConfig,
  tok: Tokenizer,
  p: PreparedTask,
): Promise<MetricResult> {
  const { task, metricExamples } = p;
  if (isChoiceTask(task)) {
    const scores = [];
    for (const e of metricExamples) {
      const c = task.choices(e);
      scores.push(await scoreEndings(model, config, tok, c.prompt, c.endings));
    }
    return task.metricFromLogLikelihoods(scores, metricExamples);
  }
  const prompts = metricExamples.map((e) => task.format(e).prompt);
  const preds = await generateAnswers(model, config, tok, prompts, {
    ...task.decoding,
    maxPromptTokens: Math.max(8, p.seqLen),
  });
  return task.metric(preds, metricExamples);
}

/** A metric as one line: `em 81.00 (f1 85.20)`. */
export function formatMetric(m: MetricResult): string {
  const extra = Object.entries(m)
    .filter(([k, v]) => k !== "name" && k !== "value" && typeof v === "number")
    .map(([k, v]) => `${k} ${(v as number).toFixed(2)}`);
  return `${m.name} ${m.value.toFixed(2)}${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

/**
 * The optimizer every fine-tune here uses (the reference code's defaults, docs/TIED_LORA.md §3): AdamW with
 * betas (0.9, 0.98) and weight decay 0.01, global-norm clipping at 1, and a cosine schedule from `lr` after
 * `warmup` linear steps down to lr/100 at `steps`.
 */
export function adapterOptimizer(
  lr: number,
  warmup: number,
  steps: number,
): { schedule: (step: number) => number; optimizer: GradientTransformation } {
  const schedule = cosineWithWarmup(lr, warmup, steps, lr / 100);
  const optimizer = chain(clipByGlobalNorm(1), adamw(schedule, { b1: 0.9, b2: 0.98, weightDecay: 0.01 }));
  return { schedule, optimizer };
}

/** Options of {@link finetune}. */
export interface FinetuneOptions {
  /** PEFT preset name (`lora`, `vera`, `tl1` … `tl6`). */
  method: string;
  /** Adapter rank. */
  rank: number;
  /** Peak learning rate. */
  lr: number;
  /** Training steps. */
  steps: number;
  /** Examples per batch. */
  batchSize: number;
  /** Linear warm-up steps. */
  warmup: number;
  /** Steps between validations. */
  evalEvery: number;
  /** Seed of the adapter initialisation and the data order. */
  seed: number;
  /** Early stopping: validations without improvement before stopping. */
  patience?: number;
  /** The run directory: run.json, metrics.jsonl, checkpoint/, adapter/, peft/, loss.svg (see train/run.ts). */
  outDir: string;
  /** Continue the run recorded in `outDir` (its settings and data must match; see train/run.ts). */
  resume?: boolean;
  /** Replace a run already in `outDir` (without it, a new run there is refused). */
  overwrite?: boolean;
  /** Checkpoint every N steps (default max(evalEvery, 25)); always on interruption and at the end. */
  checkpointEvery?: number;
  /** Aborting stops after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Where the base model came from (recorded in adapter.json and run.json). */
  modelPath?: string;
  /** More settings to record in run.json and check on resume (e.g. the data path). */
  settings?: RunSettings;
  /** Print the plan summary and a progress bar (default true). */
  verbose?: boolean;
}

/** The outcome of {@link finetune}. */
export interface FinetuneResult {
  /** The preset trained. */
  method: string;
  /** Its rank. */
  rank: number;
  /** Trainable parameters. */
  trainable: number;
  /** Trainable parameters as a percentage of LoRA's at the same rank. */
  percentOfLora: number;
  /** The task metric of the best adapter (null when the task has no eval examples). */
  metric: MetricResult | null;
  /** Best validation loss. */
  valLoss: number;
  /** Step of the best validation loss. */
  bestStep: number;
  /** Steps completed. */
  steps: number;
  /** Wall-clock seconds of training. */
  seconds: number;
  /** Why training stopped. */
  stoppedBy: StopReason;
}

/** The settings of a run as recorded in run.json (see train/run.ts). */
export function runSettings(data: PreparedTask, o: FinetuneOptions): RunSettings {
  return {
    method: o.method,
    rank: o.rank,
    lr: o.lr,
    steps: o.steps,
    batchSize: o.batchSize,
    warmup: o.warmup,
    evalEvery: o.evalEvery,
    patience: o.patience ?? null,
    seed: o.seed,
    checkpointEvery: o.checkpointEvery ?? Math.max(o.evalEvery, 25),
    model: o.modelPath ? resolve(o.modelPath) : null,
    task: data.task.name,
    seqLen: data.seqLen,
    evalLimit: data.metricExamples.length,
    backend: getBackend().name,
    ...o.settings,
  };
}

/** Trains one preset on a prepared task and evaluates it (see the module docs). */
export async function finetune(
  config: LlamaConfig,
  params: LlamaParams,
  tok: Tokenizer,
  data: PreparedTask,
  o: FinetuneOptions,
): Promise<FinetuneResult> {
  const verbose = o.verbose ?? true;
  const dir = o.outDir;
  const settings = runSettings(data, o);
  // Leftovers of writes a kill interrupted (the checkpoint's own are removed by fit on resume).
  for (const d of [dir, `${dir}/adapter`, `${dir}/peft`]) await removeTempFiles(d);
  let record: RunRecord;
  if (o.resume) {
    const r = await resumeRun(dir, settings, data.fingerprint);
    for (const n of r.notes) console.log(n);
    record = r.record;
    if (record.status === "finished" && record.result && !r.changed) {
      console.log(`${o.method}: finished earlier (step ${record.step}); nothing to resume`);
      return record.result as unknown as FinetuneResult;
    }
    if (r.notes.length) await writeRun(dir, record);
  } else {
    record = await startRun(dir, settings, data.fingerprint, { overwrite: o.overwrite });
  }
  const logPath = `${dir}/metrics.jsonl`;
  let pending = "";
  const flush = async () => {
    if (pending) await appendText(logPath, pending);
    pending = "";
  };
  const plan = preset(o.method, { rank: o.rank });
  const { trainable, frozen } = plan.init(params, key(o.seed));
  const s = summary(plan, trainable, frozen);
  if (verbose) console.log(`\n== ${o.method.toUpperCase()} (r=${o.rank}, lr ${o.lr}) ==\n${s.toString()}`);
  const { schedule, optimizer } = adapterOptimizer(o.lr, o.warmup, o.steps);
  const step = trainStep(planLoss(plan, config), optimizer);
  // Validation forwards, jitted: one trace per batch shape, kept for every validation batch. Only the batch's
  // tensors go in (its host counts differ per batch and would retrace).
  const valLossOf = jit(
    (t: typeof trainable, f: typeof frozen, b: Pick<LmBatch, "tokens" | "positions" | "targets">) =>
      lmLoss(plan.build(t, f), config, b as LmBatch),
    { cacheSize: Math.max(1, data.valBatches.length) },
  );
  const tensorsOf = (b: LmBatch) => ({ tokens: b.tokens, positions: b.positions, targets: b.targets });
  const bar = verbose ? new ProgressBar(o.steps, `${o.method} `) : null;
  const sigintAt = sigintAtStep();
  const result = await fit({
    step: (st, b: LmBatch) => step(st, frozen, b),
    init: { trainable, opt: optimizer.init(trainable) },
    size: data.train.length,
    batch: (idx) => makeBatch(idx.map((i) => data.train[i]), data.seqLen),
    batchTokens: (b) => b.tokensSeen,
    batchSize: o.batchSize,
    steps: o.steps,
    seed: o.seed,
    evalEvery: o.evalEvery,
    evaluate: async (t) => ({ loss: await meanLoss((b) => valLossOf(t, frozen, tensorsOf(b)), data.valBatches) }),
    earlyStopping: o.patience ? { patience: o.patience, minDelta: 0.001 } : undefined,
    checkpoint: { dir: `${dir}/checkpoint`, every: settings.checkpointEvery as number },
    resume: o.resume,
    signal: o.signal,
    lrAt: schedule,
    onStart: async (from) => {
      if (!o.resume) return;
      // The log holds exactly what the checkpoint holds: steps after it are replayed.
      await trimLog(logPath, from);
      console.log(
        from > 0
          ? `${o.method}: resuming from step ${from} (checkpoint in ${dir}/checkpoint)`
          : `${o.method}: no checkpoint was saved in ${dir}/checkpoint; starting from step 0`,
      );
    },
    beforeSave: flush,
    onStep: (i) => {
      if (i.step === sigintAt) Deno.kill(Deno.pid, "SIGINT");
      bar?.update(i.step, i.loss, i.tokens);
      pending += JSON.stringify({
        method: o.method,
        rank: o.rank,
        step: i.step,
        loss: i.loss,
        lr: i.lr,
        tokens: i.tokens,
        seconds: +i.seconds.toFixed(4),
      }) + "\n";
    },
    onEval: (k, r, improved) => {
      bar?.log(`  step ${k}: validation loss ${r.loss.toFixed(4)}${improved ? " (best)" : ""}`);
      pending += JSON.stringify({ method: o.method, rank: o.rank, step: k, val_loss: r.loss }) + "\n";
    },
  });
  step.clear();
  valLossOf.clear();
  bar?.done();
  await flush();
  // Training time of every step, before and after any resume (evaluation excluded).
  const seconds = result.history.reduce((s, h) => s + h.seconds, 0);
  if (result.message) console.log(result.message);
  const base = {
    method: o.method,
    rank: o.rank,
    trainable: s.trainable,
    percentOfLora: s.percentOfLora,
    steps: result.step,
    seconds,
    stoppedBy: result.stoppedBy,
  };
  if (result.stoppedBy === "interrupted" || result.stoppedBy === "nan") {
    await writeRun(dir, { ...record, status: result.stoppedBy, step: result.step });
    dispose([result.best.trainable, result.state]);
    return { ...base, metric: null, valLoss: NaN, bestStep: result.best.step };
  }
  const best = result.best.trainable;
  const model = plan.build(best, frozen);
  const metric = await taskMetric(model, config, tok, data);
  const valLoss = await meanLoss((b) => lmLoss(model, config, b), data.valBatches);
  if (verbose) {
    console.log(
      `${o.method}: ${formatMetric(metric)} · validation loss ${
        valLoss.toFixed(4)
      } (best at step ${result.best.step}) · ${seconds.toFixed(1)} s`,
    );
  }
  await appendText(
    logPath,
    JSON.stringify({
      method: o.method,
      rank: o.rank,
      final: true,
      metric: metric.name,
      value: metric.value,
      val_loss: valLoss,
      best_step: result.best.step,
      seconds,
    }) + "\n",
  );
  await saveAdapter(`${dir}/adapter`, plan, best, frozen, { path: o.modelPath });
  await exportPeftLora(`${dir}/peft`, plan, best, frozen, { baseModel: o.modelPath });
  const trainPts = result.history.map((h) => [h.step, h.loss] as [number, number]);
  await writeTextAtomic(
    `${dir}/loss.svg`,
    lineChart([
      { name: "train (EMA)", points: smooth(trainPts, 0.1) },
      { name: "train", points: trainPts },
      { name: "validation", points: result.evals.map((e) => [e.step, e.loss] as [number, number]), markers: true },
    ], { title: `${o.method.toUpperCase()} r=${o.rank} on ${data.task.name}`, xLabel: "step", yLabel: "loss" }),
  );
  dispose([best, result.state]);
  const out: FinetuneResult = { ...base, metric, valLoss, bestStep: result.best.step };
  // Written last: a run is finished only once everything above is on disk.
  await writeRun(dir, { ...record, status: "finished", step: result.step, result: { ...out } });
  return out;
}

/**
 * Test hook: with `KNOT_TEST_SIGINT_AT_STEP=N` the process sends itself SIGINT once step N is done, so a test
 * interrupts a run at a known point whatever the machine's load (a test that waits for progress output and then
 * signals can lose the race to a fast run: all steps done before the signal lands). The signal takes the real
 * path: the program's listener, the abort, the checkpoint, exit 130.
 */
export const SIGINT_AT_STEP_ENV = "KNOT_TEST_SIGINT_AT_STEP";

function sigintAtStep(): number | null {
  try {
    const v = Deno.env.get(SIGINT_AT_STEP_ENV);
    return v ? Number(v) : null;
  } catch { // no --allow-env: the hook is off
    return null;
  }
}

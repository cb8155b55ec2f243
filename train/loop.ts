/**
 * The training loop: deterministic seeded data order, one step per batch,
 * evaluation every N steps with early stopping on validation loss (patience,
 * min delta), best-parameters keeping, checkpoints every N steps and on
 * interruption, exact resume, and a clean stop on a NaN/Inf loss.
 * @module
 */
import { copy } from "../core/ops/movement.ts";
import { epochOrder } from "./batch.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { dispose } from "../core/scope.ts";
import type { TrainState } from "./step.ts";
import type { OptState } from "../optim/transform.ts";
import { cleanCheckpointDir, hasCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";

/** What the loop reports after each step. */
export interface StepInfo {
  /** Steps completed, this one included. */
  step: number;
  /** Steps the run aims for. */
  totalSteps: number;
  /** Training loss of this step. */
  loss: number;
  /** Learning rate of this step (when `lrAt` is given). */
  lr?: number;
  /** Tokens processed in this step (from `batchTokens`). */
  tokens: number;
  /** Wall-clock seconds of this step. */
  seconds: number;
}

/** A validation result: `loss` drives early stopping; other fields are logged. */
export interface EvalResult {
  /** Validation loss. */
  loss: number;
  /** Other metrics, logged. */
  [metric: string]: number;
}

/** Options of {@link fit}. */
export interface FitOptions<P extends Tree, B, S extends OptState = OptState> {
  /** A step from `trainStep` with everything but the state and batch bound. */
  step: (state: TrainState<P, S>, batch: B) => { state: TrainState<P, S>; loss: Tensor };
  /** The starting state (ignored when resuming from a checkpoint). */
  init: TrainState<P, S>;
  /** Number of training examples. */
  size: number;
  /** Builds a batch from example indices. */
  batch: (indices: number[]) => B;
  /** Releases a batch's tensors after its step (default: dispose every tensor in it). */
  disposeBatch?: (batch: B) => void;
  /** Tokens in a batch, for throughput (default 0). */
  batchTokens?: (batch: B) => number;
  /** Examples per batch. */
  batchSize: number;
  /** Total steps to train for (counting those before a resume). */
  steps: number;
  /** Seed of the data order. */
  seed: number;
  /** Validation, called every `evalEvery` steps and at the end. */
  evaluate?: (trainable: P, step: number) => Promise<EvalResult>;
  /** Steps between validations (default: only at the end). */
  evalEvery?: number;
  /** Stop when validation loss has not improved by `minDelta` for `patience` evaluations. */
  earlyStopping?: { patience: number; minDelta?: number };
  /** Checkpoints: where and how often (every N steps; always on interruption and at the end). */
  checkpoint?: { dir: string; every?: number };
  /** Continue from the checkpoint in `checkpoint.dir` if there is one (leftovers of interrupted writes are removed). */
  resume?: boolean;
  /** Called once before the first step with the step training continues from (0 when nothing was resumed). */
  onStart?: (step: number) => void | Promise<void>;
  /** Called before each checkpoint is written (e.g. to flush a log up to `step`). */
  beforeSave?: (step: number) => void | Promise<void>;
  /** Aborting stops after the current step, saving a checkpoint (wire SIGINT to it). */
  signal?: AbortSignal;
  /** Learning rate at a step, for logging. */
  lrAt?: (step: number) => number;
  /** Called after each step. */
  onStep?: (info: StepInfo) => void;
  /** Called after each validation; `improved` when it is the best so far. */
  onEval?: (step: number, result: EvalResult, improved: boolean) => void;
}

/** Why {@link fit} returned. */
export type StopReason = "steps" | "early-stopping" | "interrupted" | "nan";

/** The outcome of {@link fit}. */
export interface FitResult<P extends Tree, S extends OptState = OptState> {
  /** The final train state. */
  state: TrainState<P, S>;
  /** The trainable tree with the best validation loss (a copy), or the final one without evaluation. */
  best: { step: number; loss: number; trainable: P };
  /** Why training stopped. */
  stoppedBy: StopReason;
  /** Steps completed. */
  step: number;
  /** Training loss and seconds of every step, including those before a resume. */
  history: { step: number; loss: number; seconds: number }[];
  /** Every validation result, with its step. */
  evals: ({ step: number } & EvalResult)[];
  /** A note for the user (e.g. why it stopped early), if any. */
  message?: string;
}

function clone<P extends Tree>(t: P): P {
  return tree.map(t, (x) => copy(x));
}

/** Runs the loop. See {@link FitOptions}. */
export async function fit<P extends Tree, B, S extends OptState = OptState>(
  opts: FitOptions<P, B, S>,
): Promise<FitResult<P, S>> {
  const { size, batchSize, steps, seed, evalEvery = 0, earlyStopping } = opts;
  if (!(size > 0)) throw new Error("fit: no training examples");
  if (!(batchSize > 0) || !(steps >= 0)) {
    throw new Error(`fit: need batchSize > 0 and steps >= 0, got ${batchSize}, ${steps}`);
  }
  const disposeBatch = opts.disposeBatch ?? ((b: B) => dispose(collectTensors(b)));
  let state = opts.init;
  let step = 0, cursor = 0;
  let bestLoss = Infinity, bestStep = 0, badEvals = 0;
  let best: P | null = null;
  const history: { step: number; loss: number; seconds: number }[] = [];
  const evals: ({ step: number } & EvalResult)[] = [];

  const ckptDir = opts.checkpoint?.dir;
  // The step of the checkpoint on disk, and how many evaluations it holds (null: none written by this run).
  let saved: { step: number; evals: number } | null = null;
  if (opts.resume && ckptDir) await cleanCheckpointDir(ckptDir);
  if (opts.resume && ckptDir && await hasCheckpoint(ckptDir)) {
    const c = await loadCheckpoint(ckptDir);
    if (c.seed !== seed || c.batchSize !== batchSize || c.size !== size) {
      dispose(collectTensors(c));
      throw new Error(
        `fit: checkpoint in ${ckptDir} was made with seed ${c.seed}, batch ${c.batchSize}, ${c.size} examples; this run has ${seed}, ${batchSize}, ${size}`,
      );
    }
    dispose(collectTensors(state));
    state = c.state as TrainState<P, S>;
    step = c.step as number;
    cursor = c.cursor as number;
    bestLoss = c.bestLoss as number;
    bestStep = c.bestStep as number;
    badEvals = c.badEvals as number;
    best = (c.best as P | null) ?? null;
    history.push(...(c.history as typeof history));
    evals.push(...(c.evals as typeof evals));
    saved = { step, evals: evals.length };
  }
  await opts.onStart?.(step);
  // A checkpoint is written only when its parameters and optimizer state are finite (a step can
  // overflow them while its loss, computed before the update, is still finite).
  const save = async (): Promise<boolean> => {
    if (!ckptDir) return true;
    if (saved && saved.step === step && saved.evals === evals.length) return true;
    if (!await allFinite(state)) return false;
    await opts.beforeSave?.(step);
    await saveCheckpoint(ckptDir, {
      state,
      step,
      cursor,
      seed,
      batchSize,
      size,
      bestLoss,
      bestStep,
      badEvals,
      best,
      history,
      evals,
    });
    saved = { step, evals: evals.length };
    return true;
  };
  const lastGood = () =>
    ckptDir
      ? saved
        ? `; the last good checkpoint (step ${saved.step}) is kept in ${ckptDir}`
        : `; no checkpoint was saved before it`
      : "";

  let orderEpoch = -1;
  let order: number[] = [];
  const nextIndices = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < batchSize; i++) {
      const epoch = Math.floor(cursor / size);
      if (epoch !== orderEpoch) [order, orderEpoch] = [epochOrder(size, seed, epoch), epoch];
      out.push(order[cursor % size]);
      cursor++;
    }
    return out;
  };

  const runEval = async (): Promise<boolean> => {
    if (!opts.evaluate) return false;
    const r = await opts.evaluate(state.trainable, step);
    evals.push({ step, ...r });
    const improved = r.loss < bestLoss - (earlyStopping?.minDelta ?? 0);
    if (improved) {
      bestLoss = r.loss;
      bestStep = step;
      badEvals = 0;
      if (best) dispose(best);
      best = clone(state.trainable);
    } else badEvals++;
    opts.onEval?.(step, r, improved);
    return !!earlyStopping && badEvals >= earlyStopping.patience;
  };

  let stoppedBy: StopReason = "steps";
  let message: string | undefined;
  while (step < steps) {
    // One turn of the event loop per step when the run can be aborted: on the cpu backend a step's awaits resolve
    // as microtasks, so without it a SIGINT listener ran only at the next file write (15 steps late, measured).
    if (opts.signal) await new Promise((r) => setTimeout(r, 0));
    if (opts.signal?.aborted) {
      stoppedBy = "interrupted";
      break;
    }
    const t0 = performance.now();
    const batch = opts.batch(nextIndices());
    const tokens = opts.batchTokens?.(batch) ?? 0;
    const out = opts.step(state, batch);
    disposeBatch(batch);
    const loss = await out.loss.item();
    out.loss.dispose();
    if (!Number.isFinite(loss)) {
      stoppedBy = "nan";
      message = `loss became ${loss} at step ${step + 1}; stopped${lastGood()}`;
      state = out.state;
      break;
    }
    state = out.state;
    step++;
    const seconds = (performance.now() - t0) / 1000;
    history.push({ step, loss, seconds });
    opts.onStep?.({
      step,
      totalSteps: steps,
      loss,
      lr: opts.lrAt?.(step - 1),
      tokens,
      seconds,
    });
    let stop = false;
    if (evalEvery > 0 && step % evalEvery === 0) stop = await runEval();
    if (ckptDir && opts.checkpoint?.every && step % opts.checkpoint.every === 0 && !await save()) {
      stoppedBy = "nan";
      message = `parameters became non-finite at step ${step}; stopped${lastGood()}`;
      break;
    }
    if (stop) {
      stoppedBy = "early-stopping";
      break;
    }
  }
  // The final evaluation, unless this step was evaluated already (also before a resume).
  if (stoppedBy === "steps" && opts.evaluate && evals.at(-1)?.step !== step) await runEval();
  if (stoppedBy !== "nan" && !await save()) {
    stoppedBy = "nan";
    message = `parameters became non-finite by step ${step}; stopped${lastGood()}`;
  }
  const finalBest: P = best ?? clone(state.trainable);
  return {
    state,
    best: { step: best ? bestStep : step, loss: best ? bestLoss : NaN, trainable: finalBest },
    stoppedBy,
    step,
    history,
    evals,
    message,
  };
}

/** True when every float tensor in `x` holds only finite values. */
async function allFinite(x: unknown): Promise<boolean> {
  for (const t of collectTensors(x)) {
    if (t.dtype !== "float32") continue;
    const d = (await t.data()) as Float32Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  }
  return true;
}

/** Every tensor inside a value. */
function collectTensors(x: unknown, out: Tensor[] = []): Tensor[] {
  if (!x || typeof x !== "object") return out;
  if ("storage" in x && "shape" in x) out.push(x as Tensor);
  else for (const v of Array.isArray(x) ? x : Object.values(x)) collectTensors(v, out);
  return out;
}

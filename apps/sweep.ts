/**
 * A research-grade sweep of methods × ranks (the paper's Table 2 / Figure 2):
 * per cell the learning rate is chosen from a grid on a validation split held
 * out of the training split (disjoint from the evaluation split), then the
 * cell is trained with several seeds at that rate and reported as mean ± std.
 *
 * Every run is one line of a JSONL file (its settings and its result), after a
 * header line holding the settings all runs share. Rerunning continues run by
 * run: recorded runs are skipped, a run cut short is run again from its start
 * (runs are short), and a file made with other shared settings is refused,
 * naming them. The report (apps/sweep_report.ts) is computed from the file
 * alone, so a resumed sweep ends with the same table as an uninterrupted one.
 *
 * Runs per cell (apps/sweep_stats.ts's planCell; only validation scores are
 * read to decide): one per grid rate at the first seed, then the other seeds
 * at that seed's favourite — and at the next rates too while their first-seed
 * score beats the best mean over seeds so far, so a favourite that is unstable
 * across seeds (near divergence) gives way. The rate with the best validation
 * mean over seeds is chosen; its seeds' evaluation scores are the cell.
 * @module
 */
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { appendText, writeTextAtomic } from "../io/atomic.ts";
import type { Tokenizer } from "../io/tokenizer.ts";
import type { LlamaConfig } from "../llama/config.ts";
import type { LlamaParams } from "../llama/llama.ts";
import { key } from "../core/random.ts";
import { dispose } from "../core/scope.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import { preset, PRESET_NAMES } from "../peft/methods/presets.ts";
import type { Plan } from "../peft/plan.ts";
import { summary } from "../peft/summary.ts";
import { makeBatch, tokenizePair } from "../train/batch.ts";
import { fit } from "../train/loop.ts";
import { lmLoss, planLoss } from "../train/loss.ts";
import { trainStep } from "../train/step.ts";
import { meanLoss } from "./evaluate.ts";
import { adapterOptimizer, type PreparedTask, taskMetric } from "./finetune.ts";
import { clock } from "./progress.ts";
import { codeVersion, fingerprint, formatDiffs, type RunSettings, settingDiffs } from "./run.ts";
import { planCell, type RunId, runKey, type SweepRun, type SweepShape } from "./sweep_stats.ts";
import type { Example, Task } from "./tasks/types.ts";

/** Makes a method's plan at a rank: what a preset is, and what a `--method` module exports. */
export type PlanFactory = (opts: { rank: number }) => Plan;

/** A method of a sweep: its name in the table, its plan factory, and where it came from. */
export interface SweepMethod {
  /** Name in the table and the results file. */
  name: string;
  /** The plan at a rank. */
  plan: PlanFactory;
  /** "preset", or the module's path and the sha256 of its text (a changed module is refused on resume). */
  source: string;
}

/** A preset (`lora`, `vera`, `tl1` … `tl6`) as a sweep method. */
export function presetMethod(name: string): SweepMethod {
  const n = name.toLowerCase();
  preset(n, { rank: 1 }); // unknown names fail here, listing the known ones
  return { name: n, plan: (o) => preset(n, o), source: "preset" };
}

/**
 * A user module as a sweep method. The module exports its plan factory as
 * `plan` (or as its default export): `(opts: { rank: number }) => Plan`, and
 * may export `name` (default: the file name without extension). Errors name
 * the file and what was expected.
 */
export async function loadMethodModule(path: string): Promise<SweepMethod> {
  const abs = resolve(path);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(abs);
  } catch (e) {
    throw new Error(`--method ${path}: cannot read ${abs} (${(e as Error).message})`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(abs).href);
  } catch (e) {
    throw new Error(`--method ${path}: cannot import it as a module (${(e as Error).message})`);
  }
  const factory = (mod.plan ?? mod.default) as unknown;
  if (typeof factory !== "function") {
    throw new Error(
      `--method ${path}: expected a plan factory exported as "plan" (or default): (opts: { rank: number }) => Plan; ` +
        `it exports ${Object.keys(mod).map((k) => `"${k}"`).join(", ") || "nothing"}`,
    );
  }
  const name = mod.name ?? basename(abs).replace(/\.[cm]?[jt]sx?$/, "");
  if (typeof name !== "string" || !/^[A-Za-z0-9_.-]{1,40}$/.test(name)) {
    throw new Error(`--method ${path}: its "name" export must be 1–40 letters, digits, "_", "." or "-"`);
  }
  if (PRESET_NAMES.includes(name.toLowerCase())) {
    throw new Error(`--method ${path}: its name "${name}" is a preset's; export another "name"`);
  }
  const plan: PlanFactory = (o) => {
    const p = (factory as PlanFactory)(o);
    if (!p || typeof p !== "object" || typeof p.init !== "function" || typeof p.build !== "function") {
      throw new Error(`--method ${path}: its plan factory returned ${typeof p}, not a Plan (compose(...) or a preset)`);
    }
    return p;
  };
  plan({ rank: 1 }); // fail now rather than mid-sweep
  const hash = await fingerprint(new TextDecoder().decode(bytes));
  return { name, plan, source: `${abs} sha256:${hash.slice(0, 16)}` };
}

/** A task's data for a sweep: training examples, the validation split held out of them, the evaluation split. */
export interface SweepData {
  /** Scores on the validation split (its metric examples are the validation examples). */
  validation: PreparedTask;
  /** Scores on the evaluation split (same training data and validation batches; eval metric examples). */
  evaluation: PreparedTask;
  /** Sizes of the splits. */
  sizes: { train: number; validation: number; evaluation: number };
  /** Validation examples dropped because their prompt is also an evaluation prompt. */
  droppedOverlap: number;
  /** sha256 of the tokenised train, validation and evaluation data. */
  fingerprint: string;
}

/** Options of {@link prepareSweepData}. */
export interface SweepDataOptions {
  /** Task data path (default: the task's own). */
  data?: string;
  /** Tokens per example. */
  seqLen: number;
  /** Examples held out of the end of the training split for validation. */
  valSize: number;
  /** Evaluation examples scored (the first ones of the eval split). */
  evalLimit: number;
  /** Examples per validation-loss batch. */
  batchSize: number;
}

/**
 * Loads a task for a sweep. The validation split is the last `valSize`
 * examples of the training split, minus any whose prompt is also an
 * evaluation prompt, so it is disjoint from both the examples trained on and
 * the evaluation split; training uses the rest. (For the built-in task the
 * training rows are ordered by person, so validation asks about people neither
 * trained on nor evaluated.)
 */
export async function prepareSweepData(task: Task, tok: Tokenizer, o: SweepDataOptions): Promise<SweepData> {
  const all = await task.load({ split: "train", path: o.data });
  const evalAll = await task.load({ split: "eval", path: o.data });
  if (!(o.valSize >= 1) || all.length <= o.valSize) {
    throw new Error(
      `task ${task.name}: the train split has ${all.length} examples; --val-size ${o.valSize} must leave some to train on`,
    );
  }
  const evalExamples = evalAll.slice(0, o.evalLimit);
  if (!evalExamples.length) throw new Error(`task ${task.name}: empty eval split`);
  const evalPrompts = new Set(evalAll.map((e) => task.format(e).prompt));
  const held = all.slice(all.length - o.valSize);
  const val = held.filter((e) => !evalPrompts.has(task.format(e).prompt));
  if (!val.length) throw new Error(`task ${task.name}: every validation example is also an evaluation prompt`);
  const trainExamples = all.slice(0, all.length - o.valSize);
  const pair = (e: Example) => {
    const f = task.format(e);
    return tokenizePair(tok, f.prompt, f.answer);
  };
  const train = trainExamples.map(pair);
  const valPairs = val.map(pair);
  const valBatches = Array.from(
    { length: Math.ceil(valPairs.length / o.batchSize) },
    (_, i) => makeBatch(valPairs.slice(i * o.batchSize, (i + 1) * o.batchSize), o.seqLen),
  );
  const fp = await fingerprint({
    task: task.name,
    seqLen: o.seqLen,
    train,
    val: valPairs,
    eval: evalExamples.map(pair),
  });
  const common = { task, train, valBatches, seqLen: o.seqLen, fingerprint: fp };
  return {
    validation: { ...common, metricExamples: val },
    evaluation: { ...common, metricExamples: evalExamples },
    sizes: { train: train.length, validation: val.length, evaluation: evalExamples.length },
    droppedOverlap: held.length - val.length,
    fingerprint: fp,
  };
}

/** The model a sweep adapts. */
export interface SweepModel {
  /** Its config. */
  config: LlamaConfig;
  /** Its weights. */
  params: LlamaParams;
  /** Its tokenizer. */
  tok: Tokenizer;
}

/** Training settings of every run. */
export interface RunTraining {
  /** Steps per run. */
  steps: number;
  /** Examples per step. */
  batchSize: number;
  /** Warm-up steps of the cosine schedule. */
  warmup: number;
}

/**
 * Trains one run (a method at a rank, rate and seed) and scores it on the
 * validation split (metric and loss) and on the evaluation split (metric).
 * Null when `signal` aborted it (nothing to record).
 */
export async function trainRun(
  model: SweepModel,
  data: SweepData,
  method: SweepMethod,
  run: { rank: number; lr: number; seed: number },
  t: RunTraining,
  signal?: AbortSignal,
): Promise<SweepRun | null> {
  const { config, params, tok } = model;
  const plan = method.plan({ rank: run.rank });
  const { trainable, frozen } = plan.init(params, key(run.seed));
  const s = summary(plan, trainable, frozen);
  const { optimizer } = adapterOptimizer(run.lr, t.warmup, t.steps);
  const step = trainStep(planLoss(plan, config), optimizer);
  const train = data.validation.train;
  const result = await fit({
    step: (st, b: ReturnType<typeof makeBatch>) => step(st, frozen, b),
    init: { trainable, opt: optimizer.init(trainable) },
    size: train.length,
    batch: (idx) => makeBatch(idx.map((i) => train[i]), data.validation.seqLen),
    batchSize: t.batchSize,
    steps: t.steps,
    seed: run.seed,
    signal,
  });
  // The frozen adapter leaves (VeRA's tied matrices, TL1's B …) are this run's; the base model is not.
  const frozenAdapter = [...tree.leaves(frozen.tied), ...tree.leaves(frozen.sites)] as Tensor[];
  const seconds = result.history.reduce((a, h) => a + h.seconds, 0);
  const rec = {
    method: method.name,
    ...run,
    trainable: s.trainable,
    percentOfLora: s.percentOfLora,
    stoppedBy: result.stoppedBy,
    steps: result.step,
    seconds: +seconds.toFixed(3),
  };
  try {
    if (result.stoppedBy === "interrupted") return null;
    if (result.stoppedBy === "nan") return { ...rec, valMetric: null, valLoss: null, evalMetric: null };
    const adapted = plan.build(result.best.trainable, frozen);
    const val = await taskMetric(adapted, config, tok, data.validation);
    const valLoss = await meanLoss((b) => lmLoss(adapted, config, b), data.validation.valBatches);
    const ev = await taskMetric(adapted, config, tok, data.evaluation);
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    return { ...rec, valMetric: finite(val.value), valLoss: finite(valLoss), evalMetric: finite(ev.value) };
  } finally {
    dispose([result.best.trainable, result.state, frozenAdapter]);
  }
}

/** The first line of a results file. */
export interface SweepHeader {
  /** Always "knot-sweep". */
  format: "knot-sweep";
  /** Layout version. */
  version: 2;
  /** The settings every run shares; a rerun with others is refused. */
  settings: RunSettings;
  /** Each method's source ("preset", or a module's path and hash). */
  methods: Record<string, string>;
  /** The base model's scores (no adapter). */
  base: { metricName: string; valMetric: number; evalMetric: number; valLoss: number };
  /** The code that started the file. */
  code: { knot: string; commit: string | null; dirty: boolean };
}

/** A results file: its header and its runs, in file order. */
export interface SweepResults {
  /** The header. */
  header: SweepHeader;
  /** The runs. */
  runs: SweepRun[];
}

/**
 * Reads a results file (null when there is none). A torn last line (a kill
 * mid-append) is dropped and the file rewritten without it, so the next
 * append starts on a line of its own.
 */
export async function readResults(path: string): Promise<SweepResults | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const lines = text.split("\n");
  const complete = lines.slice(0, -1); // the part after the last "\n" is empty or torn
  const parsed: Record<string, unknown>[] = [];
  let kept = "";
  for (const [i, line] of complete.entries()) {
    if (!line.trim()) continue;
    try {
      parsed.push(JSON.parse(line));
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message}); not a results file of a sweep?`);
    }
    kept += line + "\n";
  }
  const header = parsed[0] as unknown as SweepHeader | undefined;
  if (!header || header.format !== "knot-sweep" || header.version !== 2) {
    throw new Error(`${path}: not a knot sweep results file (its first line is no "knot-sweep" version 2 header)`);
  }
  if (kept !== text) await writeTextAtomic(path, kept);
  const runs = parsed.slice(1).map((r) => {
    const { kind: _, ...run } = r;
    return run as unknown as SweepRun;
  });
  return { header, runs };
}

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** The base model. */
  model: SweepModel;
  /** The task's data (see {@link prepareSweepData}). */
  data: SweepData;
  /** Methods, in table order. */
  methods: SweepMethod[];
  /** Ranks. */
  ranks: number[];
  /** Learning-rate grid. */
  grid: number[];
  /** Seeds; the first is the selection seed. */
  seeds: number[];
  /** Training settings of every run. */
  training: RunTraining;
  /** The results file (JSONL). */
  results: string;
  /** The settings every run shares (model, task, data, steps …); recorded in the header and compared on resume. */
  settings: RunSettings;
  /** Aborting stops after the current step of the current run (that run is not recorded). */
  signal?: AbortSignal;
  /** Progress lines (run i/N, ETA); default: stderr. */
  log?: (line: string) => void;
}

/** The outcome of {@link runSweep}. */
export interface SweepOutcome {
  /** The header of the results file. */
  header: SweepHeader;
  /** Every recorded run. */
  runs: SweepRun[];
  /** The sweep's shape (methods, ranks, grid, seeds). */
  shape: SweepShape;
  /** Runs trained by this call. */
  ran: number;
  /** Runs found recorded. */
  skipped: number;
  /** Runs the sweep needed (recorded or trained). */
  total: number;
  /** Whether it was aborted before the end. */
  interrupted: boolean;
}

/** Runs (or continues) a sweep; see the module docs. */
export async function runSweep(o: SweepOptions): Promise<SweepOutcome> {
  const log = o.log ?? ((l: string) => console.error(l));
  const byName = new Map(o.methods.map((m) => [m.name, m]));
  if (byName.size !== o.methods.length) throw new Error("sweep: two methods share a name");
  const shape: SweepShape = {
    methods: o.methods.map((m) => m.name),
    ranks: [...o.ranks].sort((a, b) => a - b),
    grid: o.grid,
    seeds: o.seeds,
  };
  if (!o.ranks.length || !o.grid.length || !o.seeds.length || !o.methods.length) {
    throw new Error("sweep: needs at least one method, rank, learning rate and seed");
  }
  const sources = Object.fromEntries(o.methods.map((m) => [m.name, m.source]));
  let existing = await readResults(o.results);
  if (existing) {
    const diffs = settingDiffs(existing.header.settings, o.settings);
    const changed = Object.keys(sources).filter((n) =>
      existing!.header.methods[n] !== undefined && existing!.header.methods[n] !== sources[n]
    );
    if (diffs.length || changed.length) {
      const what = [
        ...(diffs.length ? [formatDiffs(diffs)] : []),
        ...changed.map((n) => `method ${n}: ${existing!.header.methods[n]} → ${sources[n]}`),
      ].join(", ");
      throw new Error(
        `${o.results} holds a sweep made with other shared settings (${what}); one table never mixes settings: ` +
          `use another --out, or --overwrite to start over`,
      );
    }
    const added = Object.keys(sources).filter((n) => existing!.header.methods[n] === undefined);
    if (added.length) {
      existing.header.methods = {
        ...existing.header.methods,
        ...Object.fromEntries(added.map((n) => [n, sources[n]])),
      };
      await writeTextAtomic(
        o.results,
        [existing.header, ...existing.runs.map((r) => ({ kind: "run", ...r }))].map((x) => JSON.stringify(x) + "\n")
          .join(""),
      );
    }
  } else {
    const { config, params, tok } = o.model;
    const v = await taskMetric(params, config, tok, o.data.validation);
    const e = await taskMetric(params, config, tok, o.data.evaluation);
    const valLoss = await meanLoss((b) => lmLoss(params, config, b), o.data.validation.valBatches);
    const header: SweepHeader = {
      format: "knot-sweep",
      version: 2,
      settings: o.settings,
      methods: sources,
      base: { metricName: v.name, valMetric: v.value, evalMetric: e.value, valLoss },
      code: await codeVersion(),
    };
    await Deno.mkdir(resolve(o.results, ".."), { recursive: true });
    await writeTextAtomic(o.results, JSON.stringify(header) + "\n");
    existing = { header, runs: [] };
  }
  const header = existing.header;
  const runs = [...existing.runs];
  const recorded = new Map(runs.map((r) => [runKey(r), r]));

  // Runs per cell: the grid at the first seed, then the other seeds at the chosen rate (more when the
  // first seed's favourite proves unstable across seeds; see planCell). The total grows when that happens.
  const perCell = o.grid.length + o.seeds.length - 1;
  const cellKeys = o.methods.flatMap((m) => shape.ranks.map((r) => `${m.name}|${r}`));
  const cellTotal = new Map(cellKeys.map((k) => [k, perCell]));
  const total = () => [...cellTotal.values()].reduce((a, b) => a + b, 0);
  /** Runs a cell's decision has used so far, recorded or still needed. */
  const used = (method: string, rank: number): { have: number; need: RunId[] } => {
    const p = planCell(recorded, method, rank, shape);
    const lrs = new Set([...p.tried.map((c) => c.lr), ...p.need.map((k) => k.lr)]);
    const have = runs.filter((r) =>
      r.method === method && r.rank === rank && shape.seeds.includes(r.seed) &&
      ((r.seed === shape.seeds[0] && o.grid.includes(r.lr)) || lrs.has(r.lr))
    ).length;
    return { have, need: p.need };
  };
  let done = 0, ran = 0, skipped = 0, busy = 0;
  for (const m of shape.methods) {
    for (const r of shape.ranks) {
      const u = used(m, r);
      skipped += u.have;
      cellTotal.set(`${m}|${r}`, Math.max(perCell, u.have + u.need.length));
    }
  }
  done = skipped;
  if (skipped) log(`resuming ${o.results}: ${skipped} of ${total()} runs already recorded`);
  const t0 = performance.now();

  const one = async (method: SweepMethod, k: { rank: number; lr: number; seed: number }): Promise<boolean> => {
    const start = performance.now();
    const r = await trainRun(o.model, o.data, method, k, o.training, o.signal);
    if (!r) return false;
    await appendText(o.results, JSON.stringify({ kind: "run", ...r }) + "\n");
    runs.push(r);
    recorded.set(runKey(r), r);
    ran++;
    done++;
    busy += (performance.now() - start) / 1000;
    const left = total() - done;
    const eta = left > 0 ? clock((busy / ran) * left) : "0:00";
    const f = (x: number | null) => (x === null ? "diverged" : x.toFixed(2));
    log(
      `run ${done}/${total()} ${method.name} r=${k.rank} lr=${k.lr} seed=${k.seed}: val ${f(r.valMetric)} · eval ${
        f(r.evalMetric)
      } · ${((performance.now() - start) / 1000).toFixed(1)} s · elapsed ${
        clock((performance.now() - t0) / 1000)
      } · ETA ${eta}`,
    );
    return true;
  };

  let interrupted = false;
  outer: for (const method of o.methods) {
    for (const rank of shape.ranks) {
      for (;;) {
        const p = planCell(recorded, method.name, rank, shape);
        if (!p.need.length) {
          if (!p.choice) log(`${method.name} r=${rank}: every learning rate of the grid diverged; no seeds to run`);
          else if (p.tried.length > 1) {
            log(
              `${method.name} r=${rank}: lr ${p.choice.lr} chosen on the validation mean over seeds (${
                p.tried.map((c) => `${c.lr}: ${c.meanVal.toFixed(2)}`).join(", ")
              })`,
            );
          }
          break;
        }
        const key = `${method.name}|${rank}`;
        const u = used(method.name, rank);
        cellTotal.set(key, Math.max(cellTotal.get(key)!, u.have + u.need.length));
        for (const k of p.need) if (!await one(method, k)) break outer;
      }
    }
  }
  if (o.signal?.aborted) interrupted = true;
  return { header, runs, shape, ran, skipped, total: total(), interrupted };
}

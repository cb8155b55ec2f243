/**
 * Methods × ranks on one model and task, as in the paper's Table 2 and
 * Figure 2: writes sweep.md (metric and P% per cell) and sweep.svg (metric vs
 * rank per method). Every cell is a run directory (train/run.ts) keyed by all
 * its settings; sweep.json records the settings the cells share. Rerunning
 * the same command continues: finished cells are kept, interrupted ones
 * resume from their checkpoints. Other settings in the same --out are refused
 * (one table never mixes settings).
 *
 *   deno run -A examples/sweep.ts                       # all eight presets × r ∈ {2, 8, 32}, built-in default
 *   deno run -A examples/sweep.ts --methods tl5,tl6,lora --ranks 2,4,8,16
 */
import { resolve } from "node:path";
import { getBackend, setBackend } from "../mod.ts";
import { loadLlama, loadTokenizer } from "../io/mod.ts";
import { PRESET_NAMES } from "../peft/mod.ts";
import {
  finetune,
  type FinetuneOptions,
  type FinetuneResult,
  formatMetric,
  prepareTask,
  runSettings,
  taskMetric,
} from "../apps/mod.ts";
import { lineChart } from "../apps/mod.ts";
import { formatDiffs, readRun, resumeRun, type RunSettings, settingDiffs } from "../apps/mod.ts";
import { writeTextAtomic } from "../io/mod.ts";
import {
  intFlag,
  listFlag,
  methodFlag,
  parseFlags,
  positiveFlag,
  runMain,
  TASK_NAMES,
  taskFlag,
  UsageError,
} from "./cli.ts";

const HELP = `Sweep methods × ranks (the paper's Table 2 / Figure 2).

usage: deno run -A examples/sweep.ts [flags]

  --model DIR      Hugging Face Llama directory (default: the built-in tiny model)
  --task NAME      ${TASK_NAMES.join(" | ")} (default: builtin)
  --data PATH      task data (default: the task's own)
  --methods LIST   comma-separated presets, any case (default: ${PRESET_NAMES.join(",")})
  --ranks LIST     comma-separated ranks (default: 2,8,32)
  --lr X           peak learning rate for tied methods (tl1..tl6, vera) (default: 1e-2 on builtin, else 3e-3)
  --lora-lr X      peak learning rate for lora (default: 3e-3)
  --steps N        training steps per cell (default: 100)
  --batch N        examples per step (default: 16)
  --seq N          tokens per example (default: 16 on builtin, else 128)
  --eval-limit N   eval examples scored per cell (default: 100)
  --backend NAME   cpu | webgpu (default: cpu)
  --out DIR        output directory (default: out/sweep); rerunning the same command there continues
                   the sweep, other settings there are refused
  --overwrite      replace whatever --out holds (a sweep with other settings, other runs)
  --seed N         (default: 0)
  -h, --help
`;

/** The record of a sweep directory: the settings its cells share, and the base model's score. */
interface SweepRecord {
  format: "knot-sweep";
  version: 1;
  settings: RunSettings;
  base: { metric: number; metricName: string };
}

type Cell = Pick<FinetuneResult, "method" | "rank" | "trainable" | "percentOfLora" | "valLoss" | "seconds"> & {
  metric: number;
  metricName: string;
  settings: RunSettings;
};

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, {
    model: { type: "string" },
    task: { type: "string", default: "builtin" },
    data: { type: "string" },
    methods: { type: "string", default: PRESET_NAMES.join(",") },
    ranks: { type: "string", default: "2,8,32" },
    lr: { type: "string" },
    "lora-lr": { type: "string", default: "3e-3" },
    steps: { type: "string", default: "100" },
    batch: { type: "string", default: "16" },
    seq: { type: "string" },
    "eval-limit": { type: "string", default: "100" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/sweep" },
    overwrite: { type: "boolean", default: false },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  });
  if (f.help) {
    console.log(HELP);
    return 0;
  }
  const methods = listFlag(f.methods!).map((m) => methodFlag(m, "methods"));
  const ranks = listFlag(f.ranks!).map((r) => intFlag("ranks", r, 1));
  if (!methods.length || !ranks.length) throw new UsageError("--methods and --ranks need at least one entry each");
  const task = taskFlag(f.task!);
  const builtin = task.name === "builtin";
  const steps = intFlag("steps", f.steps, 1), batchSize = intFlag("batch", f.batch, 1);
  const seqLen = intFlag("seq", f.seq ?? (builtin ? "16" : "128"), 2);
  const evalLimit = intFlag("eval-limit", f["eval-limit"], 1), seed = intFlag("seed", f.seed);
  const lr = positiveFlag("lr", f.lr ?? (builtin ? "1e-2" : "3e-3")), loraLr = positiveFlag("lora-lr", f["lora-lr"]);
  const out = f.out!.replace(/\/+$/, "") || "/";

  await setBackend(f.backend!);
  const modelDir = f.model ?? new URL("./tiny", import.meta.url).pathname;
  const { config, params } = await loadLlama(modelDir);
  const tok = await loadTokenizer(modelDir);
  const data = await prepareTask(task, tok, { data: f.data, seqLen, evalLimit, valBatchSize: batchSize });
  if (data.note) console.log(data.note);

  // What every cell of one table shares; a cell adds its method, rank and learning rate.
  const shared: RunSettings = {
    model: resolve(modelDir),
    task: task.name,
    data: f.data ?? null,
    dataFingerprint: data.fingerprint,
    steps,
    batchSize,
    seqLen,
    evalLimit,
    lr,
    loraLr,
    seed,
    backend: getBackend().name,
  };
  const recordPath = `${out}/sweep.json`;
  // --overwrite: start over in --out, whatever it holds.
  if (f.overwrite) await Deno.remove(out, { recursive: true }).catch(() => {});
  let record: SweepRecord | null = null;
  try {
    record = JSON.parse(await Deno.readTextFile(recordPath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`${recordPath}: ${(e as Error).message}`);
  }
  const diffs = record ? settingDiffs(record.settings, shared) : [];
  if (diffs.length) {
    throw new UsageError(
      `--out ${out} holds a sweep made with other settings (${formatDiffs(diffs)}); one table never mixes ` +
        `settings: use another --out, or --overwrite to replace it`,
    );
  }
  const options = (method: string, rank: number): FinetuneOptions => ({
    method,
    rank,
    lr: method === "lora" ? loraLr : lr,
    steps,
    batchSize,
    warmup: Math.round(steps / 10),
    evalEvery: 0,
    seed,
    outDir: `${out}/${method}-r${rank}`,
    modelPath: modelDir,
    settings: { data: f.data ?? null },
    verbose: false,
  });
  // A cell directory made by anything else than this sweep's settings is refused before any work.
  const recorded = new Set<string>();
  for (const m of methods) {
    for (const r of ranks) {
      const o = options(m, r);
      if (await readRun(o.outDir)) {
        await resumeRun(o.outDir, runSettings(data, o), data.fingerprint).catch((e) => {
          throw new UsageError(`${(e as Error).message} (--overwrite replaces what --out holds)`);
        });
        recorded.add(o.outDir);
      }
    }
  }

  const t0 = performance.now();
  await Deno.mkdir(out, { recursive: true });
  if (!record) {
    const m = await taskMetric(params, config, tok, data);
    record = { format: "knot-sweep", version: 1, settings: shared, base: { metric: m.value, metricName: m.name } };
    await writeTextAtomic(recordPath, JSON.stringify(record, null, 2) + "\n");
  }
  const base = record.base;
  console.log(`base: ${base.metricName} ${base.metric.toFixed(2)}`);

  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.log("\ninterrupted: saving a checkpoint of the current cell (Ctrl-C again to quit now)");
    controller.abort();
  });
  const total = methods.length * ranks.length;
  const cells = new Map<string, Cell>();
  let k = 0;
  for (const method of methods) {
    for (const rank of ranks) {
      k++;
      const id = `${method}@${rank}`;
      const o = options(method, rank);
      const r = await finetune(config, params, tok, data, {
        ...o,
        resume: recorded.has(o.outDir),
        signal: controller.signal,
      });
      if (r.stoppedBy === "interrupted") {
        console.log(`${id}: stopped at step ${r.steps}; run the same command again to continue`);
        return 130;
      }
      if (!r.metric) throw new Error(`${id}: training stopped (${r.stoppedBy}); see ${o.outDir}/metrics.jsonl`);
      cells.set(id, { ...r, metric: r.metric.value, metricName: r.metric.name, settings: runSettings(data, o) });
      const elapsed = (performance.now() - t0) / 1000;
      console.log(
        `[${k}/${total}] ${id}: ${formatMetric(r.metric)} · P% ${r.percentOfLora.toFixed(2)} · ${
          r.seconds.toFixed(1)
        } s (sweep ${elapsed.toFixed(0)} s)`,
      );
    }
  }
  await writeTextAtomic(`${out}/results.jsonl`, [...cells.values()].map((c) => JSON.stringify(c) + "\n").join(""));

  // Table 2's shape: one row per method, per rank the metric and P% (relative to LoRA at the same rank).
  const name = base.metricName;
  const header = `| method | ${ranks.map((r) => `r=${r} ${name}`).join(" | ")} | ${
    ranks.map((r) => `r=${r} P%`).join(" | ")
  } |`;
  const sep = `|---|${ranks.map(() => "---:").join("|")}|${ranks.map(() => "---:").join("|")}|`;
  const rows = methods.map((m) => {
    const cs = ranks.map((r) => cells.get(`${m}@${r}`)!);
    return `| ${m} | ${cs.map((c) => c.metric.toFixed(2)).join(" | ")} | ${
      cs.map((c) => c.percentOfLora.toFixed(2)).join(" | ")
    } |`;
  });
  const md = [
    `# Sweep: ${task.name} on ${modelDir}`,
    "",
    `Base model: ${name} ${
      base.metric.toFixed(2)
    }. ${steps} steps per cell, batch ${batchSize}, seq ${seqLen}, lr ${lr} (LoRA ${loraLr}), seed ${seed}, ` +
    `metric on ${data.metricExamples.length} eval examples.`,
    `P% is the trainable-parameter count relative to LoRA at the same rank.`,
    "",
    header,
    sep,
    ...rows,
    "",
  ].join("\n");
  await writeTextAtomic(`${out}/sweep.md`, md);
  await writeTextAtomic(
    `${out}/sweep.svg`,
    lineChart(
      methods.map((m) => ({
        name: m,
        points: ranks.map((r) => [r, cells.get(`${m}@${r}`)!.metric] as [number, number]),
      })),
      { title: `${name} vs rank (${task.name})`, xLabel: "rank r", yLabel: name, logX: true },
    ),
  );
  console.log(
    `\n${md}\nwrote ${out}/sweep.md and ${out}/sweep.svg · ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return 0;
}

if (import.meta.main) runMain(main);

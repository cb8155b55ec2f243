/**
 * Methods × ranks on one model and task, as in the paper's Table 2 and
 * Figure 2: writes sweep.md (metric and P% per cell) and sweep.svg (metric vs
 * rank per method). Resumable cell by cell: finished cells are read back from
 * results.jsonl and skipped.
 *
 *   deno run -A examples/sweep.ts                       # all eight presets × r ∈ {2, 8, 32}, built-in default
 *   deno run -A examples/sweep.ts --methods tl5,tl6,lora --ranks 2,4,8,16
 */
import { parseArgs } from "node:util";
import { loadLlama, loadTokenizer, PRESET_NAMES, setBackend } from "../mod.ts";
import { finetune, type FinetuneResult, formatMetric, prepareTask, taskMetric } from "../train/finetune.ts";
import { lineChart } from "../train/plot.ts";
import { getTask, type Task, taskNames } from "../train/tasks/index.ts";
import { builtinTask } from "../train/tasks/builtin.ts";
import { writeTextAtomic } from "../io/atomic.ts";

const HELP = `Sweep methods × ranks (the paper's Table 2 / Figure 2).

usage: deno run -A examples/sweep.ts [flags]

  --model DIR      Hugging Face Llama directory (default: the built-in tiny model)
  --task NAME      builtin | ${taskNames.join(" | ")} (default: builtin)
  --data PATH      task data (default: the task's own)
  --methods LIST   comma-separated presets (default: ${PRESET_NAMES.join(",")})
  --ranks LIST     comma-separated ranks (default: 2,8,32)
  --lr X           peak learning rate for tied methods (tl1..tl6, vera) (default: 1e-2 on builtin, else 3e-3)
  --lora-lr X      peak learning rate for lora (default: 3e-3)
  --steps N        training steps per cell (default: 100)
  --batch N        examples per step (default: 16)
  --seq N          tokens per example (default: 16 on builtin, else 128)
  --eval-limit N   eval examples scored per cell (default: 100)
  --backend NAME   cpu | webgpu (default: cpu)
  --out DIR        output directory (default: out/sweep)
  --seed N         (default: 0)
  -h, --help
`;

const { values: f } = parseArgs({
  options: {
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
    seed: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (f.help) {
  console.log(HELP);
  Deno.exit(0);
}
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const methods = list(f.methods!);
for (const m of methods) {
  if (!PRESET_NAMES.includes(m)) throw new Error(`unknown method "${m}"; known: ${PRESET_NAMES.join(", ")}`);
}
const ranks = list(f.ranks!).map(Number);
if (ranks.some((r) => !Number.isInteger(r) || r < 1)) {
  throw new Error(`--ranks must be positive integers, got ${f.ranks}`);
}
const builtin = f.task === "builtin";
const [steps, batchSize, seqLen, evalLimit, seed] = [
  f.steps,
  f.batch,
  f.seq ?? (builtin ? "16" : "128"),
  f["eval-limit"],
  f.seed,
].map(Number);
const lr = Number(f.lr ?? (builtin ? "1e-2" : "3e-3")), loraLr = Number(f["lora-lr"]);

await setBackend(f.backend!);
const modelDir = f.model ?? new URL("./tiny", import.meta.url).pathname;
const task: Task = f.task === "builtin" ? (builtinTask as unknown as Task) : getTask(f.task!);
const { config, params } = await loadLlama(modelDir);
const tok = await loadTokenizer(modelDir);
const data = await prepareTask(task, tok, { data: f.data, seqLen, evalLimit, valBatchSize: batchSize });
await Deno.mkdir(f.out!, { recursive: true });
const resultsPath = `${f.out}/results.jsonl`;

type Cell = Pick<FinetuneResult, "method" | "rank" | "trainable" | "percentOfLora" | "valLoss" | "seconds"> & {
  metric: number;
  metricName: string;
};
const done = new Map<string, Cell>();
try {
  for (const line of (await Deno.readTextFile(resultsPath)).split("\n").filter(Boolean)) {
    const c = JSON.parse(line) as Cell;
    done.set(`${c.method}@${c.rank}`, c);
  }
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}

const t0 = performance.now();
let base = done.get("base@0");
if (!base) {
  const m = await taskMetric(params, config, tok, data);
  base = {
    method: "base",
    rank: 0,
    trainable: 0,
    percentOfLora: 0,
    valLoss: NaN,
    seconds: 0,
    metric: m.value,
    metricName: m.name,
  };
  await Deno.writeTextFile(resultsPath, JSON.stringify(base) + "\n", { append: true });
}
console.log(`base: ${base.metricName} ${base.metric.toFixed(2)}`);
const total = methods.length * ranks.length;
let k = 0;
for (const method of methods) {
  for (const rank of ranks) {
    k++;
    const id = `${method}@${rank}`;
    if (done.has(id)) {
      console.log(`[${k}/${total}] ${id}: done earlier (${done.get(id)!.metric.toFixed(2)})`);
      continue;
    }
    const r = await finetune(config, params, tok, data, {
      method,
      rank,
      lr: method === "lora" ? loraLr : lr,
      steps,
      batchSize,
      warmup: Math.round(steps / 10),
      evalEvery: 0,
      seed,
      outDir: `${f.out}/${method}-r${rank}`,
      modelPath: modelDir,
      verbose: false,
    });
    if (!r.metric) throw new Error(`${id}: training stopped (${r.stoppedBy})`);
    const cell: Cell = { ...r, metric: r.metric.value, metricName: r.metric.name };
    done.set(id, cell);
    await Deno.writeTextFile(resultsPath, JSON.stringify(cell) + "\n", { append: true });
    const elapsed = (performance.now() - t0) / 1000;
    console.log(
      `[${k}/${total}] ${id}: ${formatMetric(r.metric)} · P% ${r.percentOfLora.toFixed(2)} · ${
        r.seconds.toFixed(1)
      } s (sweep ${elapsed.toFixed(0)} s)`,
    );
  }
}

// Table 2's shape: one row per method, per rank the metric and P% (relative to LoRA at the same rank).
const name = base.metricName;
const header = `| method | ${ranks.map((r) => `r=${r} ${name}`).join(" | ")} | ${
  ranks.map((r) => `r=${r} P%`).join(" | ")
} |`;
const sep = `|---|${ranks.map(() => "---:").join("|")}|${ranks.map(() => "---:").join("|")}|`;
const rows = methods.map((m) => {
  const cells = ranks.map((r) => done.get(`${m}@${r}`));
  return `| ${m} | ${cells.map((c) => c?.metric.toFixed(2) ?? "").join(" | ")} | ${
    cells.map((c) => c?.percentOfLora.toFixed(2) ?? "").join(" | ")
  } |`;
});
const md = [
  `# Sweep: ${task.name} on ${modelDir}`,
  "",
  `Base model: ${name} ${
    base.metric.toFixed(2)
  }. ${steps} steps per cell, batch ${batchSize}, seq ${seqLen}, lr ${lr} (LoRA ${loraLr}), seed ${seed}.`,
  `P% is the trainable-parameter count relative to LoRA at the same rank.`,
  "",
  header,
  sep,
  ...rows,
  "",
].join("\n");
await writeTextAtomic(`${f.out}/sweep.md`, md);
await writeTextAtomic(
  `${f.out}/sweep.svg`,
  lineChart(
    methods.map((m) => ({
      name: m,
      points: ranks.flatMap((
        r,
      ) => (done.has(`${m}@${r}`) ? [[r, done.get(`${m}@${r}`)!.metric] as [number, number]] : [])),
    })),
    { title: `${name} vs rank (${task.name})`, xLabel: "rank r", yLabel: name, logX: true },
  ),
);
console.log(
  `\n${md}\nwrote ${f.out}/sweep.md and ${f.out}/sweep.svg · ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);

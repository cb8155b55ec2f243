// examples/sweep.ts end to end on the built-in task, with tiny settings: a user module as --method beside a
// preset; the run-by-run JSONL resumes after a kill (only the missing runs are trained, and the table is the
// uninterrupted run's); a results file with other shared settings is refused, naming them; the validation
// split is held out of training and disjoint from the evaluation split.
import assert from "node:assert/strict";
import "../../mod.ts"; // registers the cpu backend
import { runDeno } from "../util/run_deno.ts";
import { prepareSweepData } from "../../apps/sweep.ts";
import { builtinTask } from "../../apps/tasks/builtin.ts";
import { jsonl } from "../../apps/tasks/jsonl.ts";
import { loadTokenizer } from "../../io/mod.ts";

const SWEEP = new URL("../../examples/sweep.ts", import.meta.url).pathname;
const PAIRS = new URL("../../examples/tied_pairs.ts", import.meta.url).pathname;
const TINY = new URL("../../examples/tiny", import.meta.url).pathname;

/** 2 methods × 1 rank × (2 rates + 1 more seed) = 6 runs of 3 steps. */
const TINY_SWEEP = [
  "--methods",
  "tl6",
  "--method",
  PAIRS,
  "--ranks",
  "2",
  "--grid",
  "1e-2,1e-3",
  "--seeds",
  "2",
  "--steps",
  "3",
  "--batch",
  "4",
  "--val-size",
  "10",
  "--eval-limit",
  "4",
];

async function sweep(out: string, extra: string[] = [], env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SWEEP, ...TINY_SWEEP, "--out", out, ...extra],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env,
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** The runs of a results file, without their timing, keyed and sorted. */
async function runsOf(path: string): Promise<string[]> {
  const lines = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
  return lines.slice(1).map(({ seconds: _, ...r }) => JSON.stringify(r)).sort();
}

Deno.test("sweep: --method ./file.ts sits beside the presets; a kill mid-sweep resumes with only the missing runs", async () => {
  const root = await Deno.makeTempDir({ prefix: "knot-sweep-" });
  try {
    // Uninterrupted.
    const a = await sweep(`${root}/a`);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stderr.match(/^run \d+\/6 /gm)?.length, 6, a.stderr);
    const table = await Deno.readTextFile(`${root}/a/sweep.md`);
    assert.match(table, /^\| tl6 \| [\d.]+ ± [\d.]+ \| [\d.]+ \|$/m);
    assert.match(table, /^\| pairA \| [\d.]+ ± [\d.]+ \| [\d.]+ \|$/m);
    assert.match(table, /## The paper's claims, checked/);
    assert.match(await Deno.readTextFile(`${root}/a/sweep.svg`), /<svg[\s\S]*pairA[\s\S]*<\/svg>/);
    const header = JSON.parse((await Deno.readTextFile(`${root}/a/results.jsonl`)).split("\n")[0]);
    assert.equal(header.format, "knot-sweep");
    assert.match(header.methods.pairA, /tied_pairs\.ts sha256:[0-9a-f]{16}$/);
    const runsA = await runsOf(`${root}/a/results.jsonl`);
    assert.equal(runsA.length, 6);
    assert.ok(runsA.every((r) => /"valMetric":[\d.]+,"valLoss":[\d.]+,"evalMetric":[\d.]+/.test(r)), runsA.join("\n"));

    // Killed (SIGKILL) just before its 5th file write: the header's write and rename, two runs appended.
    const b = await sweep(`${root}/b`, [], { KNOT_TEST_KILL_AT_WRITE: "5" });
    assert.notEqual(b.code, 0, b.stderr);
    assert.equal((await runsOf(`${root}/b/results.jsonl`)).length, 2);
    // A torn last line, as a kill during an append leaves, is dropped on resume.
    await Deno.writeTextFile(`${root}/b/results.jsonl`, '{"kind":"run","method":"tl', { append: true });
    const c = await sweep(`${root}/b`);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /2 of 6 runs already recorded/);
    assert.deepEqual(c.stderr.match(/^run (\d+)\/6 /gm), ["run 3/6 ", "run 4/6 ", "run 5/6 ", "run 6/6 "]);
    assert.match(c.stderr, /4 runs trained, 2 found recorded, of 6/);
    assert.equal(await Deno.readTextFile(`${root}/b/sweep.md`), table.replaceAll(`${root}/a`, `${root}/b`));
    assert.deepEqual(await runsOf(`${root}/b/results.jsonl`), runsA);

    // Once more: nothing left to train.
    const d = await sweep(`${root}/b`);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /0 runs trained, 6 found recorded, of 6/);

    // Other shared settings in the same --out: refused, naming them; the file untouched.
    const before = await Deno.readTextFile(`${root}/b/results.jsonl`);
    const e = await sweep(`${root}/b`, ["--steps", "4", "--eval-limit", "5"]);
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, /holds a sweep made with other shared settings \(.*evalLimit 4 → 5.*steps 3 → 4/);
    assert.equal(await Deno.readTextFile(`${root}/b/results.jsonl`), before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("sweep: a --method module without a plan factory, or missing, is one clear error", async () => {
  const bad = await runDeno([SWEEP, "--method", new URL("../../examples/cli.ts", import.meta.url).pathname]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /expected a plan factory exported as "plan" \(or default\).*it exports .*"UsageError"/);
  const none = await runDeno([SWEEP, "--method", "/nonexistent/scheme.ts"]);
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /--method \/nonexistent\/scheme\.ts: cannot read/);
});

Deno.test("sweep data: validation is held out of training and disjoint from the evaluation split", async () => {
  const tok = await loadTokenizer(TINY);
  const d = await prepareSweepData(builtinTask, tok, { seqLen: 16, valSize: 100, evalLimit: 200, batchSize: 16 });
  const train = await builtinTask.load({ split: "train" });
  const evalRows = await builtinTask.load({ split: "eval" });
  assert.deepEqual(d.sizes, { train: train.length - 100, validation: 100, evaluation: evalRows.length });
  assert.equal(d.validation.train.length, train.length - 100);
  const ids = (xs: { id: string }[]) => new Set(xs.map((x) => x.id));
  const val = ids(d.validation.metricExamples), ev = ids(d.evaluation.metricExamples);
  assert.deepEqual(val, ids(train.slice(-100)));
  assert.ok([...val].every((id) => !ev.has(id)));
  // The built-in task's validation people are neither trained on nor evaluated.
  const person = (id: string) => id.split("/")[0];
  const valPeople = new Set([...val].map(person));
  assert.ok(train.slice(0, -100).every((r) => !valPeople.has(r.person)));
  assert.ok(evalRows.every((r) => !valPeople.has(r.person)));

  // A validation example whose prompt is also an evaluation prompt is dropped.
  const dir = await Deno.makeTempDir({ prefix: "knot-sweep-data-" });
  try {
    const rows = train.slice(0, 30).map((r) => JSON.stringify({ prompt: r.prompt, answer: r.answer }));
    await Deno.writeTextFile(`${dir}/train.jsonl`, rows.join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/eval.jsonl`, rows.slice(25, 27).join("\n") + "\n");
    const j = await prepareSweepData(jsonl, tok, { data: dir, seqLen: 16, valSize: 10, evalLimit: 2, batchSize: 4 });
    assert.equal(j.droppedOverlap, 2);
    assert.equal(j.sizes.validation, 8);
    assert.equal(j.sizes.train, 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

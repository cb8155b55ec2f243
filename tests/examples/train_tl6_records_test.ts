// The records of examples/train_tl6.ts: a run directory's run.json guards --resume (same settings
// and data, or a setting declared safe to change), a finished run is never overwritten silently and
// keeps its log on --resume (examples/sweep.ts's records: tests/examples/sweep_test.ts); a saved adapter can be scored (--evaluate) and used for text (generate --adapter).
import assert from "node:assert/strict";
import { runDeno } from "../util/run_deno.ts";

const ex = (name: string) => new URL(`../../examples/${name}`, import.meta.url).pathname;
const TINY = new URL("../../examples/tiny", import.meta.url).pathname;
const SHORT = ["--method", "TL6", "--compare", "LoRA", "--steps", "6", "--batch", "4", "--eval-every", "3"];
const LIMIT = ["--eval-limit", "4"];

const run = runDeno;
const train = (out: string, ...extra: string[]) => run([ex("train_tl6.ts"), ...SHORT, "--out", out, ...extra]);
const tableRow = (text: string, method: string) => text.split("\n").findLast((l) => l.startsWith(`${method} `));

Deno.test("train_tl6: run.json guards --resume and a finished run is never overwritten silently", async () => {
  const root = await Deno.makeTempDir({ prefix: "knot-records-" });
  try {
    const out = `${root}/run`;
    const first = await train(out, ...LIMIT);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const log = await Deno.readTextFile(`${out}/tl6/metrics.jsonl`);
    const record = JSON.parse(await Deno.readTextFile(`${out}/tl6/run.json`));
    assert.equal(record.status, "finished");
    assert.equal(record.settings.method, "tl6");
    assert.equal(record.settings.lr, 0.01);
    assert.equal(record.data.length, 64);
    assert.equal(typeof record.code.knot, "string");
    assert.equal(log.trim().split("\n").length, 6 + 2 + 1, "6 steps, 2 evaluations and the final record");

    // The same command again: refused, naming the flags; nothing touched.
    const again = await train(out, ...LIMIT);
    assert.equal(again.code, 2, again.stdout + again.stderr);
    assert.match(again.stderr, /already holds a run \(tl6: finished at step 6; lora: finished at step 6\)/);
    assert.match(again.stderr, /--resume.*--overwrite.*--out DIR/);
    assert.equal(await Deno.readTextFile(`${out}/tl6/metrics.jsonl`), log);

    // --resume of a finished run: its log and its table row stay as they were (finding 1).
    const resumed = await train(out, ...LIMIT, "--resume");
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /tl6: finished earlier \(step 6\)/);
    assert.equal(await Deno.readTextFile(`${out}/tl6/metrics.jsonl`), log);
    assert.equal(tableRow(resumed.stdout, "tl6"), tableRow(first.stdout, "tl6"));
    assert.doesNotMatch(tableRow(resumed.stdout, "tl6")!, / 0\.0$/);

    // --resume with other settings: refused before any work, naming each difference (finding 2).
    for (
      const [flags, pattern] of [
        [["--lr", "0.02"], /lr 0\.01 → 0\.02/],
        [["--rank", "4"], /rank 8 → 4/],
        [["--steps", "8"], /steps 6 → 8/],
        [["--model", TINY, "--seq", "12"], /seqLen 16 → 12/],
      ] as const
    ) {
      const r = await train(out, ...LIMIT, "--resume", ...flags);
      assert.equal(r.code, 2, `${flags}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /cannot resume .*tl6: it was started with other settings/);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stdout, /base model:/, "the refusal must come before any work");
    }
    // A setting declared safe to change: continues, says so, and records it.
    const safe = await train(out, "--eval-limit", "2", "--resume");
    assert.equal(safe.code, 0, safe.stdout + safe.stderr);
    assert.match(safe.stdout, /changed on resume \(declared safe\): evalLimit 4 → 2/);
    const changed = JSON.parse(await Deno.readTextFile(`${out}/tl6/run.json`));
    assert.deepEqual(changed.changes, [{ atStep: 6, setting: "evalLimit", from: 4, to: 2 }]);
    assert.equal(changed.result.metric.count, 2);

    // Nothing to resume: a clear refusal, not a silent fresh start.
    const none = await train(`${root}/empty`, "--resume");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--resume: nothing to resume in .*empty.*start without --resume/);

    // --overwrite replaces the run.
    const fresh = await train(out, ...LIMIT, "--overwrite");
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
    const replaced = JSON.parse(await Deno.readTextFile(`${out}/tl6/run.json`));
    assert.notEqual(replaced.started, record.started);
    assert.equal(replaced.changes, undefined);

    // Evaluate-only: the saved adapter scores what the run reported (finding 9).
    const before = await Deno.readTextFile(`${out}/tl6/run.json`);
    const evaluated = await run([ex("train_tl6.ts"), ...LIMIT, "--evaluate", `${out}/tl6`]);
    assert.equal(evaluated.code, 0, evaluated.stdout + evaluated.stderr);
    const value = replaced.result.metric.value.toFixed(2);
    assert.match(evaluated.stdout, new RegExp(`knot adapter .*tl6/adapter: exactMatch ${value}`));
    assert.equal(await Deno.readTextFile(`${out}/tl6/run.json`), before, "--evaluate must not touch the run");

    // generate --adapter: the knot adapter and its PEFT export give the same greedy tokens, unlike the base.
    const gen = async (...extra: string[]) => {
      const r = await run([
        ex("generate.ts"),
        "--model",
        TINY,
        "--prompt-ids",
        "1,5,6",
        "--max-tokens",
        "6",
        "--json",
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).generated_ids as number[];
    };
    const knot = await gen("--adapter", `${out}/tl6`), peft = await gen("--adapter", `${out}/tl6/peft`);
    assert.deepEqual(peft, knot);
    assert.notDeepEqual(await gen(), knot);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("train_tl6 --task jsonl with one file: says how it split it, trains and scores on different rows", async () => {
  const root = await Deno.makeTempDir({ prefix: "knot-jsonl-" });
  try {
    const file = `${root}/qa.jsonl`;
    await Deno.copyFile(`${TINY}/task/train.jsonl`, file);
    const r = await run([
      ex("train_tl6.ts"),
      "--task",
      "jsonl",
      "--data",
      file,
      "--seq",
      "16",
      "--compare",
      "none",
      "--steps",
      "2",
      "--batch",
      "4",
      "--eval-limit",
      "2",
      "--out",
      `${root}/out`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const m = r.stdout.match(/holds both splits \(no separate eval\.jsonl\): (\d+) rows train, (\d+) rows eval/);
    assert.ok(m, r.stdout);
    assert.equal(Number(m[1]) + Number(m[2]), 600);
    assert.match(r.stdout, new RegExp(`^${m[1]} training examples`, "m"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

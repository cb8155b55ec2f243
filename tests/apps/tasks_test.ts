// Task loaders, prompt formats and task metrics. Loaders run on the real
// files under ../shared/data (row counts from its README); without that
// folder those tests are skipped as one ignored test. The JSONL task's errors
// and the missing-data errors run on temporary files.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  applyStop,
  dialogsum,
  getTask,
  gsm8k,
  hellaswag,
  isChoiceTask,
  iwslt,
  jsonl,
  multi30k,
  squad,
  squadTask,
  taskNames,
} from "../../apps/tasks/index.ts";
import type { Example, Task } from "../../apps/tasks/index.ts";
import { contextWindow } from "../../apps/tasks/squad.ts";
import type { SquadExample } from "../../apps/tasks/squad.ts";
import { cleanSolution } from "../../apps/tasks/gsm8k.ts";
import { isHeldOut } from "../../apps/tasks/jsonl.ts";

const DATA = new URL("../../../shared/data/", import.meta.url).pathname;
const present = (() => {
  try {
    return Deno.statSync(join(DATA, "README.md")).isFile;
  } catch {
    return false;
  }
})();

const isWs = (c: string | undefined) => c === undefined || /\s/.test(c);

// ---------------------------------------------------------------- without data

Deno.test("tasks: registry by name, unknown names listed", () => {
  assert.deepEqual(taskNames, ["builtin", "squad", "dialogsum", "hellaswag", "iwslt", "multi30k", "gsm8k", "jsonl"]);
  for (const n of taskNames) assert.equal(getTask(n).name, n);
  assert.throws(
    () => getTask("mmlu"),
    /unknown task "mmlu"; known tasks: builtin, squad, dialogsum, hellaswag, iwslt, multi30k, gsm8k, jsonl/,
  );
  assert.ok(isChoiceTask(getTask("hellaswag")));
  assert.ok(!isChoiceTask(getTask("squad")));
  assert.throws(() => squadTask({ contextChars: 0 }), /contextChars must be positive/);
});

Deno.test("tasks: missing data and unknown splits are clear Errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      gsm8k.load({ path: join(dir, "nope"), split: "train" }),
      (e: Error) => e.message.includes(join(dir, "nope")) && /not shipped with knot/.test(e.message),
    );
    // a directory without the split's file names that file
    await assert.rejects(dialogsum.load({ path: dir, split: "dev" }), /dialogsum\.dev\.jsonl.*not shipped with knot/s);
    await assert.rejects(
      gsm8k.load({ path: dir, split: "validation" }),
      /unknown split "validation"; known splits: train, test, eval/,
    );
    await assert.rejects(hellaswag.load({ path: dir, split: "test" }), /known splits: train, eval, all/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tasks: contextWindow keeps whole words around the answer within the budget", () => {
  const ctx = "one two three four five six seven eight nine ten";
  const start = ctx.indexOf("five");
  for (let seed = 0; seed < 40; seed++) {
    const w = contextWindow(ctx, start, 4, 20, seed);
    assert.ok(w.length <= 20 && w.includes("five"), `${seed}: ${w}`);
    const at = ctx.indexOf(w);
    assert.ok(at >= 0 && isWs(ctx[at - 1]) && isWs(ctx[at + w.length]), `not on word boundaries: "${w}"`);
  }
  // seed 0: nothing before the answer is wanted; the rest of the budget goes after
  assert.equal(contextWindow(ctx, start, 4, 20, 0), "five six seven eight");
  // the largest offset puts the answer at the end: slack = 20 - 4 = 16 → seed 16
  assert.equal(contextWindow(ctx, start, 4, 20, 16), "two three four five");
  assert.equal(contextWindow(ctx, start, 4, 100, 3), ctx); // within budget: whole context
  // an answer longer than the budget is returned alone; one starting mid-word keeps its whole word
  assert.equal(contextWindow(ctx, 0, 13, 10, 0), "one two three");
  assert.equal(contextWindow("costs $500 now or later", 7, 3, 12, 0), "$500 now or");
});

Deno.test("tasks: jsonl task loads prompt/answer rows and names file and line on errors", async () => {
  const dir = await Deno.makeTempDir();
  const write = (name: string, text: string) => Deno.writeTextFile(join(dir, name), text);
  try {
    await write("train.jsonl", '{"prompt": "2+2=", "answer": " 4", "extra": 1}\n\n{"prompt": "a", "answer": "b"}\r\n');
    await write("eval.jsonl", '{"prompt": "3+3=", "answer": " 6"}\n');
    const rows = await jsonl.load({ path: dir, split: "train" });
    assert.deepEqual(rows, [
      { id: "train.jsonl:1", prompt: "2+2=", answer: " 4" },
      { id: "train.jsonl:3", prompt: "a", answer: "b" },
    ]);
    assert.deepEqual(jsonl.format(rows[0]), { prompt: "2+2=", answer: " 4" });
    assert.deepEqual(jsonl.metric(["4 ", "c"], rows), { name: "exactMatch", value: 50, count: 2 });
    assert.equal(await jsonl.splitNote!(dir), null, "train.jsonl + eval.jsonl: nothing to say");

    const cases: [string, RegExp][] = [
      ['{"prompt": "x", "answer": "y"}\n{"prompt": "x", "answer": \n', /bad\.jsonl:2: malformed JSON/],
      ['{"prompt": "x"}\n', /bad\.jsonl:1: missing field "answer"/],
      ['\n{"answer": "y"}\n', /bad\.jsonl:2: missing field "prompt"/],
      ['{"prompt": 3, "answer": "y"}\n', /bad\.jsonl:1: field "prompt" must be a string, got number/],
      ['["x", "y"]\n', /bad\.jsonl:1: expected a JSON object, got an array/],
      [
        '{"prompt": "x", "completion": "y"}\n',
        /bad\.jsonl:1: field "completion" is not read.*rename "completion" to "answer"/,
      ],
    ];
    for (const [text, re] of cases) {
      await write("bad.jsonl", text);
      await assert.rejects(jsonl.load({ path: join(dir, "bad.jsonl"), split: "train" }), re);
    }
    await assert.rejects(jsonl.load({ path: dir, split: "test" }), /JSONL file not found at ".*test\.jsonl"/);
    await assert.rejects(jsonl.load({ split: "train" }), /jsonl: no path given/);
    await assert.rejects(jsonl.load({ path: dir, split: "train", limit: -1 }), /limit must be a non-negative integer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tasks: one jsonl file is split into disjoint train and eval rows, never read as both", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rows = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `q${i} =`, answer: ` ${i}` }));
    const file = join(dir, "all.jsonl");
    await Deno.writeTextFile(file, rows.join("\n") + "\n");
    for (const path of [file, dir]) {
      if (path === dir) await Deno.rename(file, join(dir, "train.jsonl")); // train.jsonl without eval.jsonl
      const train = await jsonl.load({ path, split: "train" }), ev = await jsonl.load({ path, split: "eval" });
      assert.equal(train.length + ev.length, 200);
      assert.ok(ev.length >= 10 && ev.length <= 35, `${ev.length} eval rows`);
      const trainPrompts = new Set(train.map((r) => r.prompt));
      assert.ok(ev.every((r) => !trainPrompts.has(r.prompt)), "a row is in both splits");
      assert.deepEqual(ev.map((r) => r.prompt), rows.map((r) => JSON.parse(r).prompt).filter(isHeldOut));
      assert.match(
        (await jsonl.splitNote!(path))!,
        new RegExp(
          `holds both splits \\(no separate eval.jsonl\\): ${train.length} rows train, ${ev.length} rows eval`,
        ),
      );
    }
    // Too few rows to split: refused with a message saying what to do.
    await Deno.writeTextFile(join(dir, "one.jsonl"), '{"prompt": "x", "answer": "y"}\n');
    await assert.rejects(jsonl.load({ path: join(dir, "one.jsonl"), split: "train" }), /too few to split/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tasks: applyStop cuts at the earliest stop string", () => {
  assert.equal(applyStop(" 42\nQuestion: x", ["Question:", "\n"]), " 42");
  assert.equal(applyStop("abc", undefined), "abc");
  assert.equal(applyStop("abc", ["", "z"]), "abc");
});

// ---------------------------------------------------------------- on the real files

if (!present) {
  Deno.test({
    name: `tasks: real-data loader tests skipped: ${DATA} not found (task data is not shipped with knot)`,
    ignore: true,
    fn() {},
  });
} else {
  const at = (dir: string, file = "") => join(DATA, dir, file);
  const cache = new Map<string, Promise<Example[]>>();
  const load = <E extends Example>(task: Task<E>, split: string, path?: string): Promise<E[]> => {
    const key = `${task.name}|${split}|${path}`;
    if (!cache.has(key)) cache.set(key, task.load({ split, path }));
    return cache.get(key)! as Promise<E[]>;
  };

  Deno.test("tasks: default path is ../shared/data relative to the working directory", async () => {
    const fromCwd = join(Deno.cwd(), "../shared/data/gsm8k/test.jsonl");
    if (join(DATA, "gsm8k/test.jsonl") !== fromCwd) return; // tests run from elsewhere
    assert.equal((await gsm8k.load({ split: "test", limit: 3 })).length, 3);
  });

  Deno.test("tasks: squad row counts, ids, answers", async () => {
    const train = await load(squad, "train", at("squad"));
    const evalRows = await load(squad, "eval", at("squad"));
    assert.equal(train.length, 4961);
    assert.equal(evalRows.length, 5609);
    assert.equal(new Set(train.map((e) => e.title)).size, 24);
    assert.equal(new Set(evalRows.map((e) => e.title)).size, 24);
    const flat = await squad.load({ split: "train", path: at("squad", "squad-v1.1-dev.flat.jsonl") });
    assert.equal(flat.length, 10570); // a file path is read whole
    assert.deepEqual(flat[0], train[0]); // same data: the flat file is part1 then part2
    assert.deepEqual(flat[4961], evalRows[0]);
    const first = train[0];
    assert.equal(first.id, "56be4db0acb8001400a502ec");
    assert.deepEqual(first.answers, ["Denver Broncos", "Denver Broncos", "Denver Broncos"]);
    for (const e of train) {
      e.answers.forEach((a, k) => assert.equal(e.context.slice(e.answerStarts[k], e.answerStarts[k] + a.length), a));
    }
    const some = await squad.load({ split: "eval", path: at("squad"), limit: 7 });
    assert.deepEqual(some, evalRows.slice(0, 7));
  });

  Deno.test("tasks: squad prompt, window around the answer, determinism", async () => {
    const train = await load(squad, "train", at("squad"));
    const offsets = new Set<number>();
    for (const task of [squad, squadTask({ contextChars: 200 })]) {
      const budget = task === squad ? 400 : 200;
      for (const e of train) {
        const { prompt, answer } = task.format(e);
        const m = /^Context: ([^]*)\nQuestion: ([^]*)\nAnswer:$/.exec(prompt);
        assert.ok(m, prompt);
        assert.equal(m[2], e.question.trim());
        assert.equal(answer, ` ${e.answers[0]}`);
        const w = m[1];
        assert.ok(w.includes(e.answers[0]), `${e.id}: window lacks the answer`);
        assert.ok(w.length <= Math.max(budget, e.answers[0].length), `${e.id}: window of ${w.length}`);
        const at0 = e.context.indexOf(w);
        assert.ok(at0 >= 0, `${e.id}: window is not a substring of the context`);
        if (w !== e.context) assert.ok(isWs(e.context[at0 - 1]) && isWs(e.context[at0 + w.length]), e.id);
        if (e.context.length <= budget) assert.equal(w, e.context);
        if (task === squad && e.context.length > 1000) offsets.add(w.indexOf(e.answers[0]));
      }
    }
    assert.ok(offsets.size > 50, `answer offsets in the window barely vary (${offsets.size} distinct)`);
    // the same example gives the same window, also from a fresh load and a fresh task object
    const again = await squad.load({ split: "train", path: at("squad"), limit: 20 });
    again.forEach((e, i) => assert.deepEqual(squadTask().format(e), squad.format(train[i])));
    assert.equal(squadTask({ contextChars: Infinity }).format(train[0]).prompt.includes(train[0].context), true);
  });

  Deno.test("tasks: squad metric is official EM/F1 in percent", async () => {
    const rows = (await load(squad, "eval", at("squad"))).slice(0, 10) as SquadExample[];
    const perfect = squad.metric(rows.map((e) => e.answers[0]), rows);
    assert.deepEqual(perfect, { name: "f1", value: 100, exactMatch: 100, f1: 100, count: 10 });
    assert.equal(squad.metric(rows.map(() => "zzz"), rows).value, 0);
  });

  Deno.test("tasks: dialogsum rows, references, prompt, metric", async () => {
    const train = await load(dialogsum, "train", at("dialogsum"));
    const dev = await load(dialogsum, "dev", at("dialogsum"));
    const test = await load(dialogsum, "eval", at("dialogsum"));
    assert.deepEqual([train.length, dev.length, test.length], [12460, 500, 500]);
    assert.ok(train.every((e) => e.summaries.length === 1) && dev.every((e) => e.summaries.length === 1));
    assert.ok(test.every((e) => e.summaries.length === 3));
    assert.equal(test[0].id, "test_0");
    const { prompt, answer } = dialogsum.format(dev[0]);
    assert.ok(prompt.startsWith("Dialogue:\n#Person1#: Hello, how are you doing today?\n#Person2#: "));
    assert.ok(prompt.endsWith("\nSummary:"));
    assert.equal(answer, ` ${dev[0].summaries[0]}`);
    const m = dialogsum.metric(test.slice(0, 5).map((e) => e.summaries[1]), test.slice(0, 5));
    assert.equal(m.name, "rougeL");
    assert.ok(Math.abs(m.value - 100) < 1e-9);
  });

  Deno.test("tasks: hellaswag split by val_index, choices, metrics", async () => {
    const all = await load(hellaswag, "all", at("hellaswag"));
    const train = await load(hellaswag, "train", at("hellaswag"));
    const evalRows = await load(hellaswag, "eval", at("hellaswag"));
    assert.deepEqual([all.length, train.length, evalRows.length], [10042, 8000, 2042]);
    assert.ok(train.every((e) => e.valIndex < 8000) && evalRows.every((e) => e.valIndex >= 8000));
    assert.equal(evalRows[0].valIndex, 8000);
    const counts = [0, 1, 2, 3].map((k) => all.filter((e) => e.label === k).length);
    assert.deepEqual(counts, [2515, 2485, 2584, 2458]); // README's label distribution
    const e = all[0];
    assert.deepEqual(hellaswag.choices(e), {
      prompt: "Roof shingle removal: A man is sitting on a roof. he",
      endings: [
        " is using wrap to wrap a pair of skis.",
        " is ripping level tiles off.",
        " is holding a rubik's cube.",
        " starts pulling up roofing on a roof.",
      ],
    });
    assert.deepEqual(hellaswag.format(e), {
      prompt: "Roof shingle removal: A man is sitting on a roof. he",
      answer: " starts pulling up roofing on a roof.",
    });
    const some = evalRows.slice(0, 4);
    // per-token scores: the gold ending gets mean -1, the others -2 but a better sum for one of them
    const scores = some.map((ex) => ex.endings.map((_, j) => (j === ex.label ? [-1, -1, -1, -1] : [-2])));
    const m = hellaswag.metricFromLogLikelihoods(scores, some);
    assert.equal(m.value, 100); // mean per token picks the gold
    assert.equal(m.accUnnormalized, 0); // sums: -4 (gold) < -2 (others)
    const sums = some.map((ex) => ex.endings.map((_, j) => ({ logLikelihood: j === ex.label ? -3 : -4, tokens: 2 })));
    assert.equal(hellaswag.metricFromLogLikelihoods(sums, some).value, 100);
    const picks = some.map((ex, i) => (i < 3 ? String(ex.label) : "nonsense"));
    assert.deepEqual(hellaswag.metric(picks, some), { name: "accuracy", value: 75, unparsed: 1, count: 4 });
    assert.equal(hellaswag.metric(some.map((ex) => ` ${ex.endings[ex.label]} `), some).value, 100);
    const few = await hellaswag.load({ split: "eval", path: at("hellaswag", "hellaswag_val.jsonl"), limit: 3 });
    assert.deepEqual(few, evalRows.slice(0, 3));
  });

  Deno.test("tasks: multi30k and iwslt rows, prompt, BLEU", async () => {
    const sizes = await Promise.all(
      ["train", "val", "eval"].map(async (s) => (await load(multi30k, s, at("multi30k_de_en"))).length),
    );
    assert.deepEqual(sizes, [29000, 1014, 1000]);
    const t16 = await load(iwslt, "train", at("iwslt2017_de_en"));
    const t17 = await load(iwslt, "eval", at("iwslt2017_de_en"));
    assert.deepEqual([t16.length, t17.length], [1133, 1138]);
    assert.equal(t17[0].id, "2507:1");
    assert.deepEqual(iwslt.format(t17[0]), {
      prompt: "German: Das ist James Risen.\nEnglish:",
      answer: " So this is James Risen.",
    });
    const test = await load(multi30k, "test", at("multi30k_de_en"));
    assert.deepEqual(multi30k.format(test[0]), {
      prompt: "German: Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.\nEnglish:",
      answer: " A man in an orange hat starring at something.",
    });
    const some = t17.slice(0, 50);
    const m = iwslt.metric(some.map((e) => iwslt.format(e).answer), some);
    assert.equal(m.name, "bleu");
    assert.ok(Math.abs(m.value - 100) < 1e-9, `${m.value}`); // whitespace differences do not count
  });

  Deno.test("tasks: gsm8k rows, cleaned solutions, metric", async () => {
    const train = await load(gsm8k, "train", at("gsm8k"));
    const test = await load(gsm8k, "eval", at("gsm8k"));
    assert.deepEqual([train.length, test.length], [7473, 1319]);
    const { prompt, answer } = gsm8k.format(test[0]);
    assert.ok(prompt.startsWith("Question: Janet’s ducks lay 16 eggs per day.") && prompt.endsWith("\nAnswer:"));
    assert.equal(
      answer,
      " Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer’s market.\n#### 18",
    );
    for (const e of [...train, ...test]) {
      const a = gsm8k.format(e).answer;
      assert.ok(!a.includes("<<") && !a.includes(">>") && a.endsWith(`#### ${e.solution.split("#### ")[1]}`), e.id);
    }
    assert.equal(cleanSolution("a <<1+1=2>>2\n\nb\n#### 2"), "a 2\nb\n#### 2");
    assert.deepEqual(gsm8k.metric(test.slice(0, 4).map((e) => gsm8k.format(e).answer), test.slice(0, 4)), {
      name: "accuracy",
      value: 100,
      correct: 4,
      noAnswer: 0,
      count: 4,
    });
    const half = gsm8k.metric(["#### 18", "the answer is 3", "no idea", "x"], test.slice(0, 4));
    assert.equal(half.value, 50); // golds are 18, 3, 70000, 540
    assert.equal(half.noAnswer, 2);
  });

  Deno.test("tasks: training answers never contain their task's stop strings", async () => {
    const tasks: [Task<Example>, string, string][] = [
      [squad as Task<Example>, "train", at("squad")],
      [dialogsum as Task<Example>, "train", at("dialogsum")],
      [multi30k as Task<Example>, "train", at("multi30k_de_en")],
      [iwslt as Task<Example>, "train", at("iwslt2017_de_en")],
      [gsm8k as Task<Example>, "train", at("gsm8k")],
      [hellaswag as Task<Example>, "train", at("hellaswag")],
    ];
    for (const [task, split, path] of tasks) {
      for (const e of await load(task, split, path)) {
        const { answer } = task.format(e);
        assert.equal(applyStop(answer, task.decoding.stop), answer, `${task.name} ${e.id}: ${JSON.stringify(answer)}`);
      }
    }
  });
}

// Every example answers a mistake on its command line the same way (examples/cli.ts): one message
// on stderr naming the flag or input, exit code 2, no stack trace, nothing on stdout but what
// ran before the mistake was found.
import assert from "node:assert/strict";
import { runDeno } from "../util/run_deno.ts";
import { formatMessage } from "../../examples/cli.ts";

const ex = (name: string) => new URL(`../../examples/${name}`, import.meta.url).pathname;
const TINY = new URL("../../examples/tiny", import.meta.url).pathname;
// An --out that never exists: the default out/ may hold a developer's earlier run, which would be
// refused before the mistake under test is reached.
const NO_OUT = ["--out", "/nonexistent/knot-cli-test-out"];

const run = runDeno;

function assertUsageError(r: { code: number; stderr: string }, pattern: RegExp, what: string) {
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /^error: /, what);
  assert.match(r.stderr, pattern, what);
  assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, `${what}: a stack trace was printed\n${r.stderr}`);
  assert.equal(r.stderr.match(/error: /g)?.length, 1, `${what}: more than one error message`);
}

Deno.test("every example: a bad flag or value is one message on stderr and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [[ex("train_tl6.ts"), ...NO_OUT, "--steps", "abc"], /--steps must be an integer >= 1, got "abc"/],
    [[ex("train_tl6.ts"), ...NO_OUT, "--nope"], /--nope/],
    [[ex("train_tl6.ts"), ...NO_OUT, "--lr", "0"], /--lr must be a positive number/],
    [[ex("train_tl6.ts"), ...NO_OUT, "--method", "tl9"], /unknown method "tl9"; known: lora, vera, tl1/],
    [[ex("train_tl6.ts"), ...NO_OUT, "--task", "nope"], /unknown task "nope"; known: builtin, squad/],
    [[ex("train_tl6.ts"), ...NO_OUT, "--model", "/nonexistent/model"], /\/nonexistent\/model\/config.json/],
    [[ex("sweep.ts"), ...NO_OUT, "--ranks", "2,x"], /--ranks must be an integer >= 1, got "x"/],
    [[ex("sweep.ts"), ...NO_OUT, "--methods", "tl6,bogus"], /unknown method "bogus"/],
    [[ex("sweep.ts"), ...NO_OUT, "--task", "nope"], /known: builtin, squad/],
    [[ex("sweep.ts"), ...NO_OUT, "--grid", "1e-2,0"], /--grid must be a positive number, got "0"/],
    [[ex("sweep.ts"), ...NO_OUT, "--seeds", "0"], /--seeds must be an integer >= 1, got "0"/],
    [[ex("sweep.ts"), ...NO_OUT, "--methods", "none"], /no methods: give --methods and\/or --method FILE/],
    [[ex("sweep.ts"), ...NO_OUT, "--method", "/nonexistent/x.ts"], /--method \/nonexistent\/x\.ts: cannot read/],
    [[ex("quickstart.ts"), "--steps", "abc"], /--steps must be an integer >= 0, got "abc"/],
    [[ex("jit.ts"), "--steps", "0"], /--steps must be an integer >= 1, got "0"/],
    [[ex("custom_tying.ts"), "--rank", "0"], /--rank must be an integer >= 1/],
    [[ex("pretrain_tiny.ts"), "--steps", "abc"], /--steps must be an integer >= 0/],
    [[ex("generate.ts"), "--model", TINY, "--max-tokens", "x"], /--max-tokens must be a positive integer/],
    [[ex("generate.ts"), "--model", TINY, "--adapter", TINY], /holds no adapter/],
  ];
  for (const [args, pattern] of cases) assertUsageError(await run(args), pattern, args.slice(1).join(" "));
});

Deno.test("train_tl6: a model whose weights do not match its config is a readable list, not one long line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "knot-badmodel-" });
  try {
    for await (const e of Deno.readDir(TINY)) {
      if (e.isFile) await Deno.copyFile(`${TINY}/${e.name}`, `${dir}/${e.name}`);
    }
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...config, intermediate_size: 300 }));
    const r = await run([ex("train_tl6.ts"), "--model", dir, "--out", `${dir}/out`]);
    assertUsageError(r, /does not match .*config\.json: \d+ problems\n {2}- model\.layers\.0\.mlp/, "mismatch");
    const lines = r.stderr.trim().split("\n");
    assert.ok(lines.length <= 13, `expected at most 10 problems shown, got ${lines.length} lines`);
    // The header names the files by path, and the temporary directory's path is as long as TMPDIR makes it.
    const short = lines.map((l) => l.replaceAll(dir, "DIR"));
    assert.ok(short.every((l) => l.length < 200), `a line is too long:\n${short.join("\n")}`);
    assert.match(r.stderr, /… and \d+ more/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatMessage: lists of four or more problems become lines; short messages are kept", () => {
  assert.equal(formatMessage("loss became NaN at step 3; stopped; kept"), "loss became NaN at step 3; stopped; kept");
  assert.equal(
    formatMessage("x: a; b; c; d", 2),
    "x: 4 problems\n  - a\n  - b\n  … and 2 more",
  );
});

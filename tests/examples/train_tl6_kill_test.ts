// examples/train_tl6.ts killed (SIGKILL) just before each file write and rename of a short run, in
// turn, then continued (--resume, or a plain rerun when the kill came before run.json existed):
// every continuation ends with the adapter, the PEFT export, the loss plot and the log of the
// uninterrupted run, and no temporary file is left behind. The kill comes from io/atomic.ts's
// test hook (KNOT_TEST_KILL_AT_WRITE).
import assert from "node:assert/strict";
import { KILL_AT_WRITE_ENV } from "../../io/atomic.ts";

const EXAMPLE = new URL("../../examples/train_tl6.ts", import.meta.url).pathname;
const ARGS = [
  "--compare",
  "none",
  "--steps",
  "4",
  "--batch",
  "4",
  "--eval-every",
  "2",
  "--checkpoint-every",
  "2",
  "--eval-limit",
  "1",
];
const FILES = ["adapter/adapter.safetensors", "adapter/adapter.json", "peft/adapter_model.safetensors", "loss.svg"];

async function run(out: string, killAt: number | null, extra: string[] = []) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...ARGS, "--out", out, ...extra],
    env: killAt === null ? {} : { [KILL_AT_WRITE_ENV]: String(killAt) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, signal: r.signal, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** The log without timings: what must be the same however the run was interrupted. */
async function logOf(dir: string): Promise<unknown[]> {
  const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).split("\n").filter(Boolean);
  return lines.map((l) => {
    const { seconds: _s, ...rest } = JSON.parse(l);
    return rest;
  });
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...(await walk(`${dir}/${e.name}`)).map((p) => `${e.name}/${p}`));
    else out.push(e.name);
  }
  return out.sort();
}

Deno.test("train_tl6: a kill at any file write or rename, then --resume, gives the uninterrupted run's files", async () => {
  const root = await Deno.makeTempDir({ prefix: "knot-kill-" });
  try {
    const ref = `${root}/ref`;
    const full = await run(ref, 0);
    assert.equal(full.code, 0, full.stdout + full.stderr);
    const points = full.stderr.split("\n").filter((l) => l.startsWith("knot-write-point")).length;
    assert.ok(points >= 15, `expected the hook to report every write point, got ${points}:\n${full.stderr}`);
    const want = new Map<string, Uint8Array>();
    for (const f of FILES) want.set(f, await Deno.readFile(`${ref}/tl6/${f}`));
    const wantLog = await logOf(`${ref}/tl6`);
    const wantFiles = await walk(ref);

    // Two points at a time (the processes are mostly single-threaded).
    const check = async (n: number) => {
      const out = `${root}/kill-${n}`;
      const killed = await run(out, n);
      assert.equal(
        killed.signal,
        "SIGKILL",
        `point ${n}: expected the hook to kill the run; it exited ${killed.code} (signal ${killed.signal})\n` +
          `stdout:\n${killed.stdout}\nstderr (tail):\n${killed.stderr.slice(-3000)}`,
      );
      let started = true;
      try {
        await Deno.stat(`${out}/tl6/run.json`);
      } catch {
        started = false;
      }
      const again = await run(out, null, started ? ["--resume"] : []);
      assert.equal(again.code, 0, `point ${n}: the continuation failed\n${again.stdout}\n${again.stderr}`);
      if (started) assert.match(again.stdout, /tl6: (resuming from step \d+|no checkpoint was saved)/, `point ${n}`);
      for (const f of FILES) {
        assert.deepEqual(await Deno.readFile(`${out}/tl6/${f}`), want.get(f), `point ${n}: ${f} differs`);
      }
      assert.deepEqual(await logOf(`${out}/tl6`), wantLog, `point ${n}: metrics.jsonl differs`);
      assert.deepEqual(await walk(out), wantFiles, `point ${n}: leftover or missing files`);
      const record = JSON.parse(await Deno.readTextFile(`${out}/tl6/run.json`));
      assert.equal(record.status, "finished", `point ${n}`);
    };
    const todo = Array.from({ length: points }, (_, i) => i + 1);
    const worker = async () => {
      for (let n = todo.shift(); n !== undefined; n = todo.shift()) await check(n);
    };
    await Promise.all([worker(), worker()]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

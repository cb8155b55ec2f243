// examples/train_tl6.ts end to end on the built-in default: Ctrl-C saves a checkpoint, --resume
// finishes, and the adapter, the log and the loss plot equal those of an uninterrupted run.
import assert from "node:assert/strict";
import { removeWhenDone } from "../util/temp.ts";

const EXAMPLE = new URL("../../examples/train_tl6.ts", import.meta.url).pathname;
const ARGS = ["--compare", "none", "--steps", "30", "--batch", "8", "--eval-every", "10", "--eval-limit", "10"];

async function run(out: string, extra: string[] = []) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...ARGS, "--out", out, ...extra],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, text: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

Deno.test("train_tl6: --help lists every flag", async () => {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", EXAMPLE, "--help"], stdout: "piped" })
    .output();
  const text = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0);
  for (
    const flag of [
      "--model",
      "--task",
      "--data",
      "--method",
      "--rank",
      "--lr",
      "--steps",
      "--batch",
      "--seq",
      "--backend",
      "--out",
      "--compare",
      "--resume",
      "--overwrite",
      "--evaluate",
      "--checkpoint-every",
      "--seed",
    ]
  ) {
    assert.ok(text.includes(flag), `--help does not mention ${flag}`);
  }
});

Deno.test("train_tl6: Ctrl-C saves a checkpoint; --resume reaches the uninterrupted adapter byte for byte", async () => {
  const full = await Deno.makeTempDir(), cut = await Deno.makeTempDir();
  await using _cleanup = removeWhenDone(full, cut);
  const a = await run(full);
  assert.equal(a.code, 0, a.text);
  assert.match(a.text, /base model: exactMatch/);
  assert.match(a.text, /tl6: exactMatch/);
  for (
    const f of [
      "adapter/adapter.safetensors",
      "adapter/adapter.json",
      "peft/adapter_config.json",
      "peft/adapter_model.safetensors",
      "metrics.jsonl",
      "loss.svg",
    ]
  ) {
    await Deno.stat(`${full}/tl6/${f}`);
  }

  // Interrupt after step 10 with a real SIGINT. The process signals itself (KNOT_TEST_SIGINT_AT_STEP): a test
  // that waits for the progress line and then signals lost the race on a loaded machine (all 30 steps were done
  // before the signal landed, exit 0).
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...ARGS, "--out", cut],
    env: { KNOT_TEST_SIGINT_AT_STEP: "10" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let seen = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  const status = await child.status;
  assert.equal(status.code, 130, seen);
  assert.match(seen, /interrupted: saving a checkpoint/);
  await Deno.stat(`${cut}/tl6/checkpoint/checkpoint.safetensors`);

  const b = await run(cut, ["--resume"]);
  assert.equal(b.code, 0, b.text);
  const stoppedAt = Number(seen.match(/stopped at step (\d+)/)?.[1]);
  assert.ok(stoppedAt >= 10 && stoppedAt < 30, seen);
  assert.match(b.text, new RegExp(`tl6: resuming from step ${stoppedAt} `));
  // One continuous log: every step and evaluation before and after the interruption, as in the
  // uninterrupted run; the loss plot (drawn from the checkpoint's history) is the same too.
  const logOf = async (dir: string) =>
    (await Deno.readTextFile(`${dir}/tl6/metrics.jsonl`)).trim().split("\n").map((l) => {
      const { seconds: _, ...rest } = JSON.parse(l);
      return rest;
    });
  assert.deepEqual(await logOf(cut), await logOf(full));
  assert.equal((await logOf(cut)).filter((r) => typeof r.loss === "number").length, 30);
  assert.deepEqual(await Deno.readFile(`${cut}/tl6/loss.svg`), await Deno.readFile(`${full}/tl6/loss.svg`));
  const x = await Deno.readFile(`${full}/tl6/adapter/adapter.safetensors`);
  const y = await Deno.readFile(`${cut}/tl6/adapter/adapter.safetensors`);
  assert.deepEqual(y, x, "the resumed adapter differs from the uninterrupted one");
});

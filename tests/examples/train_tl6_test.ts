// examples/train_tl6.ts end to end on the built-in default: Ctrl-C saves a checkpoint, --resume
// finishes, and the adapter equals that of an uninterrupted run byte for byte.
import assert from "node:assert/strict";
import { removeWhenDone } from "../util/temp.ts";

const EXAMPLE = new URL("../../examples/train_tl6.ts", import.meta.url).pathname;
const ARGS = ["--compare", "none", "--steps", "120", "--eval-every", "20", "--eval-limit", "20"];

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

  // Interrupt once the progress shows step 10, as a person pressing Ctrl-C would.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...ARGS, "--out", cut],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let seen = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!/step +\d+\/120/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  const status = await child.status;
  assert.equal(status.code, 130, seen);
  assert.match(seen, /interrupted: saving a checkpoint/);
  await Deno.stat(`${cut}/tl6/checkpoint/checkpoint.json`);

  const b = await run(cut, ["--resume"]);
  assert.equal(b.code, 0, b.text);
  const x = await Deno.readFile(`${full}/tl6/adapter/adapter.safetensors`);
  const y = await Deno.readFile(`${cut}/tl6/adapter/adapter.safetensors`);
  assert.deepEqual(y, x, "the resumed adapter differs from the uninterrupted one");
});

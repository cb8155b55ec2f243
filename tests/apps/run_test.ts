// Run records (train/run.ts): a new run never replaces a recorded one silently, a resume checks
// settings and data, and the log is trimmed back to what the checkpoint holds.
import assert from "node:assert/strict";
import { readRun, resumeRun, SAFE_TO_CHANGE, startRun, trimLog } from "../../apps/run.ts";

const SETTINGS = { method: "tl6", rank: 8, lr: 0.01, steps: 6, evalLimit: 4, data: "a.jsonl" };

Deno.test("run record: a started run is refused a second start, replaced with overwrite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await startRun(dir, SETTINGS, "f1");
    assert.equal(first.status, "running");
    assert.deepEqual((await readRun(dir))?.settings, SETTINGS);
    await assert.rejects(
      () => startRun(dir, SETTINGS, "f1"),
      /already holds a run \(started \(not finished\) at step 0\)/,
    );
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":1}\n');
    await startRun(dir, { ...SETTINGS, lr: 0.02 }, "f1", { overwrite: true });
    assert.equal((await readRun(dir))?.settings.lr, 0.02);
    await assert.rejects(() => Deno.stat(`${dir}/metrics.jsonl`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run record: resume refuses other settings or data, accepts and records a safe change", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(() => resumeRun(dir, SETTINGS, "f1"), /nothing to resume in .*: it holds no run\.json/);
    await startRun(dir, SETTINGS, "f1");
    await assert.rejects(
      () => resumeRun(dir, { ...SETTINGS, lr: 0.02, rank: 4 }, "f1"),
      /other settings \(lr 0\.01 → 0\.02, rank 8 → 4\)/,
    );
    await assert.rejects(() => resumeRun(dir, SETTINGS, "f2"), /data differ/);
    const same = await resumeRun(dir, SETTINGS, "f1");
    assert.equal(same.changed, false);
    assert.ok(Object.hasOwn(SAFE_TO_CHANGE, "evalLimit") && Object.hasOwn(SAFE_TO_CHANGE, "data"));
    const safe = await resumeRun(dir, { ...SETTINGS, evalLimit: 2, data: "b.jsonl" }, "f1");
    assert.equal(safe.changed, true);
    assert.match(
      safe.notes.join("\n"),
      /changed on resume \(declared safe\): data "a\.jsonl" → "b\.jsonl", evalLimit 4 → 2/,
    );
    assert.deepEqual(safe.record.changes?.map((c) => c.setting), ["data", "evalLimit"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trimLog keeps the records up to the checkpoint's step, drops the final record and a torn line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/metrics.jsonl`;
    const lines = [
      { step: 1, loss: 2 },
      { step: 2, loss: 1.5 },
      { step: 2, val_loss: 1.6 },
      { step: 3, loss: 1.2 },
      { final: true, step: 3 },
    ].map((r) => JSON.stringify(r));
    await Deno.writeTextFile(path, lines.join("\n") + '\n{"step": 4, "lo');
    const kept = await trimLog(path, 2);
    assert.deepEqual(kept, [{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }, { step: 2, val_loss: 1.6 }]);
    assert.equal(await Deno.readTextFile(path), lines.slice(0, 3).join("\n") + "\n");
    assert.deepEqual(await trimLog(`${dir}/absent.jsonl`, 5), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// runSweep in process: an abort stops after the current step and records nothing of the run it cut short;
// the next call trains only what is missing and ends with the same records as an uninterrupted sweep.
import assert from "node:assert/strict";
import "../../mod.ts"; // registers the cpu backend
import { loadLlama, loadTokenizer } from "../../io/mod.ts";
import { prepareSweepData, presetMethod, readResults, runSweep, type SweepOptions } from "../../apps/sweep.ts";
import { builtinTask } from "../../apps/tasks/builtin.ts";

const TINY = new URL("../../examples/tiny", import.meta.url).pathname;

Deno.test("runSweep: an abort records no partial run; the rerun trains only the missing runs", async () => {
  const { config, params } = await loadLlama(TINY);
  const tok = await loadTokenizer(TINY);
  const data = await prepareSweepData(builtinTask, tok, { seqLen: 16, valSize: 6, evalLimit: 3, batchSize: 4 });
  const dir = await Deno.makeTempDir({ prefix: "knot-sweep-run-" });
  try {
    const options = (results: string, extra: Partial<SweepOptions> = {}): SweepOptions => ({
      model: { config, params, tok },
      data,
      methods: [presetMethod("tl6")],
      ranks: [2],
      grid: [1e-2, 1e-3],
      seeds: [0, 1],
      training: { steps: 2, batchSize: 4, warmup: 0 },
      results,
      settings: { steps: 2, data: data.fingerprint },
      log: () => {},
      ...extra,
    });
    const full = await runSweep(options(`${dir}/a.jsonl`));
    assert.deepEqual([full.ran, full.total, full.interrupted], [3, 3, false]);

    // Abort as soon as the first run is recorded: the next run stops at its first step check, unrecorded.
    const controller = new AbortController();
    const cut = await runSweep(options(`${dir}/b.jsonl`, {
      signal: controller.signal,
      log: (l) => l.startsWith("run 1/") && controller.abort(),
    }));
    assert.deepEqual([cut.ran, cut.interrupted], [1, true]);
    assert.equal((await readResults(`${dir}/b.jsonl`))!.runs.length, 1);
    const lines: string[] = [];
    const rest = await runSweep(options(`${dir}/b.jsonl`, { log: (l) => lines.push(l) }));
    assert.deepEqual([rest.ran, rest.skipped, rest.interrupted], [2, 1, false]);
    assert.match(lines[0], /1 of 3 runs already recorded/);
    const strip = (rs: { seconds: number }[]) => rs.map(({ seconds: _, ...r }) => JSON.stringify(r)).sort();
    assert.deepEqual(strip(rest.runs), strip(full.runs));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// examples/jit.ts runs: eager and jitted MLP training agree bit for bit, and the jitted step traces once.
import assert from "node:assert/strict";
import { runDeno } from "../util/run_deno.ts";

const EXAMPLE = new URL("../../examples/jit.ts", import.meta.url).pathname;

Deno.test("examples/jit.ts: eager and jitted training are bit-identical; one trace", async () => {
  const r = await runDeno([EXAMPLE, "--steps", "20", "--hidden", "8"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^eager +final loss \d/m);
  assert.match(r.stdout, /^jitted +final loss \d/m);
  assert.match(r.stdout, /traces: 1; parameters bit-identical between eager and jitted/);
});

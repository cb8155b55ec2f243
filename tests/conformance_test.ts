/**
 * The op conformance suite: every forward, gradient and error case of
 * tests/conformance/ on every backend of tests/conformance/backends.ts.
 * Each case runs inside a scope and must free every buffer it allocates.
 */
import assert from "node:assert/strict";
import { checkGrad, type DType, jit, liveBuffers, scope, type Tensor, tree, valueAndGrad } from "../mod.ts";
import { checkExclusions, forEachBackend } from "./conformance/backends.ts";
import { getBackend } from "../core/runtime.ts";
import type { Backend } from "../backends/backend.ts";
import { FORWARD_CASES } from "./conformance/forward_cases.ts";
import { GRAD_CASES } from "./conformance/grad_cases.ts";
import { ERROR_CASES } from "./conformance/errors_cases.ts";
import type { Expected, Tol } from "./conformance/types.ts";

const DEFAULT_TOL: Required<Tol> = { rtol: 1e-5, atol: 1e-6 };

/** The shape implied by the nesting of an expected value; throws if ragged. */
function shapeOf(e: Expected): number[] {
  if (!Array.isArray(e)) return [];
  if (e.length === 0) return [0];
  const inner = shapeOf(e[0]);
  for (const x of e) assert.deepEqual(shapeOf(x), inner, "case table error: ragged expected value");
  return [e.length, ...inner];
}

function flatten(e: Expected, out: number[] = []): number[] {
  if (Array.isArray(e)) { for (const x of e) flatten(x, out); }
  else out.push(typeof e === "boolean" ? +e : (e as number));
  return out;
}

function fmtIndex(i: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    idx.unshift(i % shape[k]);
    i = Math.floor(i / shape[k]);
  }
  return `[${idx.join(", ")}]`;
}

/** Compares one output with its expected value: dtype, shape, then every element. */
async function compare(label: string, t: Tensor, want: Expected, dtype: DType, tol: Tol | undefined): Promise<void> {
  assert.equal(t.dtype, dtype, `${label}: dtype`);
  const shape = shapeOf(want);
  assert.deepEqual([...t.shape], shape, `${label}: shape`);
  const got = Array.from(await t.data());
  const exp = flatten(want);
  assert.equal(got.length, exp.length, `${label}: number of values read back`);
  const { rtol, atol } = { ...DEFAULT_TOL, ...tol };
  const show =
    () => (got.length <= 64 ? `\n  got:      ${JSON.stringify(got)}\n  expected: ${JSON.stringify(exp)}` : "");
  for (let i = 0; i < exp.length; i++) {
    const g = got[i], e = exp[i];
    let ok: boolean;
    if (dtype !== "float32") ok = g === e;
    else if (Number.isNaN(e)) ok = Number.isNaN(g);
    else if (!Number.isFinite(e)) ok = g === e;
    else ok = Math.abs(g - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      const bound = dtype === "float32" ? ` (tolerance ${atol} + ${rtol}·|expected|)` : " (exact)";
      assert.fail(`${label}: element ${fmtIndex(i, shape)} is ${g}, expected ${e}${bound}${show()}`);
    }
  }
}

/** Runs `body` in a scope and checks that it released every buffer it allocated. */
async function noLeaks(body: () => Promise<void>): Promise<void> {
  const before = liveBuffers();
  await scope(body);
  assert.equal(
    liveBuffers() - before,
    0,
    "buffers leaked by the case (allocated and not freed after its scope closed)",
  );
}

for (const c of FORWARD_CASES) {
  forEachBackend(`forward: ${c.name}`, () =>
    noLeaks(async () => {
      const out = c.run();
      const dtype = c.dtype ?? "float32";
      if (Array.isArray(out)) {
        assert.ok(
          Array.isArray(c.expect) && c.expect.length === out.length,
          `case returns ${out.length} tensors; expect must list ${out.length} values`,
        );
        for (let k = 0; k < out.length; k++) {
          await compare(`output ${k}`, out[k], (c.expect as Expected[])[k], dtype, c.tol);
        }
      } else {
        await compare("output", out, c.expect, dtype, c.tol);
      }
    }));
}

for (const c of GRAD_CASES) {
  forEachBackend(`grad: ${c.name}`, () =>
    noLeaks(async () => {
      // checkGrad's defaults (rtol 2e-3, atol 1e-3, eps 3e-3) fail a vjp that is 1% off;
      // on cpu the largest |autodiff − finite difference| over all cases is ~1e-4.
      const report = await checkGrad(c.f, c.args(), { ...c.tol, argnums: c.argnums });
      assert.ok(report.checked > 0, "checkGrad compared no elements");
    }));
}

for (const c of ERROR_CASES) {
  forEachBackend(`error: ${c.name}`, () =>
    noLeaks(async () => {
      await assert.rejects(
        async () => {
          const out = await c.run();
          // Some backends may only detect a bad value when the result is computed: read it back.
          if (out && typeof out === "object" && "data" in out) await (out as Tensor).data();
        },
        (e: unknown) => {
          assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
          assert.match(e.message, c.message);
          return true;
        },
      );
    }));
}

/**
 * The same outputs from `jit` as from eager execution: bit for bit on cpu (the program replays the same kernels
 * with the same arguments), within the suite's tolerance elsewhere (a backend's compiled program may fuse).
 */
async function sameAsEager(label: string, got: Tensor, want: Tensor, backend: string): Promise<void> {
  assert.equal(got.dtype, want.dtype, `${label}: dtype`);
  assert.deepEqual([...got.shape], [...want.shape], `${label}: shape`);
  const g = await got.data(), w = await want.data();
  if (backend === "cpu") {
    const bytes = (a: typeof g) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    assert.deepEqual(bytes(g), bytes(w), `${label}: jitted bits differ from eager`);
    return;
  }
  const { rtol, atol } = DEFAULT_TOL;
  for (let i = 0; i < w.length; i++) {
    const ok = Number.isNaN(w[i])
      ? Number.isNaN(g[i])
      : g[i] === w[i] || Math.abs(g[i] - w[i]) <= atol + rtol * Math.abs(w[i]);
    assert.ok(ok, `${label}: element ${i} is ${g[i]} jitted, ${w[i]} eager`);
  }
}

/** Fused calls in the programs each backend compiled for the jitted cases (jit fuses where a backend lowers them). */
const fusedCalls = new Map<string, number>();

/**
 * `f()`, counting the fused calls of the programs the current backend compiles meanwhile; a backend that fuses
 * only above a size (cpu) fuses at every size meanwhile, so the cases' small shapes run fused kernels.
 */
function countingFused<T>(f: () => T): T {
  const b = getBackend() as Backend & { fuses?: Backend["fuses"] };
  const compile = b.compile, fuses = b.fuses;
  if (!compile) return f();
  if (fuses?.minElements) b.fuses = { ...fuses, minElements: 0 };
  b.compile = (p) => {
    const n = p.steps.filter((s) => s.call.kernel === "fused").length;
    fusedCalls.set(b.name, (fusedCalls.get(b.name) ?? 0) + n);
    return compile.call(b, p);
  };
  try {
    return f();
  } finally {
    delete (b as { compile?: unknown }).compile; // the class's own method again
    if (fuses?.minElements) b.fuses = fuses;
  }
}

// Every forward and gradient case again, jitted (traced once, replayed), against its eager result.
for (const c of FORWARD_CASES) {
  forEachBackend(`jit forward: ${c.name}`, (backend) =>
    noLeaks(async () => {
      const eager = [c.run()].flat();
      const f = jit(c.run);
      const out = countingFused(() => [f()].flat());
      f.clear();
      assert.equal(out.length, eager.length, "number of outputs");
      for (let k = 0; k < out.length; k++) await sameAsEager(`output ${k}`, out[k], eager[k], backend);
    }));
}

for (const c of GRAD_CASES) {
  forEachBackend(`jit grad: ${c.name}`, (backend) =>
    noLeaks(async () => {
      const args = c.args();
      const argnums = c.argnums ?? args.flatMap((a, i) => {
        const ls = tree.leaves(a);
        return ls.length && ls.every((t) => t.dtype === "float32") ? [i] : [];
      });
      const vg = valueAndGrad(c.f, { argnums });
      const eager = tree.leaves(vg(...(args as never[])));
      const f = jit(vg);
      const out = countingFused(() => tree.leaves(f(...(args as never[]))));
      f.clear();
      assert.equal(out.length, eager.length, "number of outputs");
      for (let k = 0; k < out.length; k++) await sameAsEager(`output ${k}`, out[k], eager[k], backend);
    }));
}

forEachBackend("jit cases ran fused kernels where the backend fuses", (backend) => {
  if (!getBackend().fuses) return;
  const n = fusedCalls.get(backend) ?? 0;
  assert.ok(n > 50, `${n} fused calls in the jitted cases' programs (run with every jit case)`);
});

checkExclusions();

// Optimizers against hand-computed steps; schedules; state only for trainable leaves.
import assert from "node:assert/strict";
import { adamw, applyUpdates, chain, clipByGlobalNorm, globalNorm, sgd } from "../../optim/mod.ts";
import { constant, cosineWithWarmup } from "../../optim/schedules.ts";
import { oneMinusPow } from "../../optim/optimizers.ts";
import { add, div, equal, minimum, mul, type Tensor, tensor, tree, where } from "../../mod.ts";

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}
function close(a: number[], b: number[], tol = 1e-6) {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= tol * (1 + Math.abs(b[i])), `[${i}] ${x} vs ${b[i]}`));
}

Deno.test("sgd: p − lr·g, and momentum accumulates", async () => {
  const p = { w: tensor([1, 2]) };
  const g = { w: tensor([0.5, -1]) };
  const opt = sgd(0.1);
  const { updates } = opt.update(g, opt.init(p), p);
  close(await values(applyUpdates(p, updates).w), [0.95, 2.1]);
  const mom = sgd(0.1, { momentum: 0.9 });
  let s = mom.init(p);
  let r = mom.update(g, s, p);
  s = r.state;
  r = mom.update(g, s, p); // trace = g + 0.9 g = 1.9 g
  close(await values(r.updates.w), [-0.1 * 1.9 * 0.5, 0.1 * 1.9]);
});

Deno.test("adamw: first two steps match the formulas (bias correction, decoupled decay)", async () => {
  const p = { w: tensor([1, -2]) };
  const g1 = { w: tensor([0.1, 0.3]) }, g2 = { w: tensor([-0.2, 0.3]) };
  const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.1];
  const opt = adamw(lr, { b1, b2, eps, weightDecay: wd });
  const r1 = opt.update(g1, opt.init(p), p);
  // Step 1: m̂ = g, v̂ = g², so the Adam direction is g/(|g| + eps) ≈ sign(g).
  const expect1 = [0.1, 0.3].map((g, i) => -lr * (g / (Math.abs(g) + eps) + wd * [1, -2][i]));
  close(await values(r1.updates.w), expect1, 1e-5);
  const p1 = applyUpdates(p, r1.updates);
  const r2 = opt.update(g2, r1.state, p1);
  const pv = await values(p1.w);
  const expect2 = [0, 1].map((i) => {
    const ga = [0.1, 0.3][i], gb = [-0.2, 0.3][i];
    const m = b1 * (1 - b1) * ga + (1 - b1) * gb, v = b2 * (1 - b2) * ga * ga + (1 - b2) * gb * gb;
    const mh = m / (1 - b1 ** 2), vh = v / (1 - b2 ** 2);
    return -lr * (mh / (Math.sqrt(vh) + eps) + wd * pv[i]);
  });
  close(await values(r2.updates.w), expect2, 1e-5);
});

Deno.test("adamw with a schedule uses the step count, a tensor that counts up", async () => {
  const p = { w: tensor([0]) };
  const opt = adamw((step) => where(equal(step, 0), 1, 0.5), { weightDecay: 0 });
  const s0 = opt.init(p);
  assert.equal(s0.count.dtype, "int32");
  assert.deepEqual(s0.count.shape, []);
  const r1 = opt.update({ w: tensor([1]) }, s0, p);
  const r2 = opt.update({ w: tensor([1]) }, r1.state, p);
  close(await values(r1.updates.w), [-1], 1e-6);
  close(await values(r2.updates.w), [-0.5], 1e-6);
  assert.equal(await r2.state.count.item(), 2);
  // A count saved as a number (a v2 checkpoint) is taken as it is.
  const old = opt.update({ w: tensor([1]) }, { ...r1.state, count: 1 as unknown as Tensor }, p);
  assert.deepEqual(await values(old.updates.w), await values(r2.updates.w));
  assert.throws(() => opt.update({ w: tensor([1]) }, { ...r1.state, count: tensor(1) }, p), /int32 scalar tensor/);
});

Deno.test("a schedule written for numbers gets an Error saying how to write it with tensor ops", () => {
  const p = { w: tensor([0]) };
  for (const numeric of [(step: number) => (step < 100 ? 1e-3 * step / 100 : 1e-3), (step: number) => [1, 0.5][step]]) {
    const opt = sgd(numeric as unknown as (step: Tensor) => Tensor);
    assert.throws(
      () => opt.update({ w: tensor([1]) }, opt.init(p)),
      /used its step as a JavaScript number.*tensor ops/,
    );
  }
  const bad = sgd(() => tensor([1, 2]));
  assert.throws(() => bad.update({ w: tensor([1]) }, bad.init(p)), /float32 scalar tensor or a finite number/);
  // A tensor schedule (warm-up over 100 steps) and a constant one.
  const warm = sgd((step) => mul(1e-3, minimum(1, div(add(step, 1), 100))));
  assert.doesNotThrow(() => warm.update({ w: tensor([1]) }, warm.init(p)));
  const fixed = sgd(constant(0.1));
  assert.doesNotThrow(() => fixed.update({ w: tensor([1]) }, fixed.init(p)));
});

Deno.test("bias corrections 1 − bᵗ as tensor ops stay within 3e-7 of float64 (float32 pow loses 2e-4)", async () => {
  const steps = [1, 2, 3, 10, 100, 999, 1000, 5000, 100_000];
  for (const b of [0, 0.5, 0.9, 0.98, 0.999, 0.9999]) {
    for (const t of steps) {
      const c = oneMinusPow(b, tensor(t));
      const got = typeof c === "number" ? c : await c.item();
      const want = 1 - b ** t;
      assert.ok(Math.abs(got - want) <= 3e-7 * want, `b ${b}, t ${t}: ${got} vs ${want}`);
    }
  }
});

Deno.test("clipByGlobalNorm scales only when the norm is larger", async () => {
  const g = { a: tensor([3]), b: tensor([4]) }; // norm 5
  assert.ok(Math.abs((await globalNorm(g).item()) - 5) < 1e-6);
  const clip = clipByGlobalNorm(1);
  const r = clip.update(g, clip.init(g));
  close([...(await values(r.updates.a)), ...(await values(r.updates.b))], [0.6, 0.8]);
  const keep = clipByGlobalNorm(10).update(g, {});
  close([...(await values(keep.updates.a)), ...(await values(keep.updates.b))], [3, 4]);
});

Deno.test("chain applies transformations in order", async () => {
  const p = { w: tensor([0, 0]) };
  const opt = chain(clipByGlobalNorm(1), sgd(2));
  const r = opt.update({ w: tensor([3, 4]) }, opt.init(p), p);
  close(await values(r.updates.w), [-1.2, -1.6]);
  assert.throws(
    () => opt.update({ w: tensor([1, 1]) }, [{}] as never, p),
    /chain.update: state has 1 parts, the chain has 2/,
  );
});

Deno.test("cosineWithWarmup: linear warm-up, cosine to minLr, flat after; the tensor form agrees", async () => {
  const s = cosineWithWarmup(1, 10, 110, 0.1);
  close([s(0), s(4), s(9)], [0.1, 0.5, 1]);
  close([s(10), s(60), s(110), s(500)], [1, 0.1 + 0.45 * (1 + Math.cos(Math.PI / 2)), 0.1, 0.1]);
  for (const sched of [s, cosineWithWarmup(3e-4, 0, 50)]) {
    for (const step of [0, 1, 4, 9, 10, 11, 35, 60, 109, 110, 111, 500]) {
      const t = sched(tensor(step));
      close([typeof t === "number" ? t : await t.item()], [sched(step)], 1e-6);
    }
  }
});

Deno.test("state exists only for the tensor leaves of the trainable tree (a tied leaf has one)", () => {
  const shared = tensor([1, 2, 3]);
  const trainable = {
    base: { norm: null },
    tied: { A: shared },
    sites: { layers: [{ u: tensor([1]) }, { u: tensor([2]) }] },
  };
  const st = adamw(1e-3).init(trainable) as { mu: unknown; nu: unknown };
  assert.deepEqual(tree.paths(st.mu), ["tied.A", "sites.layers.0.u", "sites.layers.1.u"]);
  assert.equal(tree.leaves(st.nu).reduce((n, t) => n + t.size, 0), 5);
});

// Optimizers against hand-computed steps; schedules; state only for trainable leaves.
import assert from "node:assert/strict";
import { adamw, applyUpdates, chain, clipByGlobalNorm, globalNorm, sgd } from "../../optim/mod.ts";
import { cosineWithWarmup } from "../../optim/schedules.ts";
import { type Tensor, tensor, tree } from "../../mod.ts";

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

Deno.test("adamw with a schedule uses the step count", async () => {
  const p = { w: tensor([0]) };
  const opt = adamw((step) => [1, 0.5][step], { weightDecay: 0 });
  const r1 = opt.update({ w: tensor([1]) }, opt.init(p), p);
  const r2 = opt.update({ w: tensor([1]) }, r1.state, p);
  close(await values(r1.updates.w), [-1], 1e-6);
  close(await values(r2.updates.w), [-0.5], 1e-6);
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

Deno.test("cosineWithWarmup: linear warm-up, cosine to minLr, flat after", () => {
  const s = cosineWithWarmup(1, 10, 110, 0.1);
  close([s(0), s(4), s(9)], [0.1, 0.5, 1]);
  close([s(10), s(60), s(110), s(500)], [1, 0.1 + 0.45 * (1 + Math.cos(Math.PI / 2)), 0.1, 0.1]);
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

// Autodiff transforms: grad/valueAndGrad/vjp semantics, tying, argnums, aux,
// stopGradient, higher order, and the checker itself.
import assert from "node:assert/strict";
import {
  add,
  checkGrad,
  customVjp,
  dispose,
  grad,
  liveBuffers,
  matmul,
  mul,
  scope,
  sin,
  square,
  stopGradient,
  sum,
  tanh,
  type Tensor,
  tensor,
  valueAndGrad,
  vjp,
  zeros,
} from "../mod.ts";
import { key, normal } from "../core/random.ts";

async function close(t: Tensor, expected: number[], tol = 1e-5) {
  const d = Array.from(await t.data());
  assert.equal(d.length, expected.length, `length ${d.length} vs ${expected.length}`);
  d.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= tol * (1 + Math.abs(expected[i])), `[${i}] ${v} vs ${expected[i]}`)
  );
}

Deno.test("grad of a leaf used twice equals the sum of its single-use gradients", async () => {
  const w = normal(key(1), [3, 3]);
  const x = normal(key(2), [3]);
  const useA = (w: Tensor) => sum(tanh(matmul(w, x)));
  const useB = (w: Tensor) => sum(mul(sin(w), w));
  const both = (w: Tensor) => add(useA(w), useB(w));
  const gA = await grad(useA)(w).data();
  const gB = await grad(useB)(w).data();
  await close(grad(both)(w), Array.from(gA, (v, i) => v + gB[i]));
});

Deno.test("one tensor object at two places of a tree: gradients sum when reached through one path", async () => {
  // The Equinox-Shared pattern: a canonical leaf put back at several sites.
  const shared = tensor([1, 2]);
  const build = (p: { a: Tensor }) => ({ site0: p.a, site1: p.a });
  const loss = (p: { a: Tensor }) => {
    const full = build(p);
    return add(sum(mul(full.site0, 3)), sum(square(full.site1)));
  };
  const g = grad(loss)({ a: shared });
  await close(g.a, [3 + 2, 3 + 4]);
});

Deno.test("the same tensor passed at two input positions gets one gradient per position (JAX semantics)", async () => {
  const t = tensor([1, 2]);
  const g = grad((p: { a: Tensor; b: Tensor }) => add(sum(mul(p.a, 3)), sum(square(p.b))))({ a: t, b: t });
  await close(g.a, [3, 3]);
  await close(g.b, [2, 4]);
});

Deno.test("argnums selects arguments; an array returns a tuple", async () => {
  const f = (a: Tensor, b: Tensor) => sum(mul(a, b));
  const a = tensor([1, 2]), b = tensor([3, 4]);
  await close(grad(f, { argnums: 1 })(a, b), [1, 2]);
  const [ga, gb] = grad(f, { argnums: [0, 1] })(a, b);
  await close(ga, [3, 4]);
  await close(gb, [1, 2]);
});

Deno.test("valueAndGrad returns the value; hasAux passes aux through", async () => {
  const f = (w: Tensor) => {
    const y = square(w);
    return [sum(y), { y, note: "kept" }] as const;
  };
  const [v, g, aux] = valueAndGrad(f, { hasAux: true })(tensor([1, -2]));
  assert.equal(await v.item(), 5);
  await close(g, [2, -4]);
  await close(aux.y, [1, 4]);
  assert.equal(aux.note, "kept");
});

Deno.test("vjp of a non-scalar function with a given cotangent", async () => {
  const [out, back] = vjp((x: Tensor) => square(x), tensor([1, 2, 3]));
  await close(out, [1, 4, 9]);
  const [gx] = back(tensor([1, 0, -1]));
  await close(gx, [2, 0, -6]);
});

Deno.test("stopGradient blocks the gradient", async () => {
  const g = grad((x: Tensor) => sum(mul(x, stopGradient(x))))(tensor([2, 3]));
  await close(g, [2, 3]);
});

Deno.test("a function that ignores its input has zero gradient", async () => {
  const g = grad((_x: Tensor) => sum(tensor([1, 2])))(tensor([5, 6]));
  await close(g, [0, 0]);
});

Deno.test("gradients of gradients: d²/dx² x³ = 6x", async () => {
  const d1 = (x: Tensor) => sum(grad((y: Tensor) => sum(mul(mul(y, y), y)))(x));
  await close(grad(d1)(tensor([1, 2, -1])), [6, 12, -6], 1e-4);
});

Deno.test("non-differentiated arguments cost no gradient work", () => {
  let calls = 0;
  const counted = customVjp((x) => square(x), (g, [x]) => {
    calls++;
    return [mul(g, mul(x, 2))];
  });
  const f = (w: Tensor, data: Tensor) => sum(mul(w, counted(data)));
  grad(f)(tensor([1, 2]), tensor([3, 4]));
  assert.equal(calls, 0, "the vjp of an op on non-differentiated data ran");
  grad(f, { argnums: 1 })(tensor([1, 2]), tensor([3, 4]));
  assert.equal(calls, 1);
});

Deno.test("grad of a non-scalar output is an Error naming the problem", () => {
  assert.throws(() => grad((x: Tensor) => square(x))(tensor([1, 2])), /grad: .*float32 scalar.*\[2\]/);
});

Deno.test("differentiating an int32 leaf is an Error naming the leaf", () => {
  assert.throws(
    () => grad((p: { ids: Tensor }) => sum(p.ids))({ ids: tensor([1, 2], undefined, "int32") }),
    /leaf "ids" is int32/,
  );
});

Deno.test("checkGrad passes a correct function with two uses of one parameter", async () => {
  const w = tensor([[0.3, -0.2], [0.5, 0.1]]);
  const x = tensor([[1, 2], [-1, 0.5]]);
  const f = (w: Tensor) => sum(mul(tanh(matmul(w, x)), matmul(x, w)));
  const report = await checkGrad(f, [w]);
  assert.equal(report.checked, 4);
});

Deno.test("checkGrad rejects a wrong vjp rule", async () => {
  const wrong = customVjp((x) => square(x), (g, [x]) => [mul(g, x)]); // missing the factor 2
  await assert.rejects(
    checkGrad((x: Tensor) => sum(wrong(x)), [tensor([0.5, -1.5])]),
    /checkGrad: argument 0 element 0/,
  );
});

Deno.test("grad frees its intermediates: live buffers are flat across repeated steps", () => {
  const w = normal(key(3), [8, 8]);
  const x = normal(key(4), [4, 8]);
  const loss = (w: Tensor) => sum(square(tanh(matmul(x, w, { transB: true }))));
  const step = () => scope(() => grad(loss)(w));
  dispose(step());
  const before = liveBuffers();
  for (let i = 0; i < 20; i++) dispose(step());
  assert.equal(liveBuffers(), before);
});

Deno.test("scope keeps returned tensors, frees the rest, also across await", async () => {
  const before = liveBuffers();
  const kept = await scope(async () => {
    const a = zeros([3]);
    await Promise.resolve();
    const b = add(a, 1);
    return { b };
  });
  assert.equal(liveBuffers(), before + 1);
  await close(kept.b, [1, 1, 1]);
  dispose(kept);
  assert.equal(liveBuffers(), before);
});

Deno.test("a disposed tensor cannot be used", () => {
  const t = tensor([1]);
  t.dispose();
  assert.throws(() => add(t, 1), /used after dispose/);
});

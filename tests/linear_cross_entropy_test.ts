/**
 * nn.linearCrossEntropy against the composite it replaces (crossEntropy of the full logits): the same loss
 * and gradients for every chunking, with ignored targets, w.r.t. either argument, under grad of grad (where
 * it falls back to the composite), with no buffer left behind, and never holding a [N, V] buffer.
 */
import assert from "node:assert/strict";
import { grad, liveBuffers, matmul, nn, scope, square, sum, type Tensor, tensor, valueAndGrad } from "../mod.ts";
import { key, normal } from "../core/random.ts";
import { getBackend } from "../core/runtime.ts";

const N = 37, D = 8, V = 50;
const x0 = () => normal(key(1), [N, D]);
const w0 = () => normal(key(2), [V, D], { std: 0.5 });
const t0 = () => tensor(Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : (i * 13) % V)), [N], "int32");

const composite = (x: Tensor, w: Tensor, t: Tensor, reduction: "mean" | "sum" = "mean") =>
  nn.crossEntropy(matmul(x, w, { transB: true }), t, { reduction });

async function close(a: Tensor, b: Tensor, what: string, rtol = 2e-5) {
  const [p, q] = [await a.data(), await b.data()];
  assert.equal(p.length, q.length, what);
  for (let i = 0; i < p.length; i++) {
    assert(Math.abs(p[i] - q[i]) <= rtol * (1 + Math.abs(q[i])), `${what}[${i}]: ${p[i]} vs ${q[i]}`);
  }
}

Deno.test("linearCrossEntropy: loss and both gradients equal the composite's, for every chunking", async () => {
  const before = liveBuffers();
  await scope(async () => {
    const [x, w, t] = [x0(), w0(), t0()];
    for (const reduction of ["mean", "sum"] as const) {
      const [ref, [gx, gw]] = valueAndGrad((a: Tensor, b: Tensor) => composite(a, b, t, reduction), {
        argnums: [0, 1],
      })(x, w);
      for (const chunk of [1, 5, 16, N, 1000]) {
        const f = (a: Tensor, b: Tensor) => nn.linearCrossEntropy(a, b, t, { chunk, reduction });
        const [loss, [fx, fw]] = valueAndGrad(f, { argnums: [0, 1] })(x, w);
        await close(loss, ref, `loss (${reduction}, chunk ${chunk})`);
        await close(fx, gx, `d/dx (${reduction}, chunk ${chunk})`);
        await close(fw, gw, `d/dweight (${reduction}, chunk ${chunk})`);
        const onlyX = grad((a: Tensor) => nn.linearCrossEntropy(a, w, t, { chunk, reduction }))(x);
        await close(onlyX, gx, `d/dx alone (${reduction}, chunk ${chunk})`);
      }
      // Without a gradient: the forward alone.
      await close(nn.linearCrossEntropy(x, w, t, { chunk: 4, reduction }), ref, `forward only (${reduction})`);
    }
  });
  assert.equal(liveBuffers(), before, "buffers leaked");
});

Deno.test("linearCrossEntropy: grad of grad falls back to the composite and agrees with it", async () => {
  await scope(async () => {
    const [x, w, t] = [x0(), w0(), t0()];
    // Σ (∂L/∂x)² needs the second derivatives of L.
    const second = (f: (a: Tensor) => Tensor) => grad((a: Tensor) => sum(square(grad(f)(a))))(x);
    const fused = second((a) => nn.linearCrossEntropy(a, w, t, { chunk: 6 }));
    const ref = second((a) => composite(a, w, t));
    await close(fused, ref, "d/dx Σ(∂L/∂x)²", 1e-4);
  });
});

Deno.test("linearCrossEntropy: no buffer as large as the [N, V] logits while computing loss and gradients", () => {
  scope(() => {
    const [x, w, t] = [x0(), w0(), t0()];
    const b = getBackend();
    const biggest = { n: 0 };
    const spy = <K extends "matmul" | "binary" | "unary" | "where" | "cast" | "reduce" | "strided" | "fill">(k: K) => {
      const slots = b as unknown as Record<string, (...args: unknown[]) => { size: number }>;
      const orig = slots[k].bind(b);
      slots[k] = (...args: unknown[]) => {
        const out = orig(...args);
        biggest.n = Math.max(biggest.n, out.size);
        return out;
      };
      return () => {
        delete slots[k];
      };
    };
    const undo = (["matmul", "binary", "unary", "where", "cast", "reduce", "strided", "fill"] as const).map(spy);
    try {
      valueAndGrad((a: Tensor, c: Tensor) => composite(a, c, t), { argnums: [0, 1] })(x, w);
      assert(biggest.n >= N * V, "the spy saw no [N, V] buffer in the composite"); // the spy itself works
      biggest.n = 0;
      valueAndGrad((a: Tensor, c: Tensor) => nn.linearCrossEntropy(a, c, t, { chunk: 8 }), { argnums: [0, 1] })(x, w);
    } finally {
      undo.forEach((u) => u());
    }
    assert(biggest.n <= 8 * V, `a buffer of ${biggest.n} elements was made (chunk 8 × V ${V} = ${8 * V})`);
  });
});

Deno.test("linearCrossEntropy: bad arguments name what was expected", () => {
  const [x, w, t] = [x0(), w0(), t0()];
  assert.throws(
    () => nn.linearCrossEntropy(x, normal(key(3), [V, D + 1]), t),
    /expected x \[N, d\] and weight \[V, d\]/,
  );
  assert.throws(() => nn.linearCrossEntropy(x, w, tensor([1, 2])), /targets must be int32 \[37\], got float32 \[2\]/);
  assert.throws(() => nn.linearCrossEntropy(x, w, t, { chunk: 0 }), /chunk must be a positive integer, got 0/);
  assert.throws(
    () => nn.linearCrossEntropy(x, w, t, { reduction: "none" as unknown as "mean" }),
    /reduction must be "mean" or "sum"/,
  );
});

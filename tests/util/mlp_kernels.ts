/**
 * A small training step written directly against backend kernels, for the
 * lowering tests and the compiled-vs-eager bench: embedding lookup, linear,
 * tanh, linear, mean squared error, its backward pass, and SGD.
 * @module
 */
import type { BackendBuffer, MatmulSpec } from "../../backends/backend.ts";
import type { Kernels } from "./program_tracer.ts";

/** Sizes: vocabulary, batch, embedding width, hidden width, outputs. */
export interface MlpDims {
  V: number;
  B: number;
  D: number;
  H: number;
  C: number;
}

/** The parameters (emb [V, D], w1 [D, H], b1 [H], w2 [H, C]) and data (idx int32 [B], y [B, C]) of a step. */
export interface MlpArgs {
  idx: BackendBuffer;
  y: BackendBuffer;
  emb: BackendBuffer;
  w1: BackendBuffer;
  b1: BackendBuffer;
  w2: BackendBuffer;
}

function spec(M: number, K: number, N: number, more: Partial<MatmulSpec> = {}): MatmulSpec {
  return { batchShape: [], aBatchStrides: [], bBatchStrides: [], M, K, N, transA: false, transB: false, ...more };
}

/**
 * Embedding → linear → tanh → linear, squared error, backward, SGD (learning
 * rate 0.2): the kernels of one training step. `constant` makes a scalar
 * (uploaded eagerly, or a program constant when tracing). Returns
 * [loss, emb', w1', b1', w2'].
 */
export function mlpStep(
  K: Kernels,
  constant: (data: Float32Array) => BackendBuffer,
  p: MlpArgs,
  dims: MlpDims,
): BackendBuffer[] {
  const { V, B, D, H, C } = dims;
  const f = "float32";
  const m = (buf: BackendBuffer, cols: number) => ({ buf, strides: [cols, 1] });
  const s = (buf: BackendBuffer) => ({ buf, strides: [0, 0] });
  const x = K.gather(p.emb, V, D, p.idx);
  const h = K.matmul(x, p.w1, spec(B, D, H));
  const a = K.unary("tanh", K.binary("add", m(h, H), { buf: p.b1, strides: [0, 1] }, [B, H], f), f);
  const logits = K.matmul(a, p.w2, spec(B, H, C));
  const diff = K.binary("sub", m(logits, C), m(p.y, C), [B, C], f);
  const sum = K.reduce("sum", K.unary("square", diff, f), 1, B * C, 1);
  const loss = K.binary(
    "mul",
    { buf: sum, strides: [] },
    { buf: constant(Float32Array.of(1 / (B * C))), strides: [] },
    [],
    f,
  );
  const dlog = K.binary("mul", m(diff, C), s(constant(Float32Array.of(2 / (B * C)))), [B, C], f);
  const dw2 = K.matmul(a, dlog, spec(H, B, C, { transA: true }));
  const da = K.matmul(dlog, p.w2, spec(B, C, H, { transB: true }));
  const oneMinus = K.binary("sub", s(constant(Float32Array.of(1))), m(K.unary("square", a, f), H), [B, H], f);
  const dh = K.binary("mul", m(da, H), m(oneMinus, H), [B, H], f);
  const db1 = K.reduce("sum", dh, 1, B, H);
  const dw1 = K.matmul(x, dh, spec(D, B, H, { transA: true }));
  const demb = K.scatterAdd(p.idx, K.matmul(dh, p.w1, spec(B, H, D, { transB: true })), V, D);
  const lr = constant(Float32Array.of(0.2));
  const sgd = (w: BackendBuffer, g: BackendBuffer) =>
    K.binary(
      "sub",
      { buf: w, strides: [1] },
      { buf: K.binary("mul", { buf: g, strides: [1] }, { buf: lr, strides: [0] }, [g.size], f), strides: [1] },
      [w.size],
      f,
    );
  return [loss, sgd(p.emb, demb), sgd(p.w1, dw1), sgd(p.b1, db1), sgd(p.w2, dw2)];
}

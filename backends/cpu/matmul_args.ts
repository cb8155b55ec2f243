/**
 * The calling convention shared by every CPU matmul kernel (the production
 * dispatcher, the TypeScript and WebAssembly kernels, the benchmark ladder):
 * out[outOff…] = op(A)·op(B), A at `aOff` is [M,K] (or [K,M] when transA), B
 * at `bOff` is [K,N] (or [N,K] when transB), all offsets in elements.
 * @module
 */

/** Arguments of a matmul kernel, in order (BLAS-like: buffers with offsets, then sizes, then transposes). */
export type MatmulF32Args = [
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  out: Float32Array,
  outOff: number,
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
];

/** A matmul kernel: writes `out` (every one of its M·N entries). */
export type MatmulF32Fn = (...args: MatmulF32Args) => void;

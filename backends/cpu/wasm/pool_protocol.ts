import type { EngineExports } from "./engine.ts";
import type { Blas } from "./blas.ts";

// The words shared by the pool (pool.ts) and its workers (worker.ts). A slot is SLOT_WORDS int32 words:
// [0] state, [1] kernel, [2 .. 2 + SLOT_ARGS) its arguments: the byte address of a table of parts, their
// number, the byte address of the counter from which every thread takes the next part, the byte
// address of this thread's matmul packing scratch, and the memory's size in 64 KiB pages. A part is PART_WORDS int32 words: the kernel's arguments
// (addresses as int32 bits; for matmul, the packing buffers as offsets into the running thread's scratch).

/** Slot states. The main thread moves idle → claimed → run; the worker run → done; the main thread done → idle. */
export const STATE = {
  starting: 0,
  idle: 1,
  claimed: 2,
  run: 3,
  done: 4,
  /** The worker closed itself after being idle; the pool starts a new one on demand. */
  closed: 5,
  /** A kernel trapped in the worker (its output is incomplete); the main thread throws. */
  failed: 6,
  /** The worker took the kernel posted (run → taken); until then the main thread may take it back (run → idle). */
  taken: 7,
} as const;

/** Kernel ids (the engine module's exports a worker can run). */
export const KERNEL = {
  matmul: 1,
  binary: 2,
  where: 3,
  strided: 4,
  unary: 5,
  reduce: 6,
  gemv: 7,
  random: 8,
  gemvBatch: 9,
  copyRows: 10,
  binaryI32: 11,
  cast: 12,
  fill: 13,
  fused: 14,
  /** JavaScript kernels calling the system BLAS (./blas.ts): never in the module's instruction loop. */
  blasGemm: 15,
  blasGemv: 16,
  /** Attention of query rows over a cache (program.ts AttentionCall). */
  attention: 17,
} as const;

export const SLOT_ARGS = 16;
export const PART_WORDS = 16;
export const SLOT_WORDS = 2 + SLOT_ARGS;

/**
 * Takes parts from the table (`counter` is shared by every thread running it) until none is left, and runs
 * each: the same loop on the main thread and in workers. `words` must cover the table.
 */
export function runParts(
  x: EngineExports,
  kernel: number,
  words: Int32Array,
  table: number,
  total: number,
  counter: number,
  scratch: number,
): void {
  for (let i = Atomics.add(words, counter >>> 2, 1); i < total; i = Atomics.add(words, counter >>> 2, 1)) {
    const o = (table >>> 2) + i * PART_WORDS;
    runKernel(x, kernel, words.subarray(o, o + PART_WORDS), scratch);
  }
}

let blas: Blas | null | undefined;
let blasSource: (() => Blas | null) | null = null;

/** Where this thread's BLAS kernels find the library (loaded on their first call). */
export function setBlasSource(source: () => Blas | null): void {
  blasSource = source;
}

function theBlas(): Blas {
  blas ??= blasSource?.() ?? null;
  if (!blas) throw new Error("cpu engine: a BLAS kernel where no BLAS could be loaded");
  return blas;
}

/** Calls kernel `kernel` of the engine module with `a` (matmul's packing buffers offset by `scratch`). */
export function runKernel(x: EngineExports, kernel: number, a: ArrayLike<number>, scratch = 0): void {
  switch (kernel) {
    case KERNEL.blasGemm: // a, b, c, m, n, k, lda, ldb, ldc, transA, transB
      theBlas().sgemm(a[9] !== 0, a[10] !== 0, a[3], a[4], a[5], a[0] >>> 0, a[6], a[1] >>> 0, a[7], a[2] >>> 0, a[8]);
      return;
    case KERNEL.blasGemv: // a, x, y, m, n, transA, lda
      theBlas().sgemv(a[5] !== 0, a[3], a[4], a[0] >>> 0, a[6], a[1] >>> 0, a[2] >>> 0);
      return;
    case KERNEL.matmul:
      x.matmul(
        a[0],
        a[1],
        a[2],
        a[3] + scratch,
        a[4] + scratch,
        a[5] + scratch,
        a[6],
        a[7],
        a[8],
        a[9],
        a[10],
        a[11],
        a[12],
        a[13],
      );
      return;
    case KERNEL.binary:
      x.binaryF32(a[0], a[1], a[2], a[3], a[4], a[5]);
      return;
    case KERNEL.where:
      x.where32(a[0], a[1], a[2], a[3], a[4], a[5]);
      return;
    case KERNEL.strided:
      x.strided32(a[0], a[1], a[2], a[3]);
      return;
    case KERNEL.unary:
      x.unaryF32(a[0], a[1], a[2], a[3]);
      return;
    case KERNEL.reduce:
      x.reduceF32(a[0], a[1], a[2], a[3], a[4], a[5]);
      return;
    case KERNEL.gemv:
      x.gemv(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
      return;
    case KERNEL.gemvBatch:
      x.gemvBatch(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
      return;
    case KERNEL.copyRows:
      x.copyRows(a[0], a[1], a[2], a[3], a[4], a[5]);
      return;
    case KERNEL.binaryI32:
      x.binaryI32(a[0], a[1], a[2], a[3], a[4], a[5]);
      return;
    case KERNEL.cast:
      x.castData(a[0], a[1], a[2], a[3], a[4]);
      return;
    case KERNEL.fill:
      x.fillData(a[0], a[1], a[2], a[3]);
      return;
    case KERNEL.fused: // a[4]: offset of its chunks in the running thread's scratch
      x.fusedF32(a[0], a[1], a[2], a[3], a[4] + scratch);
      return;
    case KERNEL.attention: // a[11]: offset of the scores in the running thread's scratch
      x.attendRows(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11] + scratch);
      return;
    case KERNEL.random: // a[6]: offset of 32 bytes in the running thread's scratch
      x.randomF32(a[0], a[1], a[2], a[3], a[4], a[5], a[6] + scratch);
      return;
  }
  throw new Error(`cpu engine: unknown kernel ${kernel}`);
}

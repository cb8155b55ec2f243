import type { EngineExports } from "./engine.ts";
import type { Blas } from "./blas.ts";

// The words shared by the pool (pool.ts), its workers (worker.ts) and the module's fork-join (program.as.ts). A
// slot is SLOT_WORDS int32 words (SLOT), two cache lines: the state and two flags, set while the worker, or
// the main thread, sleeps on the slot (the other side then wakes it: a wake-up costs a lock, so it is skipped
// when nobody sleeps); then the kernel posted and its arguments (the byte address of a
// table of parts, their number, the byte address of the counter from which every thread takes the next part, the
// byte address of the worker's scratch for it, the memory's size in 64 KiB pages), and the worker's own scratch
// block and its bytes. A part is PART_WORDS int32 words:
// the kernel's arguments (addresses as int32 bits; for matmul, the packing buffers as offsets into the running
// thread's scratch).

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
  /** A JavaScript kernel calling the system BLAS (./blas.ts): never in the module's instruction loop. */
  blasGemm: 15,
  /** The composites (program.ts CompositeCall): attention of query rows over a cache, RMSNorm, RoPE. */
  attention: 17,
  rmsNorm: 18,
  rope: 19,
  /** Rows of a table by index: a compiled program's record only (runCalls reports an index out of range). */
  gather: 20,
} as const;

/** Word indices in a slot (program.as.ts reads them as byte offsets 4·i). */
export const SLOT = {
  state: 0,
  workerSleeps: 1,
  mainSleeps: 2,
  // The next cache line: the main thread writes it without moving the line the worker polls.
  kernel: 16,
  table: 17,
  parts: 18,
  counter: 19,
  scratch: 20,
  pages: 21,
  ownScratch: 22,
  ownScratchBytes: 23,
} as const;
export const PART_WORDS = 16;
export const SLOT_WORDS = 32;

/** A compiled program's record that is a fork-join over a part table (program.as.ts FORK), not a kernel. */
export const FORK_RECORD = 32;

/** How gather's index outside its table becomes an Error: gather's arguments as it ran, the index's position. */
export type GatherFail = (args: ArrayLike<number>, position: number) => Error;

/** gather (the module's gatherRows: table, rows, row bytes, idx, n, out), throwing `fail`'s Error at a bad index. */
export function runGather(x: EngineExports, a: ArrayLike<number>, fail: GatherFail): void {
  const bad = x.gatherRows(a[0], a[1], a[2], a[3], a[4], a[5]);
  if (bad >= 0) throw fail(a, bad);
}

/** Whether `kernel` is the module's own (its parts can run in the module's loop), not a JavaScript one (BLAS). */
export function moduleKernel(kernel: number): boolean {
  return kernel !== KERNEL.blasGemm;
}

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
  if (moduleKernel(kernel)) return x.runParts(kernel, table, total, counter, scratch);
  for (let i = Atomics.add(words, counter >>> 2, 1); i < total; i = Atomics.add(words, counter >>> 2, 1)) {
    const o = (table >>> 2) + i * PART_WORDS;
    runKernel(x, kernel, words, scratch, o);
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

/**
 * Calls kernel `kernel` of the engine module with the arguments at `a[at…]` (matmul's packing buffers offset by
 * `scratch`): a part in the heap's table is read in place.
 */
export function runKernel(x: EngineExports, kernel: number, a: ArrayLike<number>, scratch = 0, at = 0): void {
  switch (kernel) {
    case KERNEL.blasGemm: // a, b, c, m, n, k, lda, ldb, ldc, transA, transB
      theBlas().sgemm(
        a[at + 9] !== 0,
        a[at + 10] !== 0,
        a[at + 3],
        a[at + 4],
        a[at + 5],
        a[at] >>> 0,
        a[at + 6],
        a[at + 1] >>> 0,
        a[at + 7],
        a[at + 2] >>> 0,
        a[at + 8],
      );
      return;
    case KERNEL.matmul:
      x.matmul(
        a[at],
        a[at + 1],
        a[at + 2],
        a[at + 3] + scratch,
        a[at + 4] + scratch,
        a[at + 5] + scratch,
        a[at + 6],
        a[at + 7],
        a[at + 8],
        a[at + 9],
        a[at + 10],
        a[at + 11],
        a[at + 12],
        a[at + 13],
      );
      return;
    case KERNEL.binary:
      x.binaryF32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.where:
      x.where32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.strided:
      x.strided32(a[at], a[at + 1], a[at + 2], a[at + 3]);
      return;
    case KERNEL.unary:
      x.unaryF32(a[at], a[at + 1], a[at + 2], a[at + 3]);
      return;
    case KERNEL.reduce:
      x.reduceF32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.gemv:
      x.gemv(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6]);
      return;
    case KERNEL.gemvBatch:
      x.gemvBatch(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6], a[at + 7], a[at + 8]);
      return;
    case KERNEL.copyRows:
      x.copyRows(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.binaryI32:
      x.binaryI32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.cast:
      x.castData(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4]);
      return;
    case KERNEL.fill:
      x.fillData(a[at], a[at + 1], a[at + 2], a[at + 3]);
      return;
    case KERNEL.fused: // a[at + 4]: offset of its chunks in the running thread's scratch
      x.fusedF32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4] + scratch);
      return;
    case KERNEL.attention: // a[at + 11]: offset of the scores in the running thread's scratch
      x.attendRows(
        a[at],
        a[at + 1],
        a[at + 2],
        a[at + 3],
        a[at + 4],
        a[at + 5],
        a[at + 6],
        a[at + 7],
        a[at + 8],
        a[at + 9],
        a[at + 10],
        a[at + 11] + scratch,
      );
      return;
    case KERNEL.rmsNorm: // a[at + 7]: offset of the squares in the running thread's scratch
      x.rmsNormRows(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6], a[at + 7] + scratch);
      return;
    case KERNEL.rope:
      x.ropeRows(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5]);
      return;
    case KERNEL.random: // a[at + 6]: offset of 32 bytes in the running thread's scratch
      x.randomF32(a[at], a[at + 1], a[at + 2], a[at + 3], a[at + 4], a[at + 5], a[at + 6] + scratch);
      return;
  }
  throw new Error(`cpu engine: unknown kernel ${kernel}`);
}

import type { EngineExports } from "./engine.ts";

// The words shared by the pool (pool.ts) and its workers (worker.ts). A slot is SLOT_WORDS int32 words:
// [0] state, [1] kernel, [2 .. 2 + SLOT_ARGS) the kernel's arguments (addresses as int32 bits).

/** Slot states. The main thread moves idle → claimed → run; the worker run → done; the main thread done → idle. */
export const STATE = {
  starting: 0,
  idle: 1,
  claimed: 2,
  run: 3,
  done: 4,
  /** The worker closed itself after being idle; the pool starts a new one on demand. */
  closed: 5,
} as const;

/** Kernel ids (the engine module's exports a worker can run). */
export const KERNEL = { matmul: 1, binary: 2, where: 3, strided: 4, unary: 5, reduce: 6, gemv: 7 } as const;

export const SLOT_ARGS = 16;
export const SLOT_WORDS = 2 + SLOT_ARGS;

/** Calls kernel `kernel` of the engine module with `a` (the same on the main thread and in workers). */
export function runKernel(x: EngineExports, kernel: number, a: ArrayLike<number>): void {
  switch (kernel) {
    case KERNEL.matmul:
      x.matmul(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]);
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
  }
  throw new Error(`cpu engine: unknown kernel ${kernel}`);
}

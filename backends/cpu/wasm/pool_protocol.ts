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
export const KERNEL = { matmul: 1, binary: 2, where: 3, strided: 4, unary: 5, reduce: 6 } as const;

export const SLOT_ARGS = 16;
export const SLOT_WORDS = 2 + SLOT_ARGS;

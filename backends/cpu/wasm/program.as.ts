// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// The instruction loop of a compiled program (backends/cpu/compile.ts): runs a run of prepared kernel calls
// without returning to JavaScript between them. Part of the module built by build.ts (entry: engine.as.ts).
import { matmul } from "./matmul.as";
import { binaryF32, binaryI32, castData, randomF32, reduceF32, strided32, unaryF32, where32 } from "./elementwise.as";
import { gemv, gemvBatch, gemvLane, stealLanes } from "./vector.as";
import { attendRows, rmsNormRows, ropeRows } from "./composite.as";
import { copyRows, fillData, gatherRows } from "./data.as";
import { fusedF32 } from "./fused.as";

// @ts-ignore: decorator
@inline function arg(a: usize, k: i32): i32 {
  return load<i32>(a + (<usize>k << 2));
}

/** Calls kernel `k` with the arguments at `a` (i32 words; matmul's packing buffers, random's 32 bytes, the fused
 * kernel's chunks and the composites' rows as offsets into `scratch`): a record's, or a part's of a table. */
// @ts-ignore: decorator
@inline function callKernel(k: i32, a: usize, scratch: usize): void {
  const s = <i32>scratch;
  switch (k) {
    case 1:
      matmul(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3) + s, arg(a, 4) + s, arg(a, 5) + s, arg(a, 6),
        arg(a, 7), arg(a, 8), arg(a, 9), arg(a, 10), arg(a, 11), arg(a, 12), arg(a, 13));
      break;
    case 2: binaryF32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    case 3: where32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    case 4: strided32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3)); break;
    case 5: unaryF32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3)); break;
    case 6: reduceF32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    case 7: gemv(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6)); break;
    case 8: randomF32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6) + s); break;
    case 9:
      gemvBatch(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6), arg(a, 7), arg(a, 8));
      break;
    case 10: copyRows(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    case 11: binaryI32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    case 12: castData(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4)); break;
    case 13: fillData(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3)); break;
    case 14: fusedF32(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4) + s); break;
    case 17:
      attendRows(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6), arg(a, 7),
        arg(a, 8), arg(a, 9), arg(a, 10), arg(a, 11) + s);
      break;
    case 18:
      rmsNormRows(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6), arg(a, 7) + s);
      break;
    case 19: ropeRows(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5)); break;
    default: unreachable();
  }
}

/** gemv's id (pool_protocol.ts KERNEL). */
const GEMV = 7;
/** The BLAS kernel's id (pool_protocol.ts KERNEL): JavaScript's, through FFI. */
const BLAS_GEMM = 15;
/** gather's id (pool_protocol.ts KERNEL): a record only (never a part), the one kernel that reports bad input. */
const GATHER = 20;
/** Record kind of a fork-join (compile.ts): the parts of a split kernel, run here and on the pool's idle workers. */
const FORK = 32;
/** Bytes of a part (pool_protocol.ts PART_WORDS). */
const PART_BYTES = 64;
// Slot bytes (pool_protocol.ts SLOT): the state and the two sleeping flags in the line a worker polls, the job
// and the worker's own scratch in the next (so posting a job moves the polled line once); states (STATE).
const S_WORKER_SLEEPS = 4, S_MAIN_SLEEPS = 8;
const S_KERNEL = 64, S_TABLE = 68, S_PARTS = 72, S_COUNTER = 76, S_SCRATCH = 80, S_PAGES = 84, S_OWN = 88, S_OWN_BYTES = 92;
const IDLE = 1, CLAIMED = 2, RUN = 3, DONE = 4, FAILED = 6, TAKEN = 7;
// Fork descriptor words (pool.ts): active slots, whether this thread may wait, fork-joins, worker jobs, slots…
const D_SLOTS = 0, D_CAN_WAIT = 4, D_RUNS = 8, D_JOBS = 12, D_SLOT0 = 16;
/** Polls of a worker's slot before the main thread sleeps on it (then 50 ms waits: a descheduled worker). */
const SPIN_POLLS = 1 << 16;

/**
 * Runs the parts of a table: each thread takes the next part from `counter` until none is left (the loop of
 * pool_protocol.ts runParts, for the module's kernels). Exported for the workers.
 */
export function runParts(kernel: i32, table: usize, total: i32, counter: usize, scratch: usize): void {
  if (ASC_FEATURE_THREADS) {
    for (let i = atomic.add<i32>(counter, 1); i < total; i = atomic.add<i32>(counter, 1)) {
      runPart(kernel, table + <usize>i * PART_BYTES, scratch);
    }
    if (kernel == GEMV) stealLanes(table, total); // lanes of a streamed vector product still being taken
  } else {
    for (let i = 0; i < total; i++) runPart(kernel, table + <usize>i * PART_BYTES, scratch);
  }
}

/** A part of a table: a lane of a streamed vector product (gemv's transW 3) takes its rows in claims; others run whole. */
// @ts-ignore: decorator
@inline function runPart(kernel: i32, part: usize, scratch: usize): void {
  if (kernel == GEMV && load<i32>(part, 24) == 3) gemvLane(part);
  else callKernel(kernel, part, scratch);
}

/**
 * A worker's wait for work (worker.ts): polls its slot at `slot`, taking every kernel posted and running the
 * module's own here, until `polls` polls in a row found none (returns how many it ran) or it took one JavaScript
 * must run (returns -1, the slot taken): a BLAS kernel, or one posted over more memory than the `pages` this
 * thread is known to cover (worker.ts renews its view, and so this instance's bounds, first: memory.size() may
 * already read the grown size while this instance still checks bounds against the old one). A trap leaves the
 * slot taken; the caller marks it failed.
 */
export function serve(slot: usize, polls: i32, pages: i32): i32 {
  if (!ASC_FEATURE_THREADS) return 0;
  let jobs = 0;
  for (let p = 0; p < polls; p++) {
    if (atomic.load<i32>(slot) != RUN || atomic.cmpxchg<i32>(slot, RUN, TAKEN) != RUN) continue; // or taken back
    const kernel = load<i32>(slot + S_KERNEL);
    if (kernel == BLAS_GEMM || load<i32>(slot + S_PAGES) > pages) return -1; // for JavaScript
    runParts(kernel, <usize>load<i32>(slot + S_TABLE), load<i32>(slot + S_PARTS), <usize>load<i32>(slot + S_COUNTER), <usize>load<i32>(slot + S_SCRATCH));
    atomic.store<i32>(slot, DONE);
    if (atomic.load<i32>(slot + S_MAIN_SLEEPS)) atomic.notify(slot, 1);
    p = 0;
    jobs++;
  }
  return jobs;
}

/**
 * A fork-join without JavaScript (pool.ts run's protocol): claims the idle workers whose scratch holds
 * `scratchBytes`, posts the table to them, runs parts here, waits for each. Returns false when a worker's
 * part trapped (the caller throws). With no workers (one thread, or none idle) every part runs here, in order.
 */
function fork(kernel: i32, table: usize, total: i32, counter: usize, desc: usize, scratchBytes: i32, scratch: usize): bool {
  if (!ASC_FEATURE_THREADS) {
    runParts(kernel, table, total, counter, scratch);
    return true;
  }
  atomic.store<i32>(counter, 0);
  const n = min(atomic.load<i32>(desc + D_SLOTS), 32);
  let claimed: u32 = 0;
  for (let i = 0; i < n; i++) {
    const slot = <usize>load<i32>(desc + D_SLOT0 + (<usize>i << 2));
    if (load<i32>(slot + S_OWN_BYTES) < scratchBytes) continue;
    if (atomic.cmpxchg<i32>(slot, IDLE, CLAIMED) != IDLE) continue;
    store<i32>(slot + S_KERNEL, kernel);
    store<i32>(slot + S_TABLE, <i32>table);
    store<i32>(slot + S_PARTS, total);
    store<i32>(slot + S_COUNTER, <i32>counter);
    store<i32>(slot + S_SCRATCH, load<i32>(slot + S_OWN));
    store<i32>(slot + S_PAGES, memory.size());
    atomic.store<i32>(slot, RUN);
    if (atomic.load<i32>(slot + S_WORKER_SLEEPS)) atomic.notify(slot, 1);
    claimed |= 1 << i;
  }
  atomic.add<i32>(desc + D_RUNS, 1);
  runParts(kernel, table, total, counter, scratch);
  let ok = true;
  for (let i = 0; i < n; i++) {
    if (!(claimed & (1 << i))) continue;
    const slot = <usize>load<i32>(desc + D_SLOT0 + (<usize>i << 2));
    // Not taken yet (a worker not scheduled): every part ran here, nothing to wait for.
    if (atomic.cmpxchg<i32>(slot, RUN, IDLE) == RUN) continue;
    atomic.add<i32>(desc + D_JOBS, 1);
    for (let polls = 1;; polls++) {
      const st = atomic.load<i32>(slot);
      if (st == DONE || st == FAILED) {
        if (st == FAILED) ok = false;
        break;
      }
      if (polls < SPIN_POLLS || !atomic.load<i32>(desc + D_CAN_WAIT)) continue;
      atomic.store<i32>(slot + S_MAIN_SLEEPS, 1);
      atomic.wait<i32>(slot, st, 50_000_000);
      atomic.store<i32>(slot + S_MAIN_SLEEPS, 0);
    }
    atomic.store<i32>(slot, IDLE);
    if (atomic.load<i32>(slot + S_WORKER_SLEEPS)) atomic.notify(slot, 1);
  }
  return ok;
}

/**
 * Runs `n` records of 16 i32 words: a kernel id (pool_protocol.ts's KERNEL) then its arguments as the pool passes
 * them (see callKernel), or a fork-join (FORK: kernel, table, parts, counter, fork descriptor, scratch bytes).
 * Returns 0; 1 + the index of a fork whose worker failed; or −(1 + the index) of a gather whose index at the
 * position it leaves in its record's last word is outside the table. Nothing after such a record runs.
 */
export function runCalls(rec: usize, n: i32, scratch: usize): i32 {
  for (let i = 0; i < n; i++, rec += 64) {
    const k = load<i32>(rec);
    if (k == GATHER) {
      const a = rec + 4, bad = gatherRows(arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5));
      if (bad < 0) continue;
      store<i32>(rec, bad, 60); // where the index is, for the caller's Error
      return -(i + 1);
    }
    if (k != FORK) callKernel(k, rec + 4, scratch);
    else if (
      !fork(arg(rec + 4, 0), <usize>arg(rec + 4, 1), arg(rec + 4, 2), <usize>arg(rec + 4, 3), <usize>arg(rec + 4, 4),
        arg(rec + 4, 5), scratch)
    ) return i + 1;
  }
  return 0;
}

// The CPU engine's worker pool: workers (worker.ts) that run engine kernels on the shared heap, so a large
// kernel is split into parts that run at once, the main thread doing one part itself.
//
// Results do not depend on the thread count: callers split a kernel only between output elements (rows of
// a product, outer slices of an elementwise op or a reduction), and every output element is computed by
// one thread with the same sequence of operations as without a split. So 1 and N threads give the same
// bits, and a worker that is not ready simply means its part runs on the main thread.
//
// Workers start asynchronously (the first large kernels run on fewer threads) and close themselves after
// an idle second, so a finished program exits; the next large kernel starts them again. Threads need the
// engine's memory to be shared (SharedArrayBuffer: Deno, or a cross-origin-isolated page) and module
// workers; elsewhere everything runs on the main thread with the same results.

import type { Engine } from "./engine.ts";
import { ensureScratch, type PackScratch } from "./kernel.ts";
import { runParts, SLOT_WORDS, STATE } from "./pool_protocol.ts";

export { KERNEL } from "./pool_protocol.ts";

const IDLE_MS = 1000;
/** Milliseconds the main thread polls for a worker's end of a kernel before it sleeps on it. */
const SPIN_MS = 1;

interface Slot {
  /** Byte address of the slot's words. */
  addr: number;
  /** The worker's matmul packing scratch. */
  scratch: PackScratch;
  worker: Worker | null;
}

function defaultThreads(): number {
  let n = 1;
  try {
    n = navigator.hardwareConcurrency || 1;
  } catch { /* no navigator */ }
  try {
    // deno-lint-ignore no-explicit-any
    const D = (globalThis as any).Deno;
    if (D && D.permissions.querySync({ name: "env", variable: "KNOT_CPU_THREADS" }).state === "granted") {
      const v = D.env.get("KNOT_CPU_THREADS");
      if (v !== undefined) {
        const t = Number(v);
        if (!Number.isInteger(t) || t < 1) {
          throw new Error(`KNOT_CPU_THREADS: expected a positive integer, got "${v}"`);
        }
        n = t;
      }
    }
  } catch (e) {
    if (e instanceof Error && e.message.startsWith("KNOT_CPU_THREADS")) throw e;
  }
  return n;
}

let threads: number | undefined;

/** Threads the cpu engine uses (main thread included): set by {@link setCpuThreads}, else KNOT_CPU_THREADS, else navigator.hardwareConcurrency. */
export function cpuThreads(): number {
  return threads ??= defaultThreads();
}

/** Sets the number of threads of the cpu engine (1 = main thread only). Results do not depend on it. */
export function setCpuThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setCpuThreads: expected a positive integer, got ${n}`);
  threads = n;
}

let mainCanWait: boolean | undefined;

/** The pool of one engine (its heap must be shared). */
export class Pool {
  readonly #e: Engine;
  readonly #slots: Slot[] = [];
  #words: Int32Array;

  constructor(e: Engine) {
    this.#e = e;
    this.#words = new Int32Array(e.heap.memory.buffer);
  }

  #view(): Int32Array {
    const buf = this.#e.heap.memory.buffer;
    if (this.#words.buffer !== buf) this.#words = new Int32Array(buf);
    return this.#words;
  }

  /** Adds slots up to `n` workers and starts any worker that is not running. */
  #start(n: number): void {
    const h = this.#e.heap;
    while (this.#slots.length < n) {
      const addr = h.alloc(SLOT_WORDS * 4);
      if (addr < 0) return;
      this.#slots.push({ addr, scratch: { ptr: -1, bytes: 0 }, worker: null });
      this.#view()[addr >>> 2] = STATE.closed;
    }
    for (let i = 0; i < n; i++) {
      const s = this.#slots[i];
      if (Atomics.load(this.#view(), s.addr >>> 2) !== STATE.closed) continue;
      Atomics.store(this.#view(), s.addr >>> 2, STATE.starting);
      try {
        const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
        w.postMessage({ variant: this.#e.variant, memory: h.memory, slot: s.addr, idleMs: IDLE_MS });
        s.worker = w;
      } catch {
        Atomics.store(this.#view(), s.addr >>> 2, STATE.closed);
        return; // no module workers here: stay single-threaded
      }
    }
  }

  /** Resolves when the workers for `cpuThreads()` are running (tests and benchmarks; kernels never wait). */
  async ready(timeoutMs = 30000): Promise<number> {
    const want = cpuThreads() - 1;
    this.#start(want);
    const t0 = performance.now();
    while (performance.now() - t0 < timeoutMs) {
      const n = this.#slots.slice(0, want).filter((s) => {
        const st = Atomics.load(this.#view(), s.addr >>> 2);
        return st === STATE.idle;
      }).length;
      if (n === want) return n;
      this.#start(want);
      await new Promise((r) => setTimeout(r, 5));
    }
    return 0;
  }

  /** Claims up to `cpuThreads() − 1` idle workers for one kernel; returns their slots (possibly none). */
  #claim(): Slot[] {
    const want = cpuThreads() - 1;
    if (want <= 0) return [];
    const words = this.#view(), got: Slot[] = [];
    for (let i = 0; i < want && i < this.#slots.length; i++) {
      const s = this.#slots[i];
      if (Atomics.compareExchange(words, s.addr >>> 2, STATE.idle, STATE.claimed) === STATE.idle) got.push(s);
    }
    if (got.length < want) this.#start(want); // a worker missing or closed: (re)start it for later kernels
    return got;
  }

  /** Kernels workers took part in so far (tests check that splitting happened). */
  workerJobs = 0;
  /** Fork-joins so far (tests count them: compile merges independent split kernels into one). */
  runs = 0;

  /**
   * Runs every part of `table` (`total` parts of PART_WORDS words at byte address `table`, counter at
   * `counter`, already zero) on this thread and on the idle workers, each thread taking the next part
   * until none is left; returns when all are done. Matmul parts need `scratchBytes` of packing scratch
   * per thread; a worker whose scratch cannot grow stays out.
   */
  run(kernel: number, table: number, total: number, counter: number, scratchBytes: number, main: number): void {
    this.runs++;
    const slots = this.#claim().filter((s) => {
      if (scratchBytes === 0 || ensureScratch(this.#e, s.scratch, scratchBytes)) return true;
      Atomics.store(this.#view(), s.addr >>> 2, STATE.idle);
      return false;
    });
    let words = this.#view();
    for (const s of slots) {
      const w = s.addr >>> 2;
      words[w + 1] = kernel;
      // The memory's size in 64 KiB pages: a worker makes sure its view of the memory covers it (worker.ts).
      words[w + 2] = table, words[w + 3] = total, words[w + 4] = counter, words[w + 5] = s.scratch.ptr;
      words[w + 6] = words.byteLength >>> 16;
      Atomics.store(words, w, STATE.run);
      Atomics.notify(words, w);
    }
    let failed = false;
    try {
      runParts(this.#e.x, kernel, words, table, total, counter, main);
    } finally {
      // Wait for every worker even if this thread's part trapped: their slots must return to idle.
      words = this.#view();
      const t0 = performance.now();
      for (const s of slots) {
        const w = s.addr >>> 2;
        // A worker that has not taken the kernel yet (not woken, or not scheduled: a busy machine) is told not
        // to: every part ran here, so there is nothing to wait for.
        if (Atomics.compareExchange(words, w, STATE.run, STATE.idle) === STATE.run) continue;
        this.workerJobs++;
        for (let polls = 1;; polls++) {
          const st = Atomics.load(words, w);
          if (st === STATE.failed) failed = true;
          if (st === STATE.done || st === STATE.failed) break;
          // A worker's last part usually ends within microseconds of ours: poll before sleeping (the clock
          // every 64 polls).
          if (polls & 63 || performance.now() - t0 < SPIN_MS) continue;
          if (mainCanWait !== false) {
            try {
              Atomics.wait(words, w, st, 50);
              mainCanWait = true;
            } catch {
              mainCanWait = false; // a browser main thread: spin
            }
          }
        }
        Atomics.store(words, w, STATE.idle);
        Atomics.notify(words, w);
      }
    }
    if (failed) throw new Error(`cpu engine: kernel ${kernel} failed in a worker (see its message above)`);
  }
}

/** Splits [0, n) into `parts` contiguous ranges whose starts are multiples of `align` (some may be empty). */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const step = Math.ceil(n / parts / align) * align;
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) out.push([Math.min(n, p * step), Math.min(n, (p + 1) * step)]);
  return out;
}

const pools = new Map<Engine, Pool>();

/** The pool of engine `e`, or null where it cannot have one (memory not shared, or one thread asked for). */
export function poolFor(e: Engine): Pool | null {
  if (!e.shared || cpuThreads() <= 1) return null;
  let p = pools.get(e);
  if (!p) {
    // Both builds of a process share one heap; their workers run the build the pool was made for.
    p = new Pool(e);
    pools.set(e, p);
  }
  return p;
}

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
import { runParts, SLOT, SLOT_WORDS, STATE } from "./pool_protocol.ts";

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

/** Whether this thread may sleep in Atomics.wait (a browser's main thread may not: it spins instead). */
function canWait(): boolean {
  try {
    mainCanWait ??= Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0) === "not-equal"; // at once
  } catch {
    mainCanWait = false;
  }
  return mainCanWait;
}

/**
 * Words of an engine's fork descriptor (program.as.ts reads it in its fork-joins): the slots it may claim, whether
 * this thread may sleep (Atomics.wait: not a browser's main thread), its fork-joins and worker jobs so far, then
 * the slots' byte addresses.
 */
const DESC = { slots: 0, canWait: 1, runs: 2, jobs: 3, slot0: 4 } as const;
const DESC_MAX_SLOTS = 32;
const descriptors = new Map<Engine, number>();

/**
 * The byte address of engine `e`'s fork descriptor (allocated once: compiled programs' fork records point at it),
 * or -1 where the heap has no room. It claims no slot until a pool publishes its slots into it.
 */
export function forkDescriptor(e: Engine): number {
  let d = descriptors.get(e);
  if (d === undefined) {
    d = e.heap.alloc((DESC.slot0 + DESC_MAX_SLOTS) * 4);
    if (d < 0) return -1;
    e.heap.i32.fill(0, d >>> 2, (d >>> 2) + DESC.slot0 + DESC_MAX_SLOTS);
    descriptors.set(e, d);
  }
  return d;
}

/**
 * Readies engine `e`'s fork descriptor for a compiled program's run whose fork-joins need `scratchBytes` of
 * scratch per thread: its pool's workers (started where missing), or none (one thread, no shared memory).
 */
export function prepareForks(e: Engine, scratchBytes: number): void {
  const d = forkDescriptor(e);
  if (d < 0) return;
  const pool = poolFor(e);
  if (pool) pool.publish(d, scratchBytes);
  else e.heap.i32[(d >>> 2) + DESC.slots] = 0;
}

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
      this.#view().fill(0, addr >>> 2, (addr >>> 2) + SLOT_WORDS);
      this.#view()[(addr >>> 2) + SLOT.ownScratch] = -1;
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

  /** Makes slot `s`'s own scratch at least `bytes` (its block and size in the slot's words); false: no room. */
  #scratch(s: Slot, bytes: number): boolean {
    if (bytes === 0 || s.scratch.bytes >= bytes) return true;
    const ok = ensureScratch(this.#e, s.scratch, bytes), w = s.addr >>> 2, words = this.#view();
    words[w + SLOT.ownScratch] = s.scratch.ptr;
    Atomics.store(words, w + SLOT.ownScratchBytes, s.scratch.bytes);
    return ok;
  }

  /**
   * Writes the slots of the first `cpuThreads() − 1` workers into the fork descriptor at `d` (see
   * forkDescriptor), their scratch grown to `scratchBytes`, and starts any that is missing (it joins later runs).
   */
  publish(d: number, scratchBytes: number): void {
    const want = Math.min(cpuThreads() - 1, DESC_MAX_SLOTS);
    const words = this.#view(), w = d >>> 2;
    let missing = this.#slots.length < want;
    for (let i = 0; i < want && i < this.#slots.length; i++) {
      const s = this.#slots[i];
      if (Atomics.load(words, s.addr >>> 2) === STATE.closed) missing = true;
      this.#scratch(s, scratchBytes);
    }
    if (missing) this.#start(want);
    const n = Math.min(want, this.#slots.length), view = this.#view();
    for (let i = 0; i < n; i++) view[w + DESC.slot0 + i] = this.#slots[i].addr;
    view[w + DESC.canWait] = canWait() ? 1 : 0;
    Atomics.store(view, w + DESC.slots, n);
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

  #jobs = 0;
  #runs = 0;

  /** See settleForks. */
  settle(): void {
    const words = this.#view();
    for (const s of this.#slots) {
      const w = s.addr >>> 2;
      for (;;) {
        const st = Atomics.load(words, w);
        if (st === STATE.run && Atomics.compareExchange(words, w, STATE.run, STATE.idle) !== STATE.run) continue;
        if (st === STATE.taken) continue; // a part still running: it ends (or fails) shortly
        if (st === STATE.claimed || st === STATE.done || st === STATE.failed) Atomics.store(words, w, STATE.idle);
        break;
      }
      if (Atomics.load(words, w + SLOT.workerSleeps)) Atomics.notify(words, w);
    }
  }

  /** Kernels workers took part in so far (tests check that splitting happened), compiled programs' included. */
  get workerJobs(): number {
    return this.#jobs + this.#descWord(DESC.jobs);
  }

  /** Fork-joins so far (tests count them: compile merges independent split kernels into one). */
  get runs(): number {
    return this.#runs + this.#descWord(DESC.runs);
  }

  #descWord(k: number): number {
    const d = descriptors.get(this.#e);
    return d === undefined ? 0 : Atomics.load(this.#view(), (d >>> 2) + k);
  }

  /**
   * Runs every part of `table` (`total` parts of PART_WORDS words at byte address `table`, counter at
   * `counter`, already zero) on this thread and on the idle workers, each thread taking the next part
   * until none is left; returns when all are done. Matmul parts need `scratchBytes` of packing scratch
   * per thread; a worker whose scratch cannot grow stays out.
   */
  run(kernel: number, table: number, total: number, counter: number, scratchBytes: number, main: number): void {
    this.#runs++;
    const slots = this.#claim().filter((s) => {
      if (this.#scratch(s, scratchBytes)) return true;
      Atomics.store(this.#view(), s.addr >>> 2, STATE.idle);
      return false;
    });
    let words = this.#view();
    for (const s of slots) {
      const w = s.addr >>> 2;
      words[w + SLOT.kernel] = kernel;
      // The memory's size in 64 KiB pages: a worker makes sure its view of the memory covers it (worker.ts).
      words[w + SLOT.table] = table, words[w + SLOT.parts] = total, words[w + SLOT.counter] = counter;
      words[w + SLOT.scratch] = s.scratch.ptr, words[w + SLOT.pages] = words.byteLength >>> 16;
      Atomics.store(words, w, STATE.run);
      if (Atomics.load(words, w + SLOT.workerSleeps)) Atomics.notify(words, w);
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
        this.#jobs++;
        for (let polls = 1;; polls++) {
          const st = Atomics.load(words, w);
          if (st === STATE.failed) failed = true;
          if (st === STATE.done || st === STATE.failed) break;
          // A worker's last part usually ends within microseconds of ours: poll before sleeping (the clock
          // every 64 polls).
          if (polls & 63 || performance.now() - t0 < SPIN_MS) continue;
          if (mainCanWait !== false) {
            Atomics.store(words, w + SLOT.mainSleeps, 1);
            try {
              Atomics.wait(words, w, st, 50);
              mainCanWait = true;
            } catch {
              mainCanWait = false; // a browser main thread: spin
            }
            Atomics.store(words, w + SLOT.mainSleeps, 0);
          }
        }
        Atomics.store(words, w, STATE.idle);
        if (Atomics.load(words, w + SLOT.workerSleeps)) Atomics.notify(words, w);
      }
    }
    if (failed) throw new Error(`cpu engine: kernel ${kernel} failed in a worker (see its message above)`);
  }
}

/**
 * After a trap in the module's loop on this thread (a fork-join left half-way): waits for every worker still
 * running a part and returns every slot it had claimed to idle, so later kernels can claim them again.
 */
export function settleForks(e: Engine): void {
  pools.get(e)?.settle();
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

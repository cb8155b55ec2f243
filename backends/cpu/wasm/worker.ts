// A worker of the CPU engine's pool (pool.ts): instantiates the engine module on the shared memory, then
// runs the kernel calls posted in its slot of the control block until it has been idle a while, when it
// closes itself (so a finished program exits; the pool starts it again on demand).
//
// Slot layout (int32 words at `slot`): [0] state, [1] kernel, [2..] arguments. States: see pool.ts.

import { ENGINE_WASM_FMA_SHARED_BASE64, ENGINE_WASM_SIMD_SHARED_BASE64 } from "./engine_wasm.ts";
import type { EngineExports } from "./engine.ts";
import { PART_WORDS, runParts, setBlasSource, SLOT, STATE } from "./pool_protocol.ts";
import { blasFor } from "./blas.ts";

interface Init {
  variant: "simd" | "fma";
  memory: WebAssembly.Memory;
  /** Byte address of this worker's slot. */
  slot: number;
  /** Milliseconds without work after which the worker closes. */
  idleMs: number;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A view of the shared memory no longer than what this thread's module instance checks bounds against. The
 * buffer may already show a growth the instance has not taken in yet (V8 updates it on an interrupt, which a
 * worker polling inside the module does not take): `grow(0)` after reading the buffer brings this thread's
 * instance up to at least the buffer's length (and re-announces the real size to every thread).
 */
function syncedView(memory: WebAssembly.Memory): Int32Array {
  const buffer = memory.buffer;
  memory.grow(0);
  return new Int32Array(buffer);
}

/**
 * A synced view at least `end` bytes long. A worker whose Memory object was still in its start message when the
 * main thread grew the memory keeps the old length until `grow(0)` (seen: a worker slow to start, its module still
 * being type-checked, saw 1 MiB of a 3.4 MiB memory for good); a short wait covers a growth still being announced.
 */
function coveringView(memory: WebAssembly.Memory, end: number): Int32Array {
  const t0 = performance.now();
  for (;;) {
    const view = syncedView(memory);
    if (view.byteLength >= end) return view;
    if (performance.now() - t0 > 5000) {
      throw new Error(`the memory never grew to ${end} bytes here (${view.byteLength})`);
    }
  }
}

/** Polls of its slot without work (~1–3 ms) after which a worker sleeps on it. */
const SERVE_POLLS = 1 << 20;

/** Prints a failed kernel's error with the slot's job. */
function report(e: unknown, words: Int32Array, s: number, memory: WebAssembly.Memory): void {
  const at = `kernel ${words[s + SLOT.kernel]}, table ${words[s + SLOT.table] >>> 0}, parts ${words[s + SLOT.parts]}`;
  console.error(`knot cpu engine worker: ${e} (${at}; view ${words.byteLength} of ${memory.buffer.byteLength} bytes)`);
}

/** The worker side of `Worker`: a message handler and close(). */
const scope = self as unknown as { onmessage: (ev: MessageEvent<Init>) => void; close(): void };

scope.onmessage = (ev) => {
  const { variant, memory, slot, idleMs } = ev.data;
  const bytes = decodeBase64(variant === "fma" ? ENGINE_WASM_FMA_SHARED_BASE64 : ENGINE_WASM_SIMD_SHARED_BASE64);
  const x = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
    .exports as unknown as EngineExports;
  setBlasSource(() => blasFor(memory)); // the BLAS kernels' library, loaded here on the first one
  // Shared: never detached; a new view after the memory grew. Its length is the memory the module may be given
  // work over without renewing it (serve's `pages`).
  let words = syncedView(memory);
  const s = slot >> 2;
  Atomics.store(words, s, STATE.idle);
  Atomics.notify(words, s);
  let idleSince = performance.now();
  while (true) {
    // Poll a while before sleeping: a futex wake-up costs tens of microseconds or more, and kernels of a decode
    // step come that often (OpenMP's spin-then-sleep wait policy). The module polls and runs its own kernels
    // without returning here; it returns after SERVE_POLLS polls without work, or with a kernel it took for
    // JavaScript to run (-1).
    let jobs = 0;
    try {
      jobs = x.serve(slot, SERVE_POLLS, words.byteLength >>> 16);
    } catch (e) {
      report(e, words, s, memory);
      Atomics.store(words, s, STATE.failed); // the main thread throws rather than wait forever
      if (Atomics.load(words, s + SLOT.mainSleeps)) Atomics.notify(words, s);
      jobs = 1;
    }
    if (jobs === -1) {
      // A BLAS kernel (FFI is JavaScript's), or memory grown past this thread's view.
      const table = words[s + SLOT.table] >>> 0, parts = words[s + SLOT.parts], counter = words[s + SLOT.counter] >>> 0;
      let state: number = STATE.done;
      try {
        // The view (and the module instance) must cover the part table, the counter (Atomics on it) and the
        // whole memory as the main thread sees it (in 64 KiB pages): kernels may touch it anywhere.
        const end = Math.max(table + parts * PART_WORDS * 4, counter + 4, words[s + SLOT.pages] * 65536);
        if (end > words.byteLength) words = coveringView(memory, end);
        runParts(x, words[s + SLOT.kernel], words, table, parts, counter, words[s + SLOT.scratch] >>> 0);
      } catch (e) {
        report(e, words, s, memory);
        state = STATE.failed; // the main thread throws rather than wait forever
      }
      Atomics.store(words, s, state);
      if (Atomics.load(words, s + SLOT.mainSleeps)) Atomics.notify(words, s);
    }
    if (jobs !== 0) {
      idleSince = performance.now();
      continue;
    }
    const state = Atomics.load(words, s);
    if (state === STATE.run) continue;
    if (state === STATE.idle && performance.now() - idleSince > idleMs) {
      // Close unless the main thread claimed this slot in the meantime.
      if (Atomics.compareExchange(words, s, STATE.idle, STATE.closed) === STATE.idle) break;
      continue;
    }
    Atomics.store(words, s + SLOT.workerSleeps, 1); // the main thread wakes a sleeping worker (and only one)
    Atomics.wait(words, s, state, idleMs);
    Atomics.store(words, s + SLOT.workerSleeps, 0);
  }
  scope.close();
};

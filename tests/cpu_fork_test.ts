// Fork-joins inside the engine's instruction loop (program.as.ts FORK records, compiled programs): the parts of a
// split kernel run on this thread and on idle workers (which poll and run them in the module, worker.ts), and
// a failure on either side leaves the pool usable.
import assert from "node:assert/strict";
import { onThreads, untilWorkerJob } from "./util/threads.ts";
import { engine } from "../backends/cpu/wasm/engine.ts";
import { mainScratch } from "../backends/cpu/wasm/kernel.ts";
import { forkDescriptor, prepareForks, settleForks } from "../backends/cpu/wasm/pool.ts";
import { FORK_RECORD, KERNEL, PART_WORDS } from "../backends/cpu/wasm/pool_protocol.ts";

const e = engine();
const threaded = e !== null && e.shared && navigator.hardwareConcurrency >= 2;

/**
 * One fork record over gemv parts of `rows` rows each (x [K], W [parts·rows, K], out [parts·rows]); the parts
 * listed in `bad` read W from an address past the memory, so whoever runs them traps. W at `wAt` if given.
 */
function forkProgram(parts: number, rows: number, K: number, bad: number[], wAt = -1) {
  const heap = e!.heap;
  const x = heap.alloc(K * 4), w = wAt >= 0 ? wAt : heap.alloc(parts * rows * K * 4);
  const out = heap.alloc(parts * rows * 4);
  const counter = heap.alloc(64 + parts * PART_WORDS * 4), table = counter + 64, rec = heap.alloc(64);
  heap.f32.fill(0.5, x >>> 2, (x >>> 2) + K);
  for (let i = 0; i < parts * rows * K; i++) heap.f32[(w >>> 2) + i] = ((i * 7) % 13) / 13;
  for (let p = 0; p < parts; p++) {
    const wp = bad.includes(p) ? 0x7fff0000 : w + p * rows * K * 4;
    heap.i32.set([x, wp, out + p * rows * 4, K, rows, K, 1], (table >>> 2) + p * PART_WORDS);
  }
  heap.i32.set([FORK_RECORD, KERNEL.gemv, table, parts, counter, forkDescriptor(e!), 0], rec >>> 2);
  const run = () => {
    prepareForks(e!, 0);
    return e!.x.runCalls(rec, 1, mainScratch.ptr);
  };
  const result = () => heap.f32.slice(out >>> 2, (out >>> 2) + parts * rows);
  const free = () => {
    for (const [p, b] of [[x, K * 4], [w, parts * rows * K * 4], [out, parts * rows * 4], [rec, 64]]) {
      heap.release(p, b);
    }
    heap.release(counter, 64 + parts * PART_WORDS * 4);
  };
  return { run, result, free };
}

Deno.test({
  name: "fork records: parts run on the worker too, with the bits of one thread",
  ignore: !threaded,
  async fn() {
    let want: Float32Array | null = null;
    await onThreads([1, 2], (threads) => {
      const f = forkProgram(16, 64, 256, []), run = () => assert.equal(f.run(), 0);
      if (threads === 1) run();
      else assert.ok(untilWorkerJob(run), "no part ran on the worker");
      want ??= f.result();
      assert.deepEqual(new Uint32Array(f.result().buffer), new Uint32Array(want.buffer), `${threads} threads`);
      f.free();
    });
  },
});

Deno.test({
  // (The worker prints its trap: "knot cpu engine worker: RuntimeError: memory access out of bounds (kernel 7, …)".)
  name:
    "fork records: a part trapping in the worker fails the run (1 + the record); one trapping here settles the slots",
  ignore: !threaded,
  async fn() {
    await onThreads([2], () => {
      // Part 0 is long and fine, part 1 traps: the worker usually takes part 1 while this thread runs part 0.
      const f = forkProgram(2, 4096, 256, [1]);
      let workerFailed = 0, trappedHere = 0;
      for (const t0 = performance.now(); workerFailed === 0 && performance.now() - t0 < 3000;) { // by time: see untilWorkerJob
        try {
          assert.equal(f.run(), 1, "the failed record, 1-based");
          workerFailed++;
        } catch (err) {
          assert.ok(err instanceof WebAssembly.RuntimeError, `a trap here: ${err}`);
          settleForks(e!);
        }
      }
      f.free();
      assert.ok(workerFailed > 0, "a part never failed in the worker");
      // One part that traps: this thread takes it first (almost always), traps mid fork-join, and settles.
      const g = forkProgram(1, 16, 256, [0]);
      for (let r = 0; r < 20 && trappedHere === 0; r++) {
        try {
          assert.equal(g.run(), 1);
        } catch (err) {
          assert.ok(err instanceof WebAssembly.RuntimeError, `a trap here: ${err}`);
          settleForks(e!);
          trappedHere++;
        }
      }
      g.free();
      assert.ok(trappedHere > 0, "the part never trapped on this thread");
      // After either failure the worker is claimed again by the next fork, with the right bits.
      const ok = forkProgram(16, 64, 256, []);
      assert.ok(untilWorkerJob(() => assert.equal(ok.run(), 0)), "the worker never ran a part again");
      ok.free();
    });
  },
});

Deno.test({
  name: "fork records: a worker runs parts over memory grown after it started (it renews its view first)",
  ignore: !threaded,
  async fn() {
    await onThreads([2], () => {
      const pool = forkProgram(16, 64, 256, []);
      for (let r = 0; r < 50; r++) assert.equal(pool.run(), 0); // the worker busy polling in the module
      const heap = e!.heap, before = heap.memory.buffer.byteLength, big = 64 * 2 ** 20, block = heap.alloc(big);
      assert.ok(block >= 0 && heap.memory.buffer.byteLength > before, "the memory grew");
      const wBytes = 16 * 64 * 256 * 4, far = forkProgram(16, 64, 256, [], block + big - wBytes); // W past the old end
      assert.ok(untilWorkerJob(() => assert.equal(far.run(), 0)), "no part ran on the worker");
      far.free(), pool.free(), heap.release(block, big);
    });
  },
});

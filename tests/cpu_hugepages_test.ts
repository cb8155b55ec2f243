// The engine's memory asks for transparent huge pages (backends/cpu/wasm/hugepages.ts): where the kernel offers
// them on request, a filled block of it is backed by 2 MiB pages; KNOT_HUGEPAGES=0 asks for nothing.
import assert from "node:assert/strict";
import { adviseHugePages } from "../backends/cpu/wasm/hugepages.ts";

/** Whether this kernel backs ranges that ask with huge pages (THP "always" or "madvise"). */
function offered(): boolean {
  try {
    return /\[(always|madvise)\]/.test(Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled"));
  } catch {
    return false;
  }
}

/**
 * kB of huge pages backing the mapping that holds `memory`'s buffer (from /proc/self/smaps): that range alone, as
 * the process's total moves with whatever else it frees or grows meanwhile (a garbage-collected heap of another
 * test gave back 18 MiB of huge pages between two reads once).
 */
function anonHugeOf(memory: WebAssembly.Memory): number {
  const at = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(memory.buffer))));
  const lines = Deno.readTextFileSync("/proc/self/smaps").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(lines[i]);
    if (!range || at < BigInt("0x" + range[1]) || at >= BigInt("0x" + range[2])) continue;
    for (let j = i + 1; j < lines.length && !/^[0-9a-f]+-[0-9a-f]+ /.test(lines[j]); j++) {
      const kb = /^AnonHugePages:\s+(\d+) kB/.exec(lines[j]);
      if (kb) return Number(kb[1]);
    }
  }
  throw new Error("no mapping in /proc/self/smaps holds the memory's buffer");
}

Deno.test({
  name: "huge pages: an advised memory's filled block is backed by 2 MiB pages; KNOT_HUGEPAGES=0 advises nothing",
  ignore: Deno.build.os !== "linux" || !offered(),
  fn() {
    const saved = Deno.env.get("KNOT_HUGEPAGES");
    try {
      Deno.env.set("KNOT_HUGEPAGES", "0");
      assert.equal(
        adviseHugePages(new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true }), 16 * 65536),
        false,
      );
      Deno.env.delete("KNOT_HUGEPAGES");
      const pages = 1024, m = new WebAssembly.Memory({ initial: 1, maximum: pages, shared: true });
      assert.equal(adviseHugePages(m, pages * 65536), true);
      m.grow(pages - 1);
      new Uint8Array(m.buffer).fill(1);
      const kb = anonHugeOf(m);
      assert.ok(kb >= 2048, `the memory's mapping holds ${kb} kB of huge pages after filling 64 MiB`);
    } finally {
      if (saved === undefined) Deno.env.delete("KNOT_HUGEPAGES");
      else Deno.env.set("KNOT_HUGEPAGES", saved);
    }
  },
});

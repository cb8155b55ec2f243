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

const anonHuge = () => Number(/AnonHugePages:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/smaps_rollup"))![1]);

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
      const before = anonHuge();
      m.grow(pages - 1);
      new Uint8Array(m.buffer).fill(1);
      assert.ok(anonHuge() - before >= 2048, `AnonHugePages grew by ${anonHuge() - before} kB after filling 64 MiB`);
    } finally {
      if (saved === undefined) Deno.env.delete("KNOT_HUGEPAGES");
      else Deno.env.set("KNOT_HUGEPAGES", saved);
    }
  },
});

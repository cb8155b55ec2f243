// Transparent huge pages for the engine's memory (Linux, Deno with FFI allowed): madvise(MADV_HUGEPAGE) over the
// memory's whole reserved range before it holds data, so the kernel backs it with 2 MiB pages where it can (THP
// in "madvise" mode, the usual default, applies only to ranges asked for). Decode streams every weight once a
// token: 4 KiB pages cost a TLB miss per page. KNOT_HUGEPAGES=0 turns it off. PyTorch's CPU allocator asks the
// same for large tensors.

// deno-lint-ignore no-explicit-any
const D = (globalThis as any).Deno;
const MADV_HUGEPAGE = 14;

/** Whether `name` is granted without prompting. */
function granted(desc: { name: string; variable?: string }): boolean {
  try {
    return D.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Asks for huge pages over `bytes` from the start of `memory`'s buffer (its reservation: a shared memory reserves
 * its maximum). Returns whether the kernel took the advice; false where it cannot be asked (not Linux, no FFI).
 */
export function adviseHugePages(memory: WebAssembly.Memory, bytes: number): boolean {
  if (D?.build?.os !== "linux" || !D.dlopen || !granted({ name: "ffi" })) return false;
  if (!granted({ name: "env", variable: "KNOT_HUGEPAGES" }) || D.env.get("KNOT_HUGEPAGES") === "0") return false;
  try {
    const libc = D.dlopen("libc.so.6", { madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" } });
    try {
      const at = D.UnsafePointer.of(new Uint8Array(memory.buffer));
      return libc.symbols.madvise(at, BigInt(bytes), MADV_HUGEPAGE) === 0;
    } finally {
      libc.close();
    }
  } catch {
    return false;
  }
}

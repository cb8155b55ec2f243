// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// The instruction loop of a compiled program (backends/cpu/compile.ts): runs a run of prepared kernel calls
// without returning to JavaScript between them. Part of the module built by build.ts (entry: engine.as.ts).
import { matmul } from "./matmul.as";
import { binaryF32, binaryI32, castData, randomF32, reduceF32, strided32, unaryF32, where32 } from "./elementwise.as";
import { gemv, gemvBatch } from "./vector.as";
import { attendRows, rmsNormRows, ropeRows } from "./composite.as";
import { copyRows, fillData } from "./data.as";
import { fusedF32 } from "./fused.as";

// @ts-ignore: decorator
@inline function arg(rec: usize, k: i32): i32 {
  return load<i32>(rec + (<usize>(k + 1) << 2));
}

/**
 * Runs `n` calls: records of 16 i32 words, a kernel id (pool_protocol.ts's KERNEL) then its arguments as
 * the pool passes them (matmul's packing buffers, random's 32 bytes, the fused kernel's chunks and the composites' rows as offsets into `scratch`).
 */
export function runCalls(rec: usize, n: i32, scratch: usize): void {
  const s = <i32>scratch;
  for (let i = 0; i < n; i++, rec += 64) {
    switch (load<i32>(rec)) {
      case 1:
        matmul(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3) + s, arg(rec, 4) + s, arg(rec, 5) + s, arg(rec, 6),
          arg(rec, 7), arg(rec, 8), arg(rec, 9), arg(rec, 10), arg(rec, 11), arg(rec, 12), arg(rec, 13));
        break;
      case 2: binaryF32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      case 3: where32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      case 4: strided32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3)); break;
      case 5: unaryF32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3)); break;
      case 6: reduceF32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      case 7: gemv(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5), arg(rec, 6)); break;
      case 8: randomF32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5), arg(rec, 6) + s); break;
      case 9:
        gemvBatch(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5), arg(rec, 6), arg(rec, 7), arg(rec, 8));
        break;
      case 10: copyRows(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      case 11: binaryI32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      case 12: castData(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4)); break;
      case 13: fillData(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3)); break;
      case 14: fusedF32(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4) + s); break;
      case 17:
        attendRows(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5), arg(rec, 6), arg(rec, 7),
          arg(rec, 8), arg(rec, 9), arg(rec, 10), arg(rec, 11) + s);
        break;
      case 18:
        rmsNormRows(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5), arg(rec, 6), arg(rec, 7) + s);
        break;
      case 19: ropeRows(arg(rec, 0), arg(rec, 1), arg(rec, 2), arg(rec, 3), arg(rec, 4), arg(rec, 5)); break;
      default: unreachable();
    }
  }
}

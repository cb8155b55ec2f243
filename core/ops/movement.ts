/**
 * Movement ops: reshape, permute/transpose, slice, pad, broadcastTo, concat,
 * stack, split, expandDims, squeeze and take (embedding lookup). Reshape
 * shares the buffer; the others copy through one strided kernel, so a backend
 * implements few kernels. Each records its primitive (core/primitives.ts);
 * the vjp rules are in autodiff/vjp_rules.ts.
 * @module
 */
import {
  broadcastShapes,
  broadcastStrides,
  checkShape,
  fmt,
  normAxis,
  sameShape,
  type Shape,
  sizeOf,
  stridesOf,
} from "../shape.ts";
import { record } from "../tape.ts";
import { alias, type Tensor } from "../tensor.ts";
import { backendOf, checkAlloc, expectTensor, wrap } from "./_util.ts";

/** A new view with `shape` (one entry may be -1, inferred). Shares the buffer. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  expectTensor("reshape", x);
  const target = [...shape];
  const unknown = target.indexOf(-1);
  if (unknown >= 0) {
    const rest = sizeOf(target.filter((_, i) => i !== unknown));
    if (target.lastIndexOf(-1) !== unknown || rest === 0 || x.size % rest !== 0) {
      throw new Error(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
    }
    target[unknown] = x.size / rest;
  }
  checkShape("reshape", target);
  if (sizeOf(target) !== x.size) {
    throw new Error(
      `reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${sizeOf(target)} elements)`,
    );
  }
  const out = alias(x, target);
  record("reshape", { shape: target }, [x], out);
  return out;
}

/** A bit-exact copy of `x` in a new buffer (so it survives the original's disposal). */
export function copy(x: Tensor): Tensor {
  expectTensor("copy", x);
  const out = wrap(x.backend, x.backend.strided(x.buffer, x.shape, stridesOf(x.shape), 0), x.shape, x.dtype);
  record("copy", {}, [x], out);
  return out;
}

/** Reorders axes: output axis i is input axis `axes[i]`. */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  expectTensor("permute", x);
  const ax = axes.map((a) => normAxis("permute", a, x.rank, x.shape));
  if (ax.length !== x.rank || new Set(ax).size !== ax.length) {
    throw new Error(
      `permute: axes ${JSON.stringify(axes)} are not a permutation of the ${x.rank} axes of ${fmt(x.shape)}`,
    );
  }
  if (ax.every((a, i) => a === i)) return alias(x);
  const st = stridesOf(x.shape);
  const outShape = ax.map((a) => x.shape[a]);
  const out = wrap(x.backend, x.backend.strided(x.buffer, outShape, ax.map((a) => st[a]), 0), outShape, x.dtype);
  record("permute", { axes: ax }, [x], out);
  return out;
}

/** Transpose: reverses the axes, or applies the permutation `axes` if given. */
export function transpose(x: Tensor, axes?: readonly number[]): Tensor {
  expectTensor("transpose", x);
  return permute(x, axes ?? x.shape.map((_, i) => x.rank - 1 - i));
}

/**
 * The sub-tensor `x[start[0]:end[0], start[1]:end[1], …]`. Missing trailing
 * entries take the whole axis; negative indices count from the end.
 */
export function slice(x: Tensor, start: readonly number[], end?: readonly (number | undefined)[]): Tensor {
  expectTensor("slice", x);
  if (start.length > x.rank || (end && end.length > x.rank)) {
    throw new Error(`slice: ${Math.max(start.length, end?.length ?? 0)} indices given for shape ${fmt(x.shape)}`);
  }
  const begin: number[] = [], size: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const d = x.shape[i];
    let s = start[i] ?? 0;
    let e = end?.[i] ?? d;
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > d || s > e) {
      throw new Error(
        `slice: range ${start[i] ?? 0}:${end?.[i] ?? d} is out of bounds for axis ${i} of shape ${fmt(x.shape)}`,
      );
    }
    begin.push(s);
    size.push(e - s);
  }
  if (sameShape(size, x.shape)) return alias(x);
  const st = stridesOf(x.shape);
  const offset = begin.reduce((acc, b, i) => acc + b * st[i], 0);
  const out = wrap(x.backend, x.backend.strided(x.buffer, size, st, offset), size, x.dtype);
  record("slice", { begin, size }, [x], out);
  return out;
}

/** Pads each axis with `widths[i] = [before, after]` copies of `value` (default 0). */
export function pad(x: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  expectTensor("pad", x);
  if (
    widths.length !== x.rank || widths.some(([b, a]) => !Number.isInteger(b) || !Number.isInteger(a) || b < 0 || a < 0)
  ) {
    throw new Error(
      `pad: widths ${JSON.stringify(widths)} must give [before, after] >= 0 for each of the ${x.rank} axes of ${
        fmt(x.shape)
      }`,
    );
  }
  const before = widths.map((w) => w[0]), after = widths.map((w) => w[1]);
  const outShape = x.shape.map((d, i) => d + before[i] + after[i]);
  checkAlloc("pad", x.backend, outShape, x.dtype);
  const out = wrap(x.backend, x.backend.pad(x.buffer, x.shape, before, after, value), outShape, x.dtype);
  record("pad", { before, after, value }, [x], out);
  return out;
}

/** Broadcasts `x` to `shape` (NumPy rules), materialising the copy. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  expectTensor("broadcastTo", x);
  const target = broadcastShapes("broadcastTo", x.shape, shape);
  if (!sameShape(target, shape)) {
    throw new Error(`broadcastTo: cannot broadcast ${fmt(x.shape)} to ${fmt(shape)}`);
  }
  if (sameShape(x.shape, shape)) return alias(x);
  checkAlloc("broadcastTo", x.backend, shape, x.dtype);
  const out = wrap(x.backend, x.backend.strided(x.buffer, shape, broadcastStrides(x.shape, shape), 0), shape, x.dtype);
  record("broadcastTo", { shape: [...shape] }, [x], out);
  return out;
}

/** Joins tensors along an existing axis. Other axes must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error("concat: needs at least one tensor");
  xs.forEach((x, i) => expectTensor("concat", x, `xs[${i}]`));
  const backend = backendOf("concat", ...xs);
  const first = xs[0];
  const ax = normAxis("concat", axis, first.rank, first.shape);
  for (const x of xs) {
    if (x.rank !== first.rank || x.dtype !== first.dtype || x.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(
        `concat: shapes ${xs.map((t) => fmt(t.shape) + " " + t.dtype).join(", ")} differ outside axis ${axis}`,
      );
    }
  }
  const outer = sizeOf(first.shape.slice(0, ax));
  const inner = sizeOf(first.shape.slice(ax + 1));
  const outShape = [...first.shape];
  outShape[ax] = xs.reduce((acc, x) => acc + x.shape[ax], 0);
  checkAlloc("concat", backend, outShape, first.dtype);
  const buf = backend.concat(xs.map((x) => x.buffer), outer, xs.map((x) => x.shape[ax] * inner));
  const out = wrap(backend, buf, outShape, first.dtype);
  record("concat", { axis: ax }, xs, out);
  return out;
}

/** Joins tensors of one shape along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error("stack: needs at least one tensor");
  const rank = xs[0].rank + 1;
  const ax = normAxis("stack", axis, rank);
  for (const x of xs) {
    if (!sameShape(x.shape, xs[0].shape)) {
      throw new Error(`stack: shapes ${xs.map((t) => fmt(t.shape)).join(", ")} must all be equal (axis ${axis})`);
    }
  }
  return concat(xs.map((x) => expandDims(x, ax)), ax);
}

/** Splits along `axis` into `sections` equal parts, or into parts of the given sizes. */
export function split(x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] {
  expectTensor("split", x);
  const ax = normAxis("split", axis, x.rank, x.shape);
  const d = x.shape[ax];
  let sizes: number[];
  if (typeof sections === "number") {
    if (!Number.isInteger(sections) || sections <= 0 || d % sections !== 0) {
      throw new Error(
        `split: axis ${axis} of shape ${fmt(x.shape)} (size ${d}) cannot be split into ${sections} equal parts`,
      );
    }
    sizes = new Array(sections).fill(d / sections);
  } else {
    sizes = [...sections];
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || sizes.reduce((a, b) => a + b, 0) !== d) {
      throw new Error(
        `split: sizes ${JSON.stringify(sections)} do not add up to ${d} (axis ${axis} of shape ${fmt(x.shape)})`,
      );
    }
  }
  let offset = 0;
  return sizes.map((s) => {
    const st = new Array<number>(x.rank).fill(0);
    st[ax] = offset;
    const en = [...x.shape];
    en[ax] = offset + s;
    offset += s;
    return slice(x, st, en);
  });
}

/** Inserts a size-1 axis at `axis`. */
export function expandDims(x: Tensor, axis: number): Tensor {
  expectTensor("expandDims", x);
  const ax = normAxis("expandDims", axis, x.rank + 1, x.shape);
  return reshape(x, [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)]);
}

/** Removes size-1 axes: the given ones, or all of them. */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  expectTensor("squeeze", x);
  const axes = axis === undefined
    ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
    : (typeof axis === "number" ? [axis] : axis).map((a) => normAxis("squeeze", a, x.rank, x.shape));
  for (const a of axes) {
    if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of shape ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  }
  return reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
}

/**
 * Gathers slices of `x` along `axis` at integer `indices` (NumPy `take`):
 * the result has shape x.shape[:axis] + indices.shape + x.shape[axis+1:].
 * With axis 0 this is an embedding lookup; its gradient is a scatter-add.
 */
export function take(x: Tensor, indices: Tensor, axis = 0): Tensor {
  expectTensor("take", x);
  expectTensor("take", indices, "indices");
  if (indices.dtype !== "int32") {
    throw new Error(`take: indices must be int32, got ${indices.dtype} ${fmt(indices.shape)}`);
  }
  const backend = backendOf("take", x, indices);
  const ax = normAxis("take", axis, x.rank, x.shape);
  if (ax !== 0) {
    const order = [ax, ...x.shape.map((_, i) => i).filter((i) => i !== ax)];
    const moved = take(permute(x, order), indices, 0);
    // moved: indices.shape + (x.shape without ax); put the index axes back at ax.
    const k = indices.rank;
    const rest = x.rank - 1;
    const back = [
      ...Array.from({ length: ax }, (_, i) => k + i),
      ...Array.from({ length: k }, (_, i) => i),
      ...Array.from({ length: rest - ax }, (_, i) => k + ax + i),
    ];
    return permute(moved, back);
  }
  const rows = x.shape[0];
  checkIndexRange("take", indices, rows, `axis ${axis} of shape ${fmt(x.shape)}`);
  const rowSize = sizeOf(x.shape.slice(1));
  const outShape = [...indices.shape, ...x.shape.slice(1)];
  checkAlloc("take", backend, outShape, x.dtype);
  const out = wrap(backend, backend.gather(x.buffer, rows, rowSize, indices.buffer), outShape, x.dtype);
  record("gather", {}, [x, indices], out);
  return out;
}

/**
 * The adjoint of `take` along axis 0: a zero tensor of `rows` rows into which
 * each slice `updates[i…]` is added at row `indices[i…]` (repeats accumulate).
 * `updates` has shape indices.shape + rowShape; the result [rows, ...rowShape].
 */
export function scatterAdd(indices: Tensor, updates: Tensor, rows: number): Tensor {
  expectTensor("scatterAdd", indices, "indices");
  expectTensor("scatterAdd", updates, "updates");
  const backend = backendOf("scatterAdd", indices, updates);
  if (
    indices.dtype !== "int32" || updates.dtype !== "float32" ||
    !sameShape(updates.shape.slice(0, indices.rank), indices.shape)
  ) {
    throw new Error(
      `scatterAdd: needs int32 indices and float32 updates whose shape starts with the indices' shape; got indices ${
        fmt(indices.shape)
      } ${indices.dtype}, updates ${fmt(updates.shape)} ${updates.dtype}`,
    );
  }
  checkIndexRange("scatterAdd", indices, rows, `${rows} rows`);
  const rowShape = updates.shape.slice(indices.rank);
  const rowSize = sizeOf(rowShape);
  checkAlloc("scatterAdd", backend, [rows, ...rowShape], "float32");
  const out = wrap(
    backend,
    backend.scatterAdd(indices.buffer, updates.buffer, rows, rowSize),
    [rows, ...rowShape],
    "float32",
  );
  record("scatterAdd", { rows }, [indices, updates], out);
  return out;
}

/**
 * Throws if an index lies outside [0, limit), where the backend can read
 * indices back synchronously (cpu). Other backends skip the check (see
 * Backend.readSync).
 */
export function checkIndexRange(op: string, indices: Tensor, limit: number, what: string): void {
  const read = indices.backend.readSync?.bind(indices.backend);
  if (!read) return;
  const ids = read(indices.buffer);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= limit) {
      throw new Error(`${op}: index ${ids[i]} at position ${i} is out of range [0, ${limit}) for ${what}`);
    }
  }
}

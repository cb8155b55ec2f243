/**
 * Checkpoints that lose nothing: the trainable tree, the optimizer state
 * (tensors and step counts), the data position, the RNG key and the loop's
 * bookkeeping, in one file (`checkpoint.safetensors`, the JSON skeleton in its
 * metadata) written to a temporary name and renamed into place, so a
 * checkpoint is committed whole or not at all.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { isTensor } from "../core/tensor.ts";
import { removeTempFiles, writeFileAtomic } from "../io/atomic.ts";
import { openSafetensors, serializeSafetensors } from "../io/safetensors.ts";

/** A JSON value whose tensors have been replaced by `{"$tensor": name}`. */
type Skeleton = null | number | string | boolean | Skeleton[] | { [k: string]: Skeleton };

/** Splits a value (trees, optimizer states) into JSON and named tensors. */
export function flatten(value: unknown, prefix: string, tensors: Record<string, Tensor>): Skeleton {
  if (isTensor(value)) {
    tensors[prefix] = value;
    return { $tensor: prefix };
  }
  if (Array.isArray(value)) return value.map((v, i) => flatten(v, `${prefix}.${i}`, tensors));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, flatten(v, `${prefix}.${k}`, tensors)]));
  }
  if (value === undefined) return null;
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  return value as Skeleton;
}

/** The inverse of {@link flatten}. */
export function unflatten(skeleton: Skeleton, tensors: Record<string, Tensor>): unknown {
  if (Array.isArray(skeleton)) return skeleton.map((s) => unflatten(s, tensors));
  if (skeleton && typeof skeleton === "object") {
    if (typeof skeleton.$tensor === "string") {
      const t = tensors[skeleton.$tensor];
      if (!t) throw new Error(`checkpoint: tensor "${skeleton.$tensor}" is missing from the checkpoint`);
      return t;
    }
    if (typeof skeleton.$number === "string") return Number(skeleton.$number);
    return Object.fromEntries(Object.entries(skeleton).map(([k, v]) => [k, unflatten(v, tensors)]));
  }
  return skeleton;
}

/** The one file a checkpoint is: tensors plus the JSON skeleton in its metadata, renamed into place whole. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";

/**
 * Writes `state` (any mix of trees, numbers and strings) to `dir` as one file,
 * committed by a single rename: a kill at any moment leaves either the
 * previous checkpoint or the new one.
 */
export async function saveCheckpoint(dir: string, state: Record<string, unknown>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  const skeleton = flatten(state, "s", tensors);
  const bytes = await serializeSafetensors(tensors, {
    format: "knot-checkpoint",
    version: String(VERSION),
    state: JSON.stringify(skeleton),
  });
  await writeFileAtomic(`${dir}/${CHECKPOINT_FILE}`, bytes);
}

/**
 * 3: optimizer step counts are int32 scalar tensors. Version 2 files (counts as numbers) still
 * load; the optimizers take a number count as it is, so a v2 run resumes bit for bit.
 */
const VERSION = 3;
const READABLE = new Set(["2", String(VERSION)]);

/** True if `dir` holds a checkpoint. */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(`${dir}/${CHECKPOINT_FILE}`)).isFile;
  } catch {
    return false;
  }
}

/**
 * Removes the leftovers of interrupted checkpoint writes in `dir` (their
 * temporary files); returns the names removed.
 */
export async function cleanCheckpointDir(dir: string): Promise<string[]> {
  return await removeTempFiles(dir);
}

/**
 * Reads a checkpoint written by {@link saveCheckpoint}. On any error every
 * tensor it had read is released before the Error is thrown.
 */
export async function loadCheckpoint(dir: string): Promise<Record<string, unknown>> {
  const path = `${dir}/${CHECKPOINT_FILE}`;
  const reader = await openSafetensors(path);
  const tensors: Record<string, Tensor> = {};
  try {
    const m = reader.metadata ?? {};
    if (m.format !== "knot-checkpoint" || !READABLE.has(m.version) || typeof m.state !== "string") {
      throw new Error(
        `loadCheckpoint: ${path} is not a knot checkpoint v2 or v${VERSION} (format ${JSON.stringify(m.format)}, ` +
          `version ${JSON.stringify(m.version)})`,
      );
    }
    let skeleton: Skeleton;
    try {
      skeleton = JSON.parse(m.state);
    } catch (e) {
      throw new Error(`loadCheckpoint: ${path}: its state is not valid JSON (${(e as Error).message})`);
    }
    for (const name of reader.names) tensors[name] = await reader.tensor(name);
    return unflatten(skeleton, tensors) as Record<string, unknown>;
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    throw e;
  } finally {
    reader.close();
  }
}

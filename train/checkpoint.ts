/**
 * Checkpoints that lose nothing: the trainable tree, the optimizer state
 * (tensors and step counts), the data position, the RNG key and the loop's
 * bookkeeping, written as `checkpoint.safetensors` + `checkpoint.json`, each
 * atomically; the JSON is written last and names a nonce also stored in the
 * safetensors metadata, so a torn pair is detected at load.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { isTensor } from "../core/tensor.ts";
import { writeTextAtomic } from "../io/atomic.ts";
import { openSafetensors, saveSafetensors } from "../io/safetensors.ts";

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
      if (!t) throw new Error(`checkpoint: tensor "${skeleton.$tensor}" is missing from checkpoint.safetensors`);
      return t;
    }
    if (typeof skeleton.$number === "string") return Number(skeleton.$number);
    return Object.fromEntries(Object.entries(skeleton).map(([k, v]) => [k, unflatten(v, tensors)]));
  }
  return skeleton;
}

/** Writes `state` (any mix of trees, numbers and strings) to `dir`, atomically. */
export async function saveCheckpoint(dir: string, state: Record<string, unknown>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  const skeleton = flatten(state, "s", tensors);
  const nonce = crypto.randomUUID();
  await saveSafetensors(`${dir}/checkpoint.safetensors`, tensors, { format: "knot-checkpoint", nonce });
  await writeTextAtomic(
    `${dir}/checkpoint.json`,
    JSON.stringify({ format: "knot-checkpoint", version: 1, nonce, state: skeleton }) + "\n",
  );
}

/** True if `dir` holds a checkpoint. */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  try {
    await Deno.stat(`${dir}/checkpoint.json`);
    return true;
  } catch {
    return false;
  }
}

/** Reads a checkpoint written by {@link saveCheckpoint}. */
export async function loadCheckpoint(dir: string): Promise<Record<string, unknown>> {
  const jsonPath = `${dir}/checkpoint.json`;
  let j: { format?: string; version?: number; nonce?: string; state?: Skeleton };
  try {
    j = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (e) {
    throw new Error(`loadCheckpoint: cannot read ${jsonPath}: ${(e as Error).message}`);
  }
  if (j.format !== "knot-checkpoint" || j.version !== 1) {
    throw new Error(`loadCheckpoint: ${jsonPath} is not a knot checkpoint`);
  }
  const reader = await openSafetensors(`${dir}/checkpoint.safetensors`);
  try {
    if (reader.metadata?.nonce !== j.nonce) {
      throw new Error(
        `loadCheckpoint: ${dir}/checkpoint.safetensors does not belong to ${jsonPath} (interrupted write?)`,
      );
    }
    const tensors: Record<string, Tensor> = {};
    for (const name of reader.names) tensors[name] = await reader.tensor(name);
    return unflatten(j.state ?? null, tensors) as Record<string, unknown>;
  } finally {
    reader.close();
  }
}

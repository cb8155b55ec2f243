/**
 * File writes that never leave a half-written file: write to a temporary name
 * in the same directory, then rename. Every write and rename of a training run
 * goes through here, which is also where a test injects a kill (see
 * {@link KILL_AT_WRITE_ENV}).
 * @module
 */

/**
 * Test hook: with `KNOT_TEST_KILL_AT_WRITE=N` (N >= 1) the process kills itself
 * with SIGKILL just before its Nth file write or rename made through this
 * module, as a power cut or `kill -9` would; with `0` it only reports each
 * point on stderr as `knot-write-point <n> <op> <path>`, so a test can count
 * the points of a run and then try every one.
 */
export const KILL_AT_WRITE_ENV = "KNOT_TEST_KILL_AT_WRITE";

let killAt: number | null | undefined; // read on the first write (a top-level read would reach the web bundle)
let points = 0;

function writePoint(op: string, path: string): void {
  if (killAt === undefined) {
    try {
      const v = Deno.env.get(KILL_AT_WRITE_ENV);
      killAt = v === undefined || v === "" ? null : Number(v);
    } catch { // no --allow-env: the hook is off
      killAt = null;
    }
  }
  if (killAt === null) return;
  points++;
  if (killAt === 0) console.error(`knot-write-point ${points} ${op} ${path}`);
  else if (points === killAt) Deno.kill(Deno.pid, "SIGKILL");
}

/** Temporary files of interrupted writes: `<name>.tmp-<8 hex>` (here) and `.<name>.<8 hex>.tmp` (saveSafetensors). */
const TMP = /\.tmp-[0-9a-f]{8}$|^\..+\.[0-9a-f]{8}\.tmp$/;

/** Writes `data` to `path` atomically: readers see the old file or the whole new one, never a part. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    writePoint("write", tmp);
    await Deno.writeFile(tmp, data);
    writePoint("rename", path);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Text version of {@link writeFileAtomic}. */
export function writeTextAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text));
}

/**
 * Appends `text` to `path` (created if absent). Not atomic: a kill can leave a
 * torn last line, so readers of appended logs must skip one (see
 * train/run.ts).
 */
export async function appendText(path: string, text: string): Promise<void> {
  writePoint("append", path);
  await Deno.writeTextFile(path, text, { append: true });
}

/**
 * Removes what interrupted writes left in `dir` (temporary files of
 * {@link writeFileAtomic} and of io/safetensors.ts's saveSafetensors); returns
 * the names removed.
 */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && TMP.test(e.name)) {
        await Deno.remove(`${dir}/${e.name}`);
        removed.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed.sort();
}

/**
 * Runs scripts/bundle.ts in its own process, with the build tools' lock file
 * (scripts/build.lock), and returns what it built. Tests use this instead of
 * importing bundle.ts, so esbuild never enters deno.lock — which would make
 * every user's first `deno run` download it.
 * @module
 */
import { fileURLToPath } from "node:url";

/** The repository root (this file is scripts/run_bundle.ts). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** The lock file of the build tools (esbuild, AssemblyScript), apart from deno.lock. */
export const BUILD_LOCK: string = `${ROOT}/scripts/build.lock`;

/** One built file and its sizes. */
export interface BuiltFile {
  path: string;
  bytes: number;
  gzipBytes: number;
}

/** `deno task bundle` with `--outdir` (default dist/) and `--no-app`; throws with its stderr on failure. */
export async function runBundle(opts: { outdir?: string; app?: boolean } = {}): Promise<BuiltFile[]> {
  const args = ["run", "-A", `--lock=${BUILD_LOCK}`, `${ROOT}/scripts/bundle.ts`, "--json"];
  if (opts.outdir) args.push("--outdir", opts.outdir);
  if (opts.app === false) args.push("--no-app");
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`scripts/bundle.ts failed (exit ${r.code}):\n${dec.decode(r.stderr)}`);
  const lines = dec.decode(r.stdout).trim().split("\n");
  return JSON.parse(lines.at(-1)!);
}

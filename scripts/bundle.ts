/**
 * Builds the browser bundle: `web.ts` → `dist/knot.js` (ESM, minified, with
 * `dist/knot.js.map`), and the demo page's script `examples/web/app.ts` →
 * `dist/app.js` (which imports `./knot.js` at run time; the page,
 * examples/web/index.html, loads `../../dist/app.js`).
 *
 *   deno task bundle            # = deno run -A --lock=scripts/build.lock scripts/bundle.ts
 *   deno task bundle --outdir DIR --no-app --json   # (what tests/browser run, see run_bundle.ts)
 *
 * esbuild is a build tool, pinned in its own lock file (scripts/build.lock), so
 * that deno.lock — and a user's first `deno run` — hold only what the library
 * imports. Import {@link bundle} only from a process started with that lock
 * (tests use scripts/run_bundle.ts, which runs this file in one).
 *
 * esbuild cannot resolve Deno's `npm:` specifiers by itself; a small plugin
 * maps `npm:pkg@version/sub/path` to the package Deno installed under
 * `node_modules/` (nodeModulesDir "auto"; `deno cache` is run first so they are
 * there). `node:path` (used only by the file-system half of io/safetensors.ts)
 * becomes a stub that throws, which tree-shaking drops. The build fails if the
 * output mentions `Deno.` (a Deno-only code path leaked into the bundle) or
 * imports a `node:` module.
 *
 * Exports {@link bundle} for tests; prints sizes (raw and gzip) when run.
 * @module
 */
// deno-lint-ignore no-import-prefix
import * as esbuild from "npm:esbuild@0.28.2";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";

import { BUILD_LOCK, type BuiltFile, ROOT } from "./run_bundle.ts";
export { type BuiltFile, ROOT };

async function gzipSize(data: Uint8Array): Promise<number> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** `npm:@scope/name@1.2.3/sub/path` → { name, version, subpath }. */
function parseNpm(spec: string): { name: string; version: string | null; subpath: string } {
  const rest = spec.slice("npm:".length).replace(/^\/+/, "");
  const m = rest.match(/^((?:@[^/@]+\/)?[^/@]+)(?:@([^/]+))?(\/.*)?$/);
  if (!m) throw new Error(`bundle: cannot parse the npm specifier "${spec}"`);
  return { name: m[1], version: m[2] ?? null, subpath: m[3] ?? "" };
}

/** The directory holding `node_modules/<name>` for a package Deno installed (nodeModulesDir "auto"). */
function packageRoot(name: string, version: string | null): string {
  const store = join(ROOT, "node_modules", ".deno");
  const key = name.replace("/", "+");
  if (version) {
    try {
      if (Deno.statSync(join(store, `${key}@${version}`, "node_modules", name)).isDirectory) {
        return join(store, `${key}@${version}`);
      }
    } catch { /* a range, or not installed under that exact version: look further */ }
  }
  let candidates: string[] = [];
  try {
    candidates = [...Deno.readDirSync(store)].map((e) => e.name).filter((n) => n.startsWith(`${key}@`)).sort();
  } catch { /* no store */ }
  if (candidates.length === 1) return join(store, candidates[0]);
  // Several versions (or none in the store): the top-level link Deno makes for the project's own imports.
  try {
    if (Deno.statSync(join(ROOT, "node_modules", name)).isDirectory) return ROOT;
  } catch { /* fall through */ }
  throw new Error(
    `bundle: npm package ${name}${version ? `@${version}` : ""} is not installed under node_modules/ ` +
      `(run "deno cache web.ts"; found ${candidates.length ? candidates.join(", ") : "nothing"})`,
  );
}

/**
 * The esbuild plugin: `npm:` specifiers → node_modules, `node:path` → a
 * throwing stub.
 */
export function denoNpmPlugin(): esbuild.Plugin {
  return {
    name: "deno-npm",
    setup(build) {
      build.onResolve({ filter: /^npm:/ }, async (args) => {
        const { name, version, subpath } = parseNpm(args.path);
        const r = await build.resolve(name + subpath, {
          kind: args.kind,
          resolveDir: packageRoot(name, version),
          importer: args.importer,
        });
        if (r.errors.length) return { errors: r.errors };
        return { path: r.path, external: r.external, sideEffects: r.sideEffects };
      });
      build.onResolve({ filter: /^node:path$/ }, () => ({ path: "node:path", namespace: "browser-stub" }));
      build.onLoad({ filter: /.*/, namespace: "browser-stub" }, (args) => ({
        contents: ["basename", "dirname", "join"].map((f) =>
          `export function ${f}() { throw new Error("knot (browser build): ${args.path} ${f}() is not available"); }`
        ).join("\n"),
        loader: "js",
      }));
    },
  };
}

/** Fails if a built file mentions `Deno.` or still imports a `node:` module. */
function checkBrowserSafe(path: string, text: string): void {
  const problems: string[] = [];
  for (const m of text.matchAll(/Deno\./g)) {
    problems.push(`mentions "Deno." at offset ${m.index}: …${text.slice(Math.max(0, m.index! - 60), m.index! + 60)}…`);
    if (problems.length >= 5) break;
  }
  const nodeImport = text.match(/(?:from|import)\s*\(?\s*["']node:[^"']+["']/);
  if (nodeImport) problems.push(`imports a node: module (${nodeImport[0]})`);
  if (problems.length) {
    throw new Error(
      `bundle: ${path} is not browser-safe (a Deno-only module is reachable from web.ts):\n  ${problems.join("\n  ")}`,
    );
  }
}

/** Makes sure Deno has put every npm package web.ts needs under node_modules/. */
async function ensureInstalled(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["cache", "--quiet", `--lock=${BUILD_LOCK}`, "web.ts"],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("bundle: deno cache web.ts failed");
}

/** Options of {@link bundle}. */
export interface BundleOptions {
  /** Output directory of the library bundle (default `<root>/dist`). */
  outdir?: string;
  /** Also build examples/web/app.ts → dist/app.js (default true). */
  app?: boolean;
  /** Print what was built (default true). */
  log?: boolean;
}

/** Builds dist/knot.js (+ .map) and dist/app.js; returns their sizes. Throws on any error. */
export async function bundle(opts: BundleOptions = {}): Promise<BuiltFile[]> {
  const { outdir = join(ROOT, "dist"), app = true, log = true } = opts;
  await ensureInstalled();
  try {
    return await build(outdir, app, log);
  } finally {
    await esbuild.stop(); // the esbuild service would otherwise keep the process (or a test) alive
  }
}

/** The cpu engine's worker module, built beside knot.js (the pool starts it by a URL relative to itself). */
export const WORKER_FILE = "knot_worker.js";

/**
 * Points the pool's `new URL("./worker.ts", import.meta.url)` at the built worker: esbuild bundles the
 * module but leaves that URL, which names a source file the browser does not have. Fails loudly if the
 * expression is not found, so a change in pool.ts cannot silently leave the browser single-threaded.
 */
function workerUrlPlugin(): esbuild.Plugin {
  const from = 'new URL("./worker.ts", import.meta.url)';
  return {
    name: "knot-worker-url",
    setup(build) {
      build.onLoad({ filter: /backends[\\/]cpu[\\/]wasm[\\/]pool\.ts$/ }, async (args) => {
        const text = await Deno.readTextFile(args.path);
        if (!text.includes(from)) {
          return { errors: [{ text: `bundle: ${args.path} no longer contains ${from}; update workerUrlPlugin` }] };
        }
        return { contents: text.replace(from, `new URL("./${WORKER_FILE}", import.meta.url)`), loader: "ts" };
      });
    },
  };
}

async function build(outdir: string, app: boolean, log: boolean): Promise<BuiltFile[]> {
  const common = {
    absWorkingDir: ROOT,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    legalComments: "eof",
    logLevel: "warning",
    write: false,
  } as const;
  const result = await esbuild.build({
    ...common,
    entryPoints: [join(ROOT, "web.ts")],
    outfile: join(outdir, "knot.js"),
    plugins: [denoNpmPlugin(), workerUrlPlugin()],
  });
  // The worker threads' module (needs a cross-origin isolated page; see scripts/serve.ts).
  const worker = await esbuild.build({
    ...common,
    entryPoints: [join(ROOT, "backends/cpu/wasm/worker.ts")],
    outfile: join(outdir, WORKER_FILE),
  });
  const files: { path: string; contents: Uint8Array }[] = [...result.outputFiles, ...worker.outputFiles].map((f) => ({
    path: f.path,
    contents: f.contents,
  }));
  if (app) {
    // The page's own script: knot itself stays external (imported from dist/knot.js at run time).
    const appOut = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [join(ROOT, "examples/web/app.ts")],
      outfile: join(outdir, "app.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      plugins: [
        {
          name: "knot-external",
          setup(build) {
            // app.ts imports "../../web.ts" (for type checking); in the browser that is the bundle beside it.
            build.onResolve({ filter: /\/web\.ts$/ }, () => ({ path: "./knot.js", external: true }));
          },
        },
      ],
      logLevel: "warning",
      write: false,
    });
    files.push(...appOut.outputFiles.map((f) => ({ path: f.path, contents: f.contents })));
  }
  const built: BuiltFile[] = [];
  for (const f of files) {
    if (f.path.endsWith(".js")) checkBrowserSafe(relative(ROOT, f.path), new TextDecoder().decode(f.contents));
  }
  for (const f of files) {
    await Deno.mkdir(dirname(f.path), { recursive: true });
    await Deno.writeFile(f.path, f.contents);
    built.push({ path: relative(ROOT, f.path), bytes: f.contents.length, gzipBytes: await gzipSize(f.contents) });
  }
  if (log) {
    for (const b of built) {
      console.log(
        `${b.path.padEnd(24)} ${(b.bytes / 1024).toFixed(1).padStart(8)} KiB   gzip ${
          (b.gzipBytes / 1024).toFixed(1).padStart(7)
        } KiB`,
      );
    }
  }
  return built;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        outdir: { type: "string" },
        "no-app": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const built = await bundle({ outdir: values.outdir, app: !values["no-app"], log: !values.json });
    if (values.json) console.log(JSON.stringify(built));
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}

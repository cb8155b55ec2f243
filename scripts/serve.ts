/**
 * A small static file server for the browser demo: serves the repository root
 * read-only on localhost (GET and HEAD only; no directory listings, nothing
 * outside the root, dotfiles refused), with the MIME types browsers need for
 * ES modules, WebAssembly, source maps, JSON and safetensors.
 *
 * Pages are cross-origin isolated (COOP `same-origin`, COEP `require-corp`),
 * which browsers require before they give a page SharedArrayBuffer: the cpu
 * engine's worker threads need it. `--no-isolation` leaves the headers out;
 * the engine then runs on the page's thread alone, with the same results.
 *
 *   deno task serve                # http://localhost:8000/examples/web/
 *   deno task serve --port 8123
 *   deno task serve --no-isolation
 *
 * Run `deno task bundle` first: the page loads `dist/app.js` and `dist/knot.js`.
 * Exports {@link serve} for tests.
 * @module
 */
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** The repository root (this file is scripts/serve.ts). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** Content types by extension; anything else is application/octet-stream. */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".jsonl": "application/jsonl; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Port (default 8000; 0 picks a free one). */
  port?: number;
  /** Interface (default 127.0.0.1: localhost only). */
  hostname?: string;
  /** Directory served (default the repository root). */
  root?: string;
  /** Log each request (default false). */
  log?: boolean;
  /** Send the cross-origin isolation headers (default true; see the module doc). */
  isolate?: boolean;
}

/** The headers that make a page cross-origin isolated (so it may use SharedArrayBuffer, hence threads). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

function respond(status: number, text: string, method = "GET"): Response {
  return new Response(method === "HEAD" ? null : text + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The request handler (exported for tests). */
export function handler(root: string = ROOT, isolate = true): (req: Request) => Promise<Response> {
  const base = normalize(root);
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url).pathname);
    } catch {
      return respond(400, "bad request", req.method);
    }
    if (path.includes("\0") || path.split("/").some((s) => s.startsWith("."))) {
      return respond(404, "not found", req.method); // no dotfiles, no "..": nothing outside the root
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return respond(404, "not found", req.method);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(file);
      if (info.isDirectory) {
        if (!path.endsWith("/")) {
          return new Response(null, { status: 301, headers: { location: `${new URL(req.url).pathname}/` } });
        }
        file = join(file, "index.html");
        info = await Deno.stat(file);
      }
      if (!info.isFile) return respond(404, "not found", req.method);
    } catch {
      return respond(404, "not found", req.method);
    }
    const headers = {
      "content-type": MIME_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
      "content-length": String(info.size),
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      ...(isolate ? ISOLATION_HEADERS : {}),
    };
    if (req.method === "HEAD") return new Response(null, { headers });
    const f = await Deno.open(file, { read: true });
    return new Response(f.readable, { headers });
  };
}

/** Starts the server; returns it (its `addr.port` is the port actually bound). */
export function serve(opts: ServeOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const { port = 8000, hostname = "127.0.0.1", root = ROOT, log = false, isolate = true } = opts;
  const handle = handler(root, isolate);
  return Deno.serve({ port, hostname, onListen: () => {} }, async (req) => {
    const res = await handle(req);
    if (log) console.log(`${res.status} ${req.method} ${new URL(req.url).pathname}`);
    return res;
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8000" },
      host: { type: "string", default: "127.0.0.1" },
      "no-isolation": { type: "boolean", default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer in 0..65535, got ${values.port}`);
    Deno.exit(2);
  }
  const server = serve({ port, hostname: values.host, log: true, isolate: !values["no-isolation"] });
  const url = `http://${values.host === "127.0.0.1" ? "localhost" : values.host}:${server.addr.port}`;
  console.log(`serving ${ROOT} read-only at ${url}/ — the demo: ${url}/examples/web/`);
  if (values["no-isolation"]) console.log("not cross-origin isolated: the cpu engine runs on one thread");
}

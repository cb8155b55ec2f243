/**
 * A minimal Chrome DevTools Protocol client for the browser test: launch
 * headless Chromium, talk to it over its WebSocket (flattened sessions), no
 * dependencies.
 * @module
 */

/** One CDP message from the browser (a reply or an event). */
export interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  sessionId?: string;
}

/** A connection to the browser's DevTools WebSocket. */
export class Cdp {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void; what: string }>();
  readonly #listeners = new Set<(m: CdpMessage) => void>();
  #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as CdpMessage;
      if (m.id !== undefined) {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (m.error) p.reject(new Error(`CDP ${p.what}: ${m.error.message}`));
        else p.resolve(m.result ?? {});
      } else for (const l of this.#listeners) l(m);
    };
    this.#closed = new Promise((resolve) => {
      ws.onclose = () => {
        for (const p of this.#pending.values()) p.reject(new Error(`CDP ${p.what}: the connection closed`));
        this.#pending.clear();
        resolve();
      };
    });
  }

  /** Connects to `ws://…/devtools/browser/…`. */
  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new Cdp(ws));
      ws.onerror = (e) => reject(new Error(`CDP: cannot connect to ${url}: ${(e as ErrorEvent).message ?? e}`));
    });
  }

  /** Sends a command (to a page when `sessionId` is given) and resolves with its result. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: unknown) => void, reject, what: method });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Calls `fn` with every event. */
  on(fn: (m: CdpMessage) => void): void {
    this.#listeners.add(fn);
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close();
    await this.#closed;
  }
}

/** A running headless Chromium. */
export interface Browser {
  cdp: Cdp;
  /** Everything Chromium wrote to stderr so far (for failure messages). */
  stderr: () => string;
  /** Closes the browser and removes its profile directory. */
  close: () => Promise<void>;
}

/** The flags the test launches Chromium with (plus a fresh --user-data-dir and the DevTools port). */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--enable-unsafe-webgpu",
];

/** Launches `executable` headless with a fresh profile and connects to it. */
export async function launch(executable: string, extraFlags: readonly string[] = []): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "knot-chromium-" });
  const child = new Deno.Command(executable, {
    args: [
      ...CHROMIUM_FLAGS,
      ...extraFlags,
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  const found = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return null;
      log += decoder.decode(value, { stream: true });
      const m = log.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) return m[1];
    }
  })();
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await drained.catch(() => {});
    await child.status;
    // Chromium's singleton socket lives in $TMPDIR/org.chromium.Chromium.*, linked from the profile; a browser
    // that did not shut down cleanly leaves that directory behind.
    const socket = await Deno.readLink(`${profile}/SingletonSocket`).catch(() => "");
    const socketDir = socket.replace(/\/[^/]*$/, "");
    if (/\/org\.chromium\.Chromium\.[^/]+$/.test(socketDir)) {
      await Deno.remove(socketDir, { recursive: true }).catch(() => {});
    }
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const wsUrl = await Promise.race([
    found,
    new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 30_000)),
  ]);
  clearTimeout(timer);
  if (!wsUrl) {
    // Chromium is stuck or gone: stop it, then let the reader finish.
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await found.catch(() => {});
  }
  // Keep draining stderr so Chromium never blocks on a full pipe.
  const drained = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      log += decoder.decode(value, { stream: true });
    }
  })();
  if (!wsUrl) {
    await close();
    throw new Error(`chromium did not open its DevTools port; its stderr:\n${log.slice(-3000)}`);
  }
  let cdp: Cdp;
  try {
    cdp = await Cdp.connect(wsUrl);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    cdp,
    stderr: () => log,
    close: async () => {
      await cdp.send("Browser.close").catch(() => {});
      await cdp.close();
      await close();
    },
  };
}

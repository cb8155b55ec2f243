/**
 * A one-line terminal progress bar: step, loss, tokens/s and ETA, redrawn in
 * place on a TTY and printed every N steps otherwise (logs, CI).
 * @module
 */

/** Seconds as "m:ss" or "h:mm:ss" ("--:--" when not finite). */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return `${h ? `${h}:` : ""}${String(mm).padStart(h ? 2 : 1, "0")}:${String(ss).padStart(2, "0")}`;
}

/** Formats a rate like 1234 → "1.2k". */
export function rate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

/** A progress bar over `total` steps. */
export class ProgressBar {
  #start = performance.now();
  #tokens = 0;
  #isTty: boolean;
  #last = "";
  /** A bar for `total` steps, prefixed by `label`; when not a terminal, one line every `printEvery` steps. */
  constructor(readonly total: number, readonly label = "", readonly printEvery = 10) {
    this.#isTty = Deno.stdout.isTerminal();
  }

  /** Reports step `step` (1-based) with its loss and tokens processed. */
  update(step: number, loss: number, tokens: number, extra = ""): void {
    this.#tokens += tokens;
    const elapsed = (performance.now() - this.#start) / 1000;
    const frac = Math.min(1, step / this.total);
    const width = 20, filled = Math.round(frac * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const eta = step > 0 ? (elapsed / step) * (this.total - step) : NaN;
    const line = `${this.label}step ${String(step).padStart(String(this.total).length)}/${this.total} ${bar} loss ${
      loss.toFixed(4)
    } · ${rate(this.#tokens / Math.max(elapsed, 1e-9))} tok/s · ETA ${clock(eta)}${extra ? ` · ${extra}` : ""}`;
    this.#last = line;
    if (this.#isTty) Deno.stdout.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
    else if (step % this.printEvery === 0 || step === this.total) console.log(line);
  }

  /** Prints a message without breaking the bar. */
  log(message: string): void {
    if (this.#isTty) Deno.stdout.writeSync(new TextEncoder().encode(`\r\x1b[2K${message}\n${this.#last}`));
    else console.log(message);
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.#isTty) Deno.stdout.writeSync(new TextEncoder().encode("\n"));
  }
}

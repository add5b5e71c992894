/**
 * A one-line progress bar on stderr — only when stderr is a terminal (nothing on a pipe or in a
 * log): files done/total, bytes hashed, and an ETA from the rate so far. Redrawn at most 10 times
 * a second; cleared when done.
 */
export class ProgressBar {
  private last = 0;
  private readonly started = Date.now();
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  static forStderr(): ProgressBar | undefined {
    return process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
  }

  update(p: { filesDone: number; filesTotal: number; bytesDone: number }): void {
    const now = Date.now();
    if (now - this.last < 100 && p.filesDone < p.filesTotal) return;
    this.last = now;
    const fraction = p.filesTotal === 0 ? 1 : p.filesDone / p.filesTotal;
    const width = 24;
    const full = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta =
      fraction > 0.02 && fraction < 1 ? ` ETA ${formatSeconds((elapsed / fraction) * (1 - fraction))}` : '';
    const line =
      `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${p.filesDone}/${p.filesTotal} files, ` +
      `${formatBytes(p.bytesDone)}${eta}`;
    const columns = this.stream.columns ?? 80;
    this.stream.write(`\r${line.slice(0, columns - 1)}\u001b[K`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.stream.write('\r\u001b[K');
    this.drawn = false;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

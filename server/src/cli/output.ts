/** Human-readable output by default, JSON (one document on stdout) with --json. */
export interface Streams {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

export class Output {
  constructor(
    readonly isJson: boolean,
    private readonly streams: Streams = process,
  ) {}

  /** The command's result: `value` as JSON, or the human rendering of it. */
  result(value: unknown, human: () => string): void {
    this.streams.stdout.write(this.isJson ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
  }

  error(code: string, message: string): void {
    this.streams.stderr.write(this.isJson ? `${JSON.stringify({ error: code, message })}\n` : `sentryagent-idp: ${message}\n`);
  }

  /** A warning on stderr, whatever the mode (it never mixes into --json's document). */
  warn(message: string): void {
    this.streams.stderr.write(`sentryagent-idp: warning: ${message}\n`);
  }

  /** Writes what another process printed for this command (the server, through the operator socket). */
  relay(stdout: string, stderr: string): void {
    if (stdout) this.streams.stdout.write(stdout);
    if (stderr) this.streams.stderr.write(stderr);
  }

  /** Plain text on stdout (help), whatever the mode. */
  text(value: string): void {
    this.streams.stdout.write(`${value}\n`);
  }
}

/** Left-aligned columns under an upper-case header; an empty list reads `none`. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], empty = 'none'): string {
  if (rows.length === 0) return empty;
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column].length)));
  return all.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()).join('\n');
}

export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  return fields.map(([name, value]) => `  ${`${name}:`.padEnd(width)} ${value}`).join('\n');
}

/** An Output that keeps what is written, to be sent elsewhere (the operator socket's reply). */
export function bufferedOutput(isJson: boolean): { output: Output; printed(): { stdout: string; stderr: string } } {
  let stdout = '';
  let stderr = '';
  const output = new Output(isJson, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  return { output, printed: () => ({ stdout, stderr }) };
}

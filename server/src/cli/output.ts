/** Human-readable output by default, JSON (one document on stdout) with --json. */
export interface Streams {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
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

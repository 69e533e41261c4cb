// Cuts a streamed request body into JSON values, the way the gateway's json.Decoder reads the
// requests of a streaming call (watch, keep-alive) one after another: values follow each other,
// separated by optional whitespace. Only the value being received is buffered, and it may not
// grow past a limit, so a client cannot make us hold more than one bounded request.
//
// The boundary of a value is found with a byte scan (depth of brackets, inside or outside a
// string); the value is then parsed once (json-text.ts), which reports any syntax error.

const OPEN = new Set([0x7b, 0x5b]);
const CLOSE = new Set([0x7d, 0x5d]);
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

export class JsonValueSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** How far into the buffered bytes the scan has got. */
  private scanned = 0;
  private started = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** A top-level number or literal, which ends at whitespace or a structural character. */
  private scalar = false;

  constructor(private readonly valueBytesMax: number) {}

  /** The values completed by `chunk`, as UTF-8 text; throws ValueTooLarge past the limit. */
  push(chunk: Buffer): string[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const values: string[] = [];
    for (;;) {
      const end = this.scan();
      if (end === undefined) break;
      values.push(this.take(end));
    }
    if (this.started && this.buffered > this.valueBytesMax) throw new ValueTooLarge(this.valueBytesMax);
    if (!this.started) this.dropWhitespace();
    return values;
  }

  /** What is left when the body ends: a value cut short (which fails to parse), or undefined. */
  end(): string | undefined {
    if (!this.started) return undefined;
    return this.take(this.buffered);
  }

  /** The index just past the end of the current value, or undefined while it is incomplete. */
  private scan(): number | undefined {
    // Walks the chunks without joining them: a large value arriving in many chunks is copied
    // once, when it is complete.
    let base = 0;
    for (const chunk of this.chunks) {
      for (let i = Math.max(0, this.scanned - base); i < chunk.length; i++) {
        this.scanned = base + i;
        if (this.step(chunk[i]!)) return this.scalar ? this.scanned : this.scanned + 1;
      }
      base += chunk.length;
    }
    this.scanned = base;
    return undefined;
  }

  /** Takes one byte of the current value; true when it completes the value. */
  private step(c: number): boolean {
    if (!this.started) {
      if (WHITESPACE.has(c)) return false;
      this.started = true;
      if (OPEN.has(c)) this.depth = 1;
      else if (c === 0x22) this.inString = true;
      else this.scalar = true;
      return false;
    }
    // A scalar ends before the byte that ends it.
    if (this.scalar) return WHITESPACE.has(c) || OPEN.has(c) || CLOSE.has(c) || c === 0x22 || c === 0x2c;
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === 0x5c) this.escaped = true;
      else if (c === 0x22) {
        this.inString = false;
        return this.depth === 0;
      }
      return false;
    }
    if (c === 0x22) this.inString = true;
    else if (OPEN.has(c)) this.depth++;
    else if (CLOSE.has(c)) return --this.depth === 0;
    return false;
  }

  /** Removes the first `end` bytes (one value and the whitespace before it) and starts over. */
  private take(end: number): string {
    const bytes = this.joined();
    const text = bytes.subarray(0, end).toString('utf8');
    const rest = bytes.subarray(end);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.scanned = 0;
    this.started = this.inString = this.escaped = this.scalar = false;
    this.depth = 0;
    return text;
  }

  /** Whitespace between values is not kept. */
  private dropWhitespace(): void {
    this.chunks = [];
    this.buffered = 0;
    this.scanned = 0;
  }

  /** The buffered bytes as one Buffer. */
  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] ?? EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

export class ValueTooLarge extends Error {
  constructor(readonly bytesMax: number) {
    super(`a request in the body is larger than ${bytesMax} bytes`);
  }
}

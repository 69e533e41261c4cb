// A JSON reader that behaves like Go's encoding/json where etcd's gateway shows it to clients:
// the same syntax error messages ("invalid character 'x' looking for beginning of value"), and
// numbers kept as their source text, so that 64-bit integers are not rounded through a double
// and "1.5" or "1e3" given for an integer field can be refused the way Go refuses them.
//
// Why not JSON.parse: it rounds every number to a double, and its error messages are V8's. The
// bodies are small (a range request is tens of bytes); strings, the only large part (a base64
// value), are scanned with indexOf, not character by character.

/** A JSON number as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

/** A syntax error, with the message Go's encoding/json gives for it. */
export class JsonSyntaxError extends Error {}

/**
 * Go's quoteChar: how the offending byte is shown in "invalid character ..." messages. Go reads
 * bytes, so for a non-ASCII character it shows the first byte of its UTF-8 form, as a rune.
 */
function quoteChar(codePoint: number): string {
  if (codePoint === 0x27) return `'\\''`;
  if (codePoint === 0x22) return `'"'`;
  const byte = codePoint < 0x80 ? codePoint : Buffer.from(String.fromCodePoint(codePoint), 'utf8')[0]!;
  const short: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 0x5c: '\\\\' };
  if (short[byte] !== undefined) return `'${short[byte]}'`;
  if (byte < 0x20 || byte === 0x7f) return `'\\x${byte.toString(16).padStart(2, '0')}'`;
  if ((byte >= 0x80 && byte < 0xa0) || byte === 0xad) return `'\\u00${byte.toString(16)}'`;
  return `'${String.fromCharCode(byte)}'`;
}

function invalid(codePoint: number, context: string): JsonSyntaxError {
  return new JsonSyntaxError(`invalid character ${quoteChar(codePoint)} ${context}`);
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Reads the first JSON value of `text` starting at `from`; what follows it is not looked at (as a
 * Go json.Decoder reading one value). Returns the value and where it ended, or `undefined` when
 * there is nothing but whitespace (Go's io.EOF). Truncated input fails with "unexpected EOF".
 */
export function readJsonValue(text: string, from = 0): { value: JsonValue; end: number } | undefined {
  const reader = new Reader(text, from);
  reader.skipWhitespace();
  if (reader.at >= text.length) return undefined;
  const value = reader.value();
  return { value, end: reader.at };
}

/** Parses a whole text as one value, as json.Unmarshal does (used for strings holding numbers). */
export function parseJsonText(text: string): JsonValue {
  const reader = new Reader(text, 0);
  reader.skipWhitespace();
  if (reader.at >= text.length) throw new JsonSyntaxError('unexpected end of JSON input');
  let value: JsonValue;
  try {
    value = reader.value();
  } catch (error) {
    if (error instanceof JsonSyntaxError && error.message === 'unexpected EOF') throw new JsonSyntaxError('unexpected end of JSON input');
    throw error;
  }
  reader.skipWhitespace();
  if (reader.at < text.length) throw invalid(text.codePointAt(reader.at)!, 'after top-level value');
  return value;
}

class Reader {
  constructor(
    private readonly text: string,
    public at: number,
  ) {}

  skipWhitespace(): void {
    while (this.at < this.text.length && WHITESPACE.has(this.text.charCodeAt(this.at))) this.at++;
  }

  /** The syntax error for the character at the current position. */
  private invalidHere(context: string): JsonSyntaxError {
    return invalid(this.text.codePointAt(this.at)!, context);
  }

  private peek(): number {
    if (this.at >= this.text.length) throw new JsonSyntaxError('unexpected EOF');
    return this.text.charCodeAt(this.at);
  }

  value(): JsonValue {
    const c = this.peek();
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c === 0x74) return this.literal('true', true);
    if (c === 0x66) return this.literal('false', false);
    if (c === 0x6e) return this.literal('null', null);
    throw this.invalidHere('looking for beginning of value');
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    for (let i = 1; i < word.length; i++) {
      this.at++;
      const c = this.peek();
      if (c !== word.charCodeAt(i)) throw this.invalidHere(`in literal ${word} (expecting ${quoteChar(word.charCodeAt(i))})`);
    }
    this.at++;
    return value;
  }

  private object(): { [key: string]: JsonValue } {
    const object: { [key: string]: JsonValue } = {};
    this.at++;
    this.skipWhitespace();
    if (this.peek() === 0x7d) {
      this.at++;
      return object;
    }
    for (;;) {
      this.skipWhitespace();
      const c = this.peek();
      if (c !== 0x22) throw this.invalidHere('looking for beginning of object key string');
      const key = this.string();
      this.skipWhitespace();
      const colon = this.peek();
      if (colon !== 0x3a) throw this.invalidHere('after object key');
      this.at++;
      this.skipWhitespace();
      object[key] = this.value();
      this.skipWhitespace();
      const next = this.peek();
      if (next !== 0x7d && next !== 0x2c) throw this.invalidHere('after object key:value pair');
      this.at++;
      if (next === 0x7d) return object;
    }
  }

  private array(): JsonValue[] {
    const array: JsonValue[] = [];
    this.at++;
    this.skipWhitespace();
    if (this.peek() === 0x5d) {
      this.at++;
      return array;
    }
    for (;;) {
      this.skipWhitespace();
      array.push(this.value());
      this.skipWhitespace();
      const next = this.peek();
      if (next !== 0x5d && next !== 0x2c) throw this.invalidHere('after array element');
      this.at++;
      if (next === 0x5d) return array;
    }
  }

  private string(): string {
    const start = ++this.at;
    // The common case, a string without escapes, is one indexOf and one slice.
    const quote = this.text.indexOf('"', start);
    const escape = this.text.indexOf('\\', start);
    if (quote >= 0 && (escape < 0 || escape > quote) && !hasControl(this.text, start, quote)) {
      this.at = quote + 1;
      return this.text.slice(start, quote);
    }
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === 0x22) {
        this.at++;
        return out;
      }
      if (c < 0x20) throw this.invalidHere('in string literal');
      if (c !== 0x5c) {
        out += this.text[this.at++];
        continue;
      }
      this.at++;
      const e = this.peek();
      const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
      if (simple[e] !== undefined) {
        this.at++;
        out += simple[e];
        continue;
      }
      if (e !== 0x75) throw this.invalidHere('in string escape code');
      this.at++;
      let unit = 0;
      for (let i = 0; i < 4; i++) {
        const h = this.peek();
        const digit = hexDigit(h);
        if (digit < 0) throw this.invalidHere('in \\u hexadecimal character escape');
        unit = unit * 16 + digit;
        this.at++;
      }
      out += String.fromCharCode(unit);
    }
  }

  private number(): JsonNumber {
    const start = this.at;
    if (this.peek() === 0x2d) {
      this.at++;
      const c = this.peek();
      if (!(c >= 0x30 && c <= 0x39)) throw this.invalidHere('in numeric literal');
    }
    if (this.peek() === 0x30) this.at++;
    else this.digits();
    if (this.at < this.text.length && this.text.charCodeAt(this.at) === 0x2e) {
      this.at++;
      const c = this.peek();
      if (!(c >= 0x30 && c <= 0x39)) throw this.invalidHere('after decimal point in numeric literal');
      this.digits();
    }
    if (this.at < this.text.length && (this.text.charCodeAt(this.at) | 0x20) === 0x65) {
      this.at++;
      let c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.at++;
        c = this.peek();
      }
      if (!(c >= 0x30 && c <= 0x39)) throw this.invalidHere('in exponent of numeric literal');
      this.digits();
    }
    return new JsonNumber(this.text.slice(start, this.at));
  }

  private digits(): void {
    while (this.at < this.text.length) {
      const c = this.text.charCodeAt(this.at);
      if (c < 0x30 || c > 0x39) return;
      this.at++;
    }
  }
}

function hasControl(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * A string as Go's encoding/json writes it: besides what JSON requires, <, > and & and the line
 * separators U+2028/U+2029 are escaped, and control characters other than \n, \r, \t as \u00XX.
 */
export function goJsonString(value: string): string {
  const quoted = JSON.stringify(value);
  if (!/[<>&\u2028\u2029]|\\[bf]/.test(quoted)) return quoted;
  // An escaped backslash is matched as a pair first, so a "b" that follows it stays a "b".
  return quoted.replace(/\\\\|\\[bf]|[<>&\u2028\u2029]/g, (match) => {
    if (match === '\\\\') return match;
    if (match === '\\b') return '\\u0008';
    if (match === '\\f') return '\\u000c';
    return `\\u${match.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

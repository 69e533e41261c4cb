// Small non-cryptographic hashes for the simulator's bookkeeping: entry fingerprints, log chain
// hashes (one value that stands for a whole log prefix), state machine digests and the trace hash
// that proves two runs of one seed were identical. Two independent 32-bit FNV-1a lanes make
// accidental collisions negligible for runs of this size.

const FNV_OFFSET_A = 0x811c9dc5;
const FNV_OFFSET_B = 0x01000193 ^ 0x5bd1e995;
const FNV_PRIME = 0x01000193;

export class Hasher {
  private a = FNV_OFFSET_A;
  private b = FNV_OFFSET_B;

  bytes(data: Uint8Array): this {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < data.length; i++) {
      a = Math.imul(a ^ data[i]!, FNV_PRIME);
      b = Math.imul(b ^ (data[i]! + 0x9e), 0x01000197);
    }
    this.a = a;
    this.b = b;
    return this;
  }

  string(text: string): this {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      a = Math.imul(a ^ code, FNV_PRIME);
      b = Math.imul(b ^ (code + 0x9e), 0x01000197);
    }
    this.a = a;
    this.b = b;
    return this;
  }

  number(value: number): this {
    return this.string(`${value};`);
  }

  digest(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0');
  }
}

/** The chain hash of a log prefix ending at (index, term) with `data`, given the previous prefix's. */
export function chainHash(previous: string, index: number, term: number, type: number, data: Uint8Array): string {
  return new Hasher().string(previous).number(index).number(term).number(type).bytes(data).digest();
}

/**
 * The run's event record: a hash of every event (equal seeds give equal digests), and, when a sink
 * is given (`--trace`), one line per event stamped with the simulator's time.
 */
export class Trace {
  private readonly hash = new Hasher();

  constructor(
    private readonly clock: () => number,
    private readonly sink?: (line: string) => void,
  ) {}

  event(text: string): void {
    this.hash.string(text);
    this.sink?.(`${this.clock()} ${text}`);
  }

  /** A line for the reader only (a status dump): not part of the hash. */
  note(text: string): void {
    this.sink?.(`${this.clock()} ${text}`);
  }

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  digest(): string {
    return this.hash.digest();
  }
}

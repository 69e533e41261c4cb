// A transaction builder: client.txn().if(...compares).then(...ops).else(...ops).commit().
import { header, idToWire, deleteResult, putResult, rangeResult, toBuffer, type Bytes, type DeleteResult, type Header, type PutResult, type RangeResult } from './types.js';

export type CompareOperator = '==' | '!=' | '>' | '<';
const RESULT: Record<CompareOperator, number> = { '==': 0, '>': 1, '<': 2, '!=': 3 };

/** One compare of a txn, in wire form. Build it with the `compare` helpers. */
export interface CompareSpec {
  wire: object;
}

function compareOf(target: number, field: string, key: Bytes, op: CompareOperator, operand: unknown, rangeEnd?: Bytes): CompareSpec {
  const wire: Record<string, unknown> = { key: toBuffer(key), target, result: RESULT[op], [field]: operand };
  if (rangeEnd !== undefined) wire['range_end'] = toBuffer(rangeEnd);
  return { wire };
}

export const compare = {
  version: (key: Bytes, op: CompareOperator, version: number) => compareOf(0, 'version', key, op, version),
  createRevision: (key: Bytes, op: CompareOperator, revision: number) => compareOf(1, 'create_revision', key, op, revision),
  modRevision: (key: Bytes, op: CompareOperator, revision: number) => compareOf(2, 'mod_revision', key, op, revision),
  value: (key: Bytes, op: CompareOperator, value: Bytes) => compareOf(3, 'value', key, op, toBuffer(value)),
  lease: (key: Bytes, op: CompareOperator, lease: bigint | number) => compareOf(4, 'lease', key, op, idToWire(lease)),
  /** The key does not exist (its version is 0). */
  missing: (key: Bytes) => compareOf(0, 'version', key, '==', 0),
};

/** One operation of a txn branch, in wire form. Build it with the `op` helpers. */
export interface OpSpec {
  wire: object;
  writes: boolean;
}

export const op = {
  get: (key: Bytes, options: { rangeEnd?: Bytes; limit?: number; revision?: number } = {}): OpSpec => ({
    writes: false,
    wire: {
      request_range: {
        key: toBuffer(key),
        range_end: options.rangeEnd === undefined ? undefined : toBuffer(options.rangeEnd),
        limit: options.limit ?? 0,
        revision: options.revision ?? 0,
      },
    },
  }),
  put: (key: Bytes, value: Bytes, options: { lease?: bigint | number; prevKv?: boolean } = {}): OpSpec => ({
    writes: true,
    wire: { request_put: { key: toBuffer(key), value: toBuffer(value), lease: idToWire(options.lease ?? 0), prev_kv: options.prevKv ?? false } },
  }),
  delete: (key: Bytes, options: { rangeEnd?: Bytes; prevKv?: boolean } = {}): OpSpec => ({
    writes: true,
    wire: {
      request_delete_range: {
        key: toBuffer(key),
        range_end: options.rangeEnd === undefined ? undefined : toBuffer(options.rangeEnd),
        prev_kv: options.prevKv ?? false,
      },
    },
  }),
};

export type OpResult =
  | { type: 'range'; range: RangeResult }
  | { type: 'put'; put: PutResult }
  | { type: 'delete'; delete: DeleteResult }
  | { type: 'txn'; txn: TxnResult };

export interface TxnResult {
  header: Header;
  succeeded: boolean;
  results: OpResult[];
}

export function txnResult(w: any): TxnResult {
  return { header: header(w.header), succeeded: w.succeeded, results: (w.responses ?? []).map(opResult) };
}

function opResult(w: any): OpResult {
  switch (w.response) {
    case 'response_range':
      return { type: 'range', range: rangeResult(w.response_range) };
    case 'response_put':
      return { type: 'put', put: putResult(w.response_put) };
    case 'response_delete_range':
      return { type: 'delete', delete: deleteResult(w.response_delete_range) };
    default:
      return { type: 'txn', txn: txnResult(w.response_txn) };
  }
}

export class TxnBuilder {
  private readonly compares: CompareSpec[] = [];
  private readonly success: OpSpec[] = [];
  private readonly failure: OpSpec[] = [];

  constructor(private readonly run: (request: object, writes: boolean) => Promise<TxnResult>) {}

  if(...compares: CompareSpec[]): this {
    this.compares.push(...compares);
    return this;
  }

  then(...ops: OpSpec[]): this {
    this.success.push(...ops);
    return this;
  }

  else(...ops: OpSpec[]): this {
    this.failure.push(...ops);
    return this;
  }

  /** Sends the txn. A txn that writes is not retried after an unknown outcome (see ClientOptions.retryWrites). */
  commit(): Promise<TxnResult> {
    const writes = [...this.success, ...this.failure].some((o) => o.writes);
    return this.run(
      { compare: this.compares.map((c) => c.wire), success: this.success.map((o) => o.wire), failure: this.failure.map((o) => o.wire) },
      writes,
    );
  }
}

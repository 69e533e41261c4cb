// The Maintenance service and grpc.health.v1.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { ErrorCode, LichenError } from '../../errors.js';
import { AlarmAction, type AlarmRequest } from '../backend.js';
import { HASHED_LENGTH_UNIT, SHA256_BYTES } from '../../backup/index.js';
import { toServiceError } from './errors.js';
import type { ServerCall, UnaryCallback } from './http2-server.js';
import { callerOf, checkRequireLeader, unary, unimplemented, type HandlerContext, type Implementation } from './handler.js';
import { SERVICE_NAMES } from './proto.js';
import { encodeHeader, toSafeInt, toSafeUint, type WireLong } from './wire.js';

/** Snapshot blobs are sent in pieces of at most this size (etcd uses 32 KiB). */
export const SNAPSHOT_CHUNK_BYTES_MAX = 64 * 1024;

export function maintenanceService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    Status: unary<object>(ctx, async () => {
      const s = await backend.status();
      return {
        header: encodeHeader(s.header),
        version: s.version,
        dbSize: s.dbSize,
        leader: s.leader,
        raftIndex: s.raftIndex,
        raftTerm: s.raftTerm,
        raftAppliedIndex: s.raftAppliedIndex,
        errors: s.errors,
        dbSizeInUse: s.dbSizeInUse,
        isLearner: s.isLearner,
      };
    }, { identify: false }),
    Alarm: unary<{ action: number; memberID: WireLong; alarm: number }>(ctx, async (w) => {
      const request: AlarmRequest = {
        action: (w.action ?? 0) as AlarmRequest['action'],
        memberId: toSafeUint(w.memberID, 'memberID'),
        alarm: (w.alarm ?? 0) as AlarmRequest['alarm'],
      };
      if (request.action > AlarmAction.DEACTIVATE || request.alarm > 2) {
        throw new LichenError(ErrorCode.InvalidArgument, 'etcdserver: unknown alarm action or type');
      }
      const r = await backend.alarm(request);
      return { header: encodeHeader(r.header), alarms: r.alarms.map((a) => ({ memberID: a.memberId, alarm: a.alarm })) };
    }),
    HashKV: unary<{ revision: WireLong }>(ctx, async (w, caller) => {
      const r = await backend.hashKV(Math.max(0, toSafeInt(w.revision, 'revision')), caller);
      return {
        header: encodeHeader(r.header),
        hash: r.hash >>> 0,
        compact_revision: r.compactRevision,
        hash_revision: r.hashRevision,
      };
    }),
    MoveLeader: unary<{ targetID: WireLong }>(ctx, async (w) => {
      const r = await backend.moveLeader(toSafeUint(w.targetID, 'targetID'));
      return { header: encodeHeader(r.header) };
    }, { identify: false }),
    // lmdb reuses the pages compaction frees, and the space quota counts pages in use, so the
    // quota recovers without a defragmentation (README, "Space quota, alarms and compaction").
    // The file keeps its size; answering success keeps etcd's runbook and etcdctl scripts working.
    Defragment: unary<object>(ctx, async (_w, caller) => ({ header: encodeHeader((await backend.defragment(caller)).header) })),
    Hash: unary<object>(ctx, async (_w, caller) => {
      const r = await backend.hash(caller);
      return { header: encodeHeader(r.header), hash: r.hash >>> 0 };
    }),
    Downgrade: unimplemented('lichen: Downgrade is not supported'),
    Snapshot: (call: ServerCall<object, object>) => void streamSnapshot(ctx, call),
  };
}

async function streamSnapshot(ctx: HandlerContext, call: ServerCall<object, object>): Promise<void> {
  let aborted = false;
  call.on('cancelled', () => void (aborted = true));
  try {
    checkRequireLeader(ctx, call.metadata);
    const snapshot = await ctx.backend.snapshot(await callerOf(ctx, call));
    const header = encodeHeader(snapshot.header);
    const hash = createHash('sha256');
    // `etcdctl snapshot restore` finds the hash by the length (see src/backup/trailer.ts). A bbolt
    // file is whole pages already; any other blob (the test double's) is padded with zero bytes.
    const paddedBytes = Math.ceil(snapshot.sizeBytes / HASHED_LENGTH_UNIT) * HASHED_LENGTH_UNIT;
    let remaining = paddedBytes + SHA256_BYTES;
    const send = async (blob: Uint8Array): Promise<void> => {
      remaining -= blob.length;
      if (remaining < 0) {
        throw new LichenError(ErrorCode.Internal, 'snapshot is longer than its announced size');
      }
      if (!call.write({ header, remaining_bytes: remaining, blob })) await once(call, 'drain');
    };
    for await (const chunk of snapshot.chunks) {
      if (aborted) return;
      hash.update(chunk);
      for (let offset = 0; offset < chunk.length; offset += SNAPSHOT_CHUNK_BYTES_MAX) {
        await send(chunk.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES_MAX));
      }
    }
    if (remaining !== paddedBytes - snapshot.sizeBytes + SHA256_BYTES) {
      throw new LichenError(ErrorCode.Internal, 'snapshot is shorter than its announced size');
    }
    if (paddedBytes > snapshot.sizeBytes) {
      const padding = new Uint8Array(paddedBytes - snapshot.sizeBytes);
      hash.update(padding);
      await send(padding);
    }
    await send(hash.digest());
    call.end();
  } catch (error) {
    if (!aborted) call.destroy(toServiceError(error));
  }
}

const HealthStatus = { SERVING: 1, NOT_SERVING: 2 } as const;

/** grpc.health.v1: SERVING while this member knows a leader. */
export function healthService(ctx: HandlerContext): Implementation {
  const known = new Set<string>(['', ...SERVICE_NAMES]);
  const statusNow = (): number => (ctx.backend.leaderId() !== 0 ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
  return {
    Check: (call: ServerCall<{ service: string }, object>, callback: UnaryCallback<object>) => {
      const service = call.request.service ?? '';
      if (!known.has(service)) {
        callback({ code: 5 /* NOT_FOUND */, details: `unknown service ${service}` });
        return;
      }
      callback(null, { status: statusNow() });
    },
    List: (_call: ServerCall<object, object>, callback: UnaryCallback<object>) => {
      const status = statusNow();
      callback(null, { statuses: Object.fromEntries([...known].map((name) => [name, { status }])) });
    },
    Watch: unimplemented('lichen: health Watch is not supported; poll Check'),
  };
}

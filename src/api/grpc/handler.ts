// Plumbing shared by the service implementations: the request context, the request-size check,
// the "require a leader" metadata etcd clients send, and the unary wrapper that maps errors.
import { ErrorCode, LichenError } from '../../errors.js';
import type { Caller, Credentials, EtcdBackend } from '../backend.js';
import { etcdError, toServiceError } from './errors.js';
import type { CallMetadata, Implementation, ServerCall, ServiceDefinition, UnaryCallback, UnaryHandler } from './http2-server.js';

export type { Implementation };

export interface HandlerContext {
  backend: EtcdBackend;
  /** Largest accepted request message, in encoded bytes (etcd's --max-request-bytes). */
  maxRequestBytes: number;
  /** Encoded size of a decoded request message when it is over maxRequestBytes (recorded when it was deserialized), else 0. */
  sizeOf(message: object): number;
}

/**
 * Remembers the request messages larger than the limit, so we can apply etcd's size limit
 * exactly. Only those: a WeakMap entry for every request was 3% of a member's CPU under 64
 * clients doing serializable ranges (profiled 2026-12-07), and a message within the limit needs no
 * record to pass the check.
 */
export class RequestSizes {
  private readonly oversized = new WeakMap<object, number>();

  constructor(private readonly maxRequestBytes: number) {}

  /** The message's encoded size if it is over the limit, else 0. */
  sizeOf(message: object): number {
    return this.oversized.get(message) ?? 0;
  }

  /** A copy of the definition whose deserializers record the size of what they decode when it is over the limit. */
  instrument(definition: ServiceDefinition): ServiceDefinition {
    const copy: Record<string, unknown> = {};
    for (const [name, method] of Object.entries(definition)) {
      const deserialize = method.requestDeserialize;
      copy[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          const message = deserialize(bytes) as object;
          if (bytes.length > this.maxRequestBytes && message !== null && typeof message === 'object') this.oversized.set(message, bytes.length);
          return message;
        },
      };
    }
    return copy as ServiceDefinition;
  }
}

export function checkRequestSize(ctx: HandlerContext, message: object): void {
  if (ctx.sizeOf(message) > ctx.maxRequestBytes) throw etcdError('requestTooLarge', ErrorCode.TooLarge);
}

/**
 * etcd clients attach "hasleader: true" to say "fail rather than wait when the member has no
 * leader" (clientv3.WithRequireLeader, used by etcdctl watch).
 */
export function checkRequireLeader(ctx: HandlerContext, metadata: CallMetadata): void {
  const values = metadata.get('hasleader');
  if (values.length > 0 && String(values[0]) === 'true' && ctx.backend.leaderId() === 0) {
    throw etcdError('noLeader', ErrorCode.Unavailable);
  }
}

/**
 * What the client presented: the token from metadata "token" (etcd's clients) or "authorization"
 * (etcd's grpc-gateway passes the HTTP Authorization header so), and the common name of its
 * verified TLS client certificate, which the TLS layer sets on the call.
 */
export function credentialsOf(call: { metadata: CallMetadata; peerCommonName?: string }): Credentials {
  return { token: call.metadata.first('token') ?? call.metadata.first('authorization'), commonName: call.peerCommonName };
}

/** The authenticated caller, undefined when no credentials came; throws for an invalid token (at once, or by rejecting when it had to wait). */
export function callerOf(ctx: HandlerContext, call: { metadata: CallMetadata; peerCommonName?: string }): Caller | undefined | Promise<Caller | undefined> {
  const token = call.metadata.first('token') ?? call.metadata.first('authorization');
  if (token === undefined && !call.peerCommonName) return undefined;
  return ctx.backend.identify({ token, commonName: call.peerCommonName });
}

export interface UnaryOptions {
  /**
   * Whether to check the caller's credentials (an invalid token fails the call). etcd 3.4 looks
   * at no credentials for some calls (Status, MemberList, MoveLeader, LeaseTimeToLive, LeaseLeases).
   */
  identify?: boolean;
  /**
   * Fail with code Unknown (keeping the message), as etcd's Lock and Election services do: they
   * run on etcd's in-process client, which turns every error it passes on into a plain Go error.
   */
  unknownCode?: boolean;
}

/** A unary handler: size, leader and credential checks, then `run`; any throw becomes an etcd error status. */
export function unary<Req extends object>(
  ctx: HandlerContext,
  run: (request: Req, caller: Caller | undefined, call: ServerCall<Req, object>) => Promise<object> | object,
  options: UnaryOptions = {},
): (call: ServerCall<Req, object>, callback: UnaryCallback<object>) => void {
  return (call, callback) => {
    const respond = async (): Promise<object> => {
      checkRequestSize(ctx, call.request);
      checkRequireLeader(ctx, call.metadata);
      if (!options.unknownCode) {
        const found = options.identify === false ? undefined : callerOf(ctx, call);
        return run(call.request, found instanceof Promise ? await found : found, call);
      }
      try {
        return await run(call.request, await callerOf(ctx, call), call);
      } catch (error) {
        throw new UnknownCodeError(toServiceError(error).details);
      }
    };
    respond().then(
      (response) => callback(null, response),
      (error: unknown) => callback(error instanceof UnknownCodeError ? { code: UNKNOWN, details: error.message } : toServiceError(error)),
    );
  };
}

/** A signal that aborts when the call ends before its handler does (the client cancelled, its deadline passed, the connection dropped). */
export function signalOf<Req, Res>(call: ServerCall<Req, Res>): AbortSignal {
  const controller = new AbortController();
  call.once('cancelled', () => controller.abort());
  return controller.signal;
}

const UNKNOWN = 2;

/** A failure whose message goes out as is, with code Unknown (see UnaryOptions.unknownCode). */
class UnknownCodeError extends Error {}

/** A handler for RPCs Lichen declares (for wire compatibility) but does not serve. */
export function unimplemented(message: string): UnaryHandler {
  return (_call, callback) => callback({ code: 12 /* UNIMPLEMENTED */, details: message });
}

export function invalidArgument(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, message);
}

// Reading a request body with a size limit. We refuse early when Content-Length is already too
// big, and otherwise stop buffering as soon as the running total passes the limit, so a client
// can never make us hold more than maxRequestBytes (+ one chunk) of its body in memory.
import type { IncomingMessage } from 'node:http';
import { ErrorCode, LichenError } from '../../errors.js';

export function tooLarge(maxRequestBytes: number): LichenError {
  return new LichenError(ErrorCode.TooLarge, `request body is larger than the limit of ${maxRequestBytes} bytes`, {
    limitBytes: maxRequestBytes,
  });
}

export function readBody(request: IncomingMessage, maxRequestBytes: number): Promise<Uint8Array> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxRequestBytes) return Promise.reject(tooLarge(maxRequestBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      if (error) reject(error);
      else resolve(new Uint8Array(Buffer.concat(chunks, total)));
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxRequestBytes) {
        chunks.length = 0;
        finish(tooLarge(maxRequestBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onError = (error: Error): void => finish(new LichenError(ErrorCode.InvalidArgument, `reading the request body failed: ${error.message}`));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
  });
}

// How etcd's gateway (grpc-gateway v1.9) reports a failed call: the gRPC status code mapped to an
// HTTP status, and the body {"error","message","code"} for a unary call, or the chunk
// {"error":{"grpc_code","http_code","message","http_status"}} that ends a stream.
import { STATUS_CODES } from 'node:http';
import { goJsonString } from './json-text.js';

/** grpc-gateway v1's HTTPStatusFromCode, by gRPC code. */
const HTTP_STATUS_BY_GRPC_CODE: readonly number[] = [
  200, // OK
  408, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  412, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

export function httpStatusOf(grpcCode: number): number {
  return HTTP_STATUS_BY_GRPC_CODE[grpcCode] ?? 500;
}

/** The body of a failed unary call. */
export function unaryErrorBody(grpcCode: number, message: string): string {
  const text = goJsonString(message);
  return `{"error":${text},"message":${text},"code":${grpcCode}}`;
}

/** The chunk that ends a failed stream (no newline follows it). */
export function streamErrorChunk(grpcCode: number, message: string): string {
  const http = httpStatusOf(grpcCode);
  return `{"error":{"grpc_code":${grpcCode},"http_code":${http},"message":${goJsonString(message)},"http_status":${goJsonString(STATUS_CODES[http] ?? '')}}}`;
}

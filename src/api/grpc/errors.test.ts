// The gRPC status of a LichenError: a named etcd error gets etcd's exact words whatever the
// thrower wrote; otherwise the code's row decides, passing the thrower's text where the code
// covers many situations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ErrorCode, ETCD_ERROR_NAMES, LichenError } from '../../errors.js';
import { ETCD_ERRORS, grpcErrorFor } from './errors.js';

test("a named etcd error is sent with etcd's exact words and code, not the thrower's", () => {
  const refused = new LichenError(ErrorCode.MembershipRefused, 'not enough started members: 1 of 2 remaining voters are active', {
    etcdError: 'memberNotEnoughStarted',
  });
  assert.deepEqual(grpcErrorFor(refused), { code: status.FAILED_PRECONDITION, message: 'etcdserver: re-configuration failed due to not enough started members' });
  const transfer = new LichenError(ErrorCode.Timeout, 'leadership transfer timed out', { etcdError: 'timeoutLeaderTransfer' });
  assert.deepEqual(grpcErrorFor(transfer), { code: status.UNAVAILABLE, message: 'etcdserver: request timed out, leader transfer took too long' });
});

test("without a name, the code decides; a code of many situations passes the thrower's text with etcd's prefix", () => {
  assert.deepEqual(grpcErrorFor(new LichenError(ErrorCode.Timeout, 'waited too long')), ETCD_ERRORS.timeout);
  assert.deepEqual(grpcErrorFor(new LichenError(ErrorCode.InvalidArgument, 'bad range')), { code: status.INVALID_ARGUMENT, message: 'etcdserver: bad range' });
  // A text that happens to be etcd's is not read as a name: only details.etcdError names.
  assert.deepEqual(grpcErrorFor(new LichenError(ErrorCode.InvalidArgument, 'etcdserver: key not found')), {
    code: status.INVALID_ARGUMENT,
    message: 'etcdserver: key not found',
  });
  assert.equal(grpcErrorFor(new RangeError('boom')).code, status.INTERNAL);
});

test('every name has a row with an etcd message', () => {
  // etcd's server errors, its auth package's, and the Lock and Election services' (concurrency, v3election).
  const etcdTexts = /^(etcdserver|auth|election|mutex): |^"leader" field must be provided$|^lost watcher waiting for delete$/;
  for (const name of ETCD_ERROR_NAMES) assert.match(ETCD_ERRORS[name].message, etcdTexts, name);
});

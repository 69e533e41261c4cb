import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unknownVariableWarnings } from './environment.js';

test('an unknown LICHEN_* variable is named in a warning; known ones and other variables are not', () => {
  // Regression (issue 13, item 10): unknown variables were silently ignored.
  const warnings = unknownVariableWarnings({
    LICHEN_ENDPOINT: '127.0.0.1:2379',
    LICHEN_ENDPOINTS: '127.0.0.1:2379',
    LICHEN_TIMEOUT: '1s',
    LICHEN_HISTORY_FILE: '',
    LICHEN_DATA_DIR: 'data',
    LICHEN_CONFIG: 'c.json',
    LICHEN_UNSAFE_WAL_NO_SYNC: '1',
    LICHEN_MAX_REQUEST_BYTE: '1',
    HOME: '/root',
  });
  assert.deepEqual(warnings, [
    "lichen: warning: ignoring LICHEN_ENDPOINT: Lichen reads no such variable (see the README's configuration section)",
    "lichen: warning: ignoring LICHEN_MAX_REQUEST_BYTE: Lichen reads no such variable (see the README's configuration section)",
  ]);
});

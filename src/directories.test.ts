import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDirectory } from './directories.js';

test('createDirectory makes missing parents, accepts an existing directory and names what is in the way', () => {
  const root = mkdtempSync(join(tmpdir(), 'lichen-dirs-'));
  try {
    createDirectory(join(root, 'a', 'b', 'c'));
    assert.ok(statSync(join(root, 'a', 'b', 'c')).isDirectory());
    createDirectory(join(root, 'a', 'b'));
    writeFileSync(join(root, 'file'), '');
    assert.throws(() => createDirectory(join(root, 'file', 'd')), /cannot create directory .*file\/d: ENOTDIR/);
    assert.throws(() => createDirectory('/proc/lichen-no-such/x'), /cannot create directory \/proc\/lichen-no-such\/x: ENOENT/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

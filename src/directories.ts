// Creating a directory and its missing parents, one level at a time. Node 20's own
// mkdir({ recursive: true }) never returns for a path under /proc (mkdir answers ENOENT there, and
// the recursion retries the parent, which exists, forever); here each level is tried once.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ErrorCode, LichenError } from './errors.js';

/** Creates `path` and its missing parents; throws a LichenError that names the path otherwise. */
export function createDirectory(path: string): void {
  const absolute = resolve(path);
  const missing: string[] = [];
  // Walk up to the first existing ancestor (at most one step per path component).
  for (let at = absolute; !isDirectory(at, path); at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && isDirectory(dir, path)) continue;
      throw new LichenError(ErrorCode.InvalidArgument, `cannot create directory ${path}: ${(error as Error).message}`);
    }
  }
}

function isDirectory(dir: string, asked: string): boolean {
  try {
    if (statSync(dir).isDirectory()) return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new LichenError(ErrorCode.InvalidArgument, `cannot create directory ${asked}: ${(error as Error).message}`);
  }
  throw new LichenError(ErrorCode.InvalidArgument, `cannot create directory ${asked}: ${dir} exists and is not a directory`);
}

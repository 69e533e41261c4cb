// The dashboard's built files (index.html, app.js, app.css from `npm run build`, in dist/dashboard
// of the package), served from memory: read once, gzipped once, answered with an ETag so a reload
// costs a 304.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ErrorCode, LichenError } from '../../../errors.js';

/**
 * dist/dashboard of the package. This file is four folders below the package root both as source
 * (src/api/http/dashboard) and built (dist/api/http/dashboard).
 */
export const ASSETS_DIR = fileURLToPath(new URL('../../../../dist/dashboard/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
  svg: 'image/svg+xml',
};

export interface Asset {
  contentType: string;
  body: Buffer;
  gzipped: Buffer;
  etag: string;
}

const ASSET_NAME = /^[a-z0-9-]+\.(html|js|css|png|svg)$/;

export class DashboardAssets {
  private readonly loaded = new Map<string, Promise<Asset>>();

  constructor(private readonly dir: string = ASSETS_DIR) {}

  /** The named file; NotFound for names outside the dashboard's files or when it was not built. */
  get(name: string): Promise<Asset> {
    if (!ASSET_NAME.test(name)) return Promise.reject(new LichenError(ErrorCode.NotFound, `no dashboard file ${JSON.stringify(name)}`));
    let asset = this.loaded.get(name);
    if (!asset) {
      asset = this.load(name);
      this.loaded.set(name, asset);
      // A failed read (not built yet) is tried again next time.
      asset.catch(() => this.loaded.delete(name));
    }
    return asset;
  }

  private async load(name: string): Promise<Asset> {
    let body: Buffer;
    try {
      body = await readFile(`${this.dir}${name}`);
    } catch {
      const hint = name === 'index.html' ? ' (the dashboard is not built: run `npm run build`)' : '';
      throw new LichenError(ErrorCode.NotFound, `no dashboard file ${JSON.stringify(name)}${hint}`);
    }
    return {
      contentType: CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)]!,
      body,
      gzipped: gzipSync(body),
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    };
  }
}

// bcrypt password hashes (bcryptjs), computed on a worker thread.
//
// Why a worker: one bcrypt at etcd's default cost 10 takes 110–190 ms of CPU here (bcryptjs,
// 2 cores, measured 2026-12-06). bcryptjs's async API runs it on the main thread in slices of
// up to 100 ms, so every Authenticate would stall all other requests that long. On a worker the
// event loop stays free and the hash runs on the other core. Jobs wait in a bounded queue: a
// flood of logins gets "too many requests" instead of unbounded memory and latency.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ErrorCode, LichenError } from '../errors.js';
import { passwordJobsQueuedMax } from '../limits.js';

/** bcrypt's cost range; etcd uses 10 (bcrypt.DefaultCost) unless --bcrypt-cost says otherwise. */
export const BCRYPT_COST_MIN = 4;
export const BCRYPT_COST_MAX = 31;
export const BCRYPT_COST_DEFAULT = 10;

// Plain JavaScript because a worker started from source (tests, through tsx) and from dist/
// must run the same code; it loads bcryptjs by the absolute path the main thread resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ id, password, hash, cost }) => {
  try {
    const result = hash === undefined ? bcrypt.hashSync(password, cost) : bcrypt.compareSync(password, hash);
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message ? error.message : error) });
  }
});
`;

interface Job {
  resolve: (result: string | boolean) => void;
  reject: (error: Error) => void;
}

let worker: Worker | undefined;
let nextJobId = 1;
const jobs = new Map<number, Job>();

function startWorker(): Worker {
  const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
  const started = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
  started.on('message', ({ id, result, error }: { id: number; result?: string | boolean; error?: string }) => {
    const job = jobs.get(id);
    jobs.delete(id);
    if (jobs.size === 0) started.unref();
    if (!job) return;
    if (error !== undefined) job.reject(new LichenError(ErrorCode.Internal, `bcrypt: ${error}`));
    else job.resolve(result!);
  });
  started.on('error', (error) => failAll(error));
  started.on('exit', () => {
    worker = undefined;
    failAll(new Error('the password worker stopped'));
  });
  return started;
}

function failAll(error: Error): void {
  for (const job of jobs.values()) job.reject(new LichenError(ErrorCode.Internal, `bcrypt: ${error.message}`));
  jobs.clear();
}

function run(message: { password: string; hash?: string; cost?: number }): Promise<string | boolean> {
  if (jobs.size >= passwordJobsQueuedMax) {
    return Promise.reject(new LichenError(ErrorCode.Overloaded, `too many password checks waiting (limit ${passwordJobsQueuedMax})`));
  }
  worker ??= startWorker();
  // The worker keeps the process alive only while a job waits for it, so an idle one never
  // holds up an exit.
  if (jobs.size === 0) worker.ref();
  const id = nextJobId++;
  return new Promise((resolve, reject) => {
    jobs.set(id, { resolve, reject });
    worker!.postMessage({ id, ...message });
  });
}

export async function hashPassword(password: string, cost: number): Promise<string> {
  return (await run({ password, cost })) as string;
}

/** Whether `password` matches a bcrypt `hash`; false for an empty or malformed hash. */
export async function checkPassword(password: string, hash: string): Promise<boolean> {
  if (hash === '') return false;
  return (await run({ password, hash })) as boolean;
}

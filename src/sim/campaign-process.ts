// The test suite's way to run a campaign: in a child process, through the simulator's CLI
// (main.ts). node:test tracks every promise of its own process with an async hook, and the
// members' Ready loops make millions of them: 300 seeds took 22.4 s of CPU inside a test file and
// 11.5 s in a process of their own (2026-12-06). (A worker thread would do, but Node 20 does not
// give workers the TypeScript loader the tests run under.)
import { execFile } from 'node:child_process';
import type { CampaignSummary } from './campaign.js';

/** A campaign summary is a few kilobytes; a failing seed adds its message (2,000 characters at most). */
const SUMMARY_BYTES_MAX = 64 * 1024 * 1024;

/** Runs `npm run sim -- <argv>` in a child process and returns its summary. */
export function runCampaignProcess(argv: string[]): Promise<CampaignSummary> {
  const main = new URL(`./main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...process.execArgv, main, ...argv], { maxBuffer: SUMMARY_BYTES_MAX }, (error, stdout, stderr) => {
      // The CLI exits with 1 when a seed failed; its summary names the seed.
      try {
        resolve(JSON.parse(stdout) as CampaignSummary);
      } catch {
        reject(new Error(`the simulator did not print a summary (${String(error)}): ${stderr.slice(0, 2000)}`));
      }
    });
  });
}

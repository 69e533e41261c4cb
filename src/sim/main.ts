// The simulator's command line: `npm run sim -- [--seeds N] [--seed S] [--start S] [--trace] [option flags]`.
// Prints one JSON summary; for each failing seed also one command that replays it exactly.
// `--trace` writes every event of the run (starts, crashes, messages delivered, entries applied,
// client operations and their answers) to standard error, one line each, stamped with the time.
import { runCampaign, parseArgs } from './campaign.js';

const args = parseArgs(process.argv.slice(2));
const summary = await runCampaign(args);
console.log(JSON.stringify(summary, null, 2));
process.exit(summary.failures.length > 0 ? 1 : 0);

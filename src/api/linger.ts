// Ending a connection with a last answer the client gets to read.
import type { Socket } from 'node:net';
import type { Timers } from './timers.js';

/** How long a connection we ended may stay open for the client to read our answer and close. */
export const LINGER_MS = 2000;

/**
 * Writes `answer`, ends the socket, and reads (and drops) what the client still sends until it
 * closes, for LINGER_MS at most: closing a socket with unread input makes the kernel send a
 * reset, which the client would see instead of the answer.
 */
export function endWithAnswer(socket: Socket, answer: string | Buffer, timers: Timers): void {
  socket.on('error', () => undefined);
  socket.end(answer);
  socket.resume();
  const linger = timers.setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => timers.clearTimeout(linger));
}

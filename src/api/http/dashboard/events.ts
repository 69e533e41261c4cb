// Server-sent events (the EventSource protocol of the HTML standard) on a node:http response: one
// writer per stream, bounded so that a page that stops reading is cut off instead of growing the
// member's memory.
import type { ServerResponse } from 'node:http';
import { eventStreamUnreadBytesMax } from '../../../limits.js';

/** How long a page waits before reconnecting a lost stream (sent as the stream's retry field). */
export const EVENT_STREAM_RETRY_MS = 1000;

export interface EventStream {
  /** Sends one event; returns false when the stream is closed (or was just closed for not reading). */
  send(event: string, data: string, id?: string): boolean;
  readonly closed: boolean;
  /** Half the unread allowance is used: a producer that can wait (a watch) should. */
  readonly behind: boolean;
  close(): void;
}

export const EVENT_STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  // Tells proxies (nginx) not to buffer the stream.
  'X-Accel-Buffering': 'no',
} as const;

/** Writes the stream's head and returns its writer; `onClose` runs once when it ends for any reason. */
export function openEventStream(response: ServerResponse, onClose: () => void): EventStream {
  let closed = false;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    onClose();
  };
  response.once('close', finish);
  response.writeHead(200, EVENT_STREAM_HEADERS);
  response.write(`retry: ${EVENT_STREAM_RETRY_MS}\n\n`);
  return {
    get closed() {
      return closed;
    },
    get behind() {
      return response.writableLength > eventStreamUnreadBytesMax / 2;
    },
    send(event, data, id) {
      if (closed) return false;
      if (response.writableLength > eventStreamUnreadBytesMax) {
        response.destroy();
        finish();
        return false;
      }
      // A data line may not hold a newline; JSON text never does, other text is split.
      const lines = data.split('\n').map((line) => `data: ${line}\n`).join('');
      response.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\n${lines}\n`);
      return true;
    },
    close() {
      response.end();
      finish();
    },
  };
}

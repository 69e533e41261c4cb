// Server-sent events over fetch rather than EventSource: EventSource cannot send headers, and the
// dashboard sends its login token as the Authorization header. Like EventSource, it reconnects
// after a loss (after the server's `retry`, 1 s) and sends the last event id it saw as Last-Event-ID.
import { authorization } from './api';

export interface StreamHandlers {
  /** One event: its name and data. */
  onEvent(event: string, data: string): void;
  /** The connection was lost or refused (`status` 0 when the server did not answer); a retry follows unless closed. */
  onError(message: string, status: number): void;
}

export interface Stream {
  close(): void;
}

const RETRY_MS_DEFAULT = 1000;

export function openStream(url: string, handlers: StreamHandlers): Stream {
  let closed = false;
  let lastEventId = '';
  let retryMs = RETRY_MS_DEFAULT;
  let controller: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const connect = async (): Promise<void> => {
    controller = new AbortController();
    try {
      const response = await fetch(url, {
        headers: { Accept: 'text/event-stream', ...authorization(), ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}) },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        const text = await response.text();
        let message = `HTTP ${response.status}`;
        try {
          message = (JSON.parse(text) as { error: { message: string } }).error.message;
        } catch {
          // Not our JSON error: the status says enough.
        }
        handlers.onError(message, response.status);
      } else {
        await read(response.body);
        if (!closed) handlers.onError('the stream ended', 0);
      }
    } catch (error) {
      if (closed) return;
      handlers.onError((error as Error).message, 0);
    }
    if (!closed) timer = setTimeout(() => void connect(), retryMs);
  };

  const read = async (body: ReadableStream<Uint8Array>): Promise<void> => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  };

  const dispatch = (block: string): void => {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') lastEventId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (data.length > 0) handlers.onEvent(event, data.join('\n'));
  };

  void connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      controller?.abort();
    },
  };
}

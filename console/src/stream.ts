// Reads GET /v1/ledger/stream (server-sent events) with fetch rather than EventSource, which
// cannot send the X-Custody-CSRF header the session cookie needs. Reconnects from the next index
// after a dropped connection.
import { headers } from './api';

export interface StreamedEntry {
  index: number;
  event: Record<string, unknown>;
}

export function streamLedger(
  from: number,
  onEntries: (batch: StreamedEntry[]) => void,
  onState: (s: string) => void,
): () => void {
  const ctl = new AbortController();
  let next = from;
  let stopped = false;

  async function run() {
    while (!stopped) {
      try {
        onState('connecting');
        const r = await fetch(`/v1/ledger/stream?from=${next}`, {
          credentials: 'same-origin',
          headers: headers({ Accept: 'text/event-stream' }),
          signal: ctl.signal,
        });
        if (!r.ok || !r.body) throw new Error(`stream answered ${r.status}`);
        onState('live');
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const batch: StreamedEntry[] = [];
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let data = '';
            let kind = 'message';
            for (const line of block.split('\n')) {
              if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).trimStart();
              else if (line.startsWith('event:')) kind = line.slice(6).trim();
            }
            if (kind !== 'entry' || !data) continue;
            const e = JSON.parse(data) as StreamedEntry;
            next = e.index + 1;
            batch.push(e);
          }
          if (batch.length) onEntries(batch);
        }
      } catch (e) {
        if (stopped) return;
        onState('reconnecting');
      }
      if (!stopped) await new Promise((res) => setTimeout(res, 1000));
    }
  }
  void run();
  return () => {
    stopped = true;
    ctl.abort();
  };
}

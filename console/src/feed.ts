// The feed's store: decisions and outcomes from the ledger stream, kept outside any component so
// the feed survives a visit to an action's view. Bounded (the oldest rows go first).
import { streamLedger, StreamedEntry } from './stream';
import { getText } from './api';

export interface Row {
  index: number;
  kind: string;
  time: string;
  agent: string;
  session: string;
  initiator: string;
  target: string;
  decision: string;
  event_id: string;
}

const kMaxRows = 100_000;
// The first connection starts this many entries back, so an empty-looking feed still shows
// what happened just before the console opened.
const kBacklog = 2_000;

type Obj = Record<string, any>;

// Decisions by action id, so an outcome (whose event names neither initiator nor target) shows
// those of its decision. Bounded like the rows.
const decisions = new Map<string, Row>();

function toRow(e: StreamedEntry): Row | null {
  const ev = e.event as Obj;
  const kind = String(ev.kind ?? '');
  if (!kind.startsWith('action.')) return null;
  const actor = (ev.actor ?? {}) as Obj;
  const init = (ev.initiator ?? {}) as Obj;
  const target = ((ev.request ?? {}) as Obj).target as Obj | undefined;
  const outcome = (ev.outcome ?? {}) as Obj;
  const decided = kind === 'action.decision' ? undefined : decisions.get(String(ev.action_id ?? ''));
  const row: Row = {
    index: e.index,
    kind,
    time: String(ev.time ?? ''),
    agent: String(actor.agent ?? ''),
    session: String(actor.session ?? (ev.session as Obj)?.sid ?? ''),
    initiator: init.id ? `${init.id} (${init.verification ?? '?'})` : (decided?.initiator ?? ''),
    target: String(target?.key ?? decided?.target ?? ''),
    decision: kind === 'action.decision' ? String(ev.decision ?? '') : String(outcome.status ?? kind),
    event_id: String(ev.event_id ?? ''),
  };
  if (kind === 'action.decision') {
    if (decisions.size >= kMaxRows) decisions.clear();
    decisions.set(row.event_id, row);
  }
  return row;
}

export const feed = {
  rows: [] as Row[], // oldest first
  state: 'idle',
  listeners: new Set<() => void>(),
  stop: null as null | (() => void),
};

let scheduled = false;
function notify() {
  if (scheduled) return;
  scheduled = true;
  // One render per frame however many events arrive: what keeps 1,000 events/s smooth.
  requestAnimationFrame(() => {
    scheduled = false;
    for (const f of feed.listeners) f();
  });
}

export async function startFeed() {
  if (feed.stop) return;
  let from = 0;
  try {
    const cp = await getText('/v1/ledger/checkpoint');
    const size = Number(cp.split('\n')[1] ?? 0);
    from = Math.max(0, size - kBacklog);
  } catch {
    from = 0; // an empty ledger has no checkpoint yet
  }
  feed.stop = streamLedger(
    from,
    (batch) => {
      for (const e of batch) {
        const r = toRow(e);
        if (r) feed.rows.push(r);
      }
      if (feed.rows.length > kMaxRows) feed.rows.splice(0, feed.rows.length - kMaxRows);
      notify();
    },
    (s) => {
      feed.state = s;
      notify();
    },
  );
}

export function stopFeed() {
  feed.stop?.();
  feed.stop = null;
  feed.rows = [];
  decisions.clear();
  feed.state = 'idle';
}

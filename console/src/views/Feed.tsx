// The live feed: decisions and outcomes newest first, filterable, virtualised (only the visible
// rows are in the DOM, and the store re-renders at most once a frame), so it keeps up with
// thousands of events a second.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { feed, Row } from '../feed';

const kRowHeight = 28;
const kOverscan = 10;

type Filters = Record<'agent' | 'session' | 'initiator' | 'target' | 'decision' | 'from' | 'to', string>;
const kEmpty: Filters = { agent: '', session: '', initiator: '', target: '', decision: '', from: '', to: '' };

// A datetime-local value (the browser's time zone) as Unix ms; NaN when empty or invalid.
function localMs(v: string): number {
  return v ? new Date(v).getTime() : NaN;
}

function matches(r: Row, f: Filters, from: number, to: number): boolean {
  const t = Number.isNaN(from) && Number.isNaN(to) ? 0 : Date.parse(r.time);
  // Comparisons with NaN are false: an empty bound excludes nothing.
  return (
    !(t < from) &&
    !(t > to) &&
    (!f.agent || r.agent.includes(f.agent)) &&
    (!f.session || r.session.includes(f.session)) &&
    (!f.initiator || r.initiator.includes(f.initiator)) &&
    (!f.target || r.target.includes(f.target)) &&
    (!f.decision || r.decision === f.decision)
  );
}

export function Feed() {
  const [version, setVersion] = useState(0);
  const [filters, setFilters] = useState<Filters>(kEmpty);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const f = () => setVersion((v) => v + 1);
    feed.listeners.add(f);
    return () => void feed.listeners.delete(f);
  }, []);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const active = Object.values(filters).some(Boolean);
  // Newest first: index i of the view is rows[n-1-i] (no copy when nothing is filtered).
  const view = useMemo(() => {
    if (!active) return null;
    const out: Row[] = [];
    const from = localMs(filters.from);
    // "to" is inclusive to the end of the second or minute given.
    const to = localMs(filters.to) + (filters.to.length > 16 ? 999 : 59_999);
    for (let i = feed.rows.length - 1; i >= 0; i--)
      if (matches(feed.rows[i], filters, from, to)) out.push(feed.rows[i]);
    return out;
  }, [version, filters]);
  const count = view ? view.length : feed.rows.length;
  const at = (i: number) => (view ? view[i] : feed.rows[feed.rows.length - 1 - i]);

  const first = Math.max(0, Math.floor(scroll / kRowHeight) - kOverscan);
  const last = Math.min(count, Math.ceil((scroll + height) / kRowHeight) + kOverscan);
  const visible = [];
  for (let i = first; i < last; i++) {
    const r = at(i);
    visible.push(
      <a
        class={'row ' + r.kind.replace('.', '-')}
        style={{ top: `${i * kRowHeight}px` }}
        href={`#/action/${r.event_id}`}
        key={r.index}
        data-testid="feed-row"
        data-kind={r.kind}
        data-event-id={r.event_id}
      >
        <span class="c-index">{r.index}</span>
        <span class="c-kind">{r.kind === 'action.decision' ? 'decision' : 'outcome'}</span>
        <span class="c-time">{r.time.replace('T', ' ').replace('Z', '')}</span>
        <span class="c-agent">{r.agent}</span>
        <span class="c-session" title={r.session}>
          {r.session.slice(-12)}
        </span>
        <span class="c-initiator">{r.initiator}</span>
        <span class="c-target">{r.target}</span>
        <span class={'c-decision d-' + r.decision}>{r.decision}</span>
      </a>,
    );
  }

  const field = (k: keyof Filters, label: string) => (
    <label>
      {label}
      <input
        value={filters[k]}
        data-testid={'filter-' + k}
        onInput={(e) => setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  const time = (k: 'from' | 'to', label: string) => (
    <label>
      {label} (local time)
      <input
        type="datetime-local"
        step={1}
        value={filters[k]}
        data-testid={'filter-' + k}
        onInput={(e) => setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  return (
    <section class="feed">
      <div class="toolbar">
        <h1>Live feed</h1>
        <span class={'state s-' + feed.state} data-testid="feed-state">
          {feed.state}
        </span>
        <span class="muted" data-testid="feed-count">
          {count} shown
        </span>
      </div>
      <div class="filters">
        {field('agent', 'Agent')}
        {field('session', 'Session')}
        {field('initiator', 'Initiator')}
        {field('target', 'Target')}
        {time('from', 'From')}
        {time('to', 'To')}
        <label>
          Decision
          <select
            value={filters.decision}
            data-testid="filter-decision"
            onChange={(e) => setFilters({ ...filters, decision: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
            <option value="approval_required">approval required</option>
            <option value="ok">outcome ok</option>
            <option value="error">outcome error</option>
          </select>
        </label>
      </div>
      <div class="row head">
        <span class="c-index">#</span>
        <span class="c-kind">kind</span>
        <span class="c-time">time (UTC)</span>
        <span class="c-agent">agent</span>
        <span class="c-session">session</span>
        <span class="c-initiator">initiator</span>
        <span class="c-target">target</span>
        <span class="c-decision">decision</span>
      </div>
      <div class="rows" ref={box} onScroll={(e) => setScroll((e.target as HTMLDivElement).scrollTop)}>
        <div class="spacer" style={{ height: `${count * kRowHeight}px` }}>
          {visible}
        </div>
        {count === 0 && <p class="muted empty">No decisions yet. They appear here as agents act.</p>}
      </div>
    </section>
  );
}

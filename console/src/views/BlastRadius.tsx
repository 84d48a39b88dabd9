// Blast radius of an agent, a session tree or a human (GET /v1/blast-radius): what the active
// policies would let it reach (potential) against what it did try (actual), as a graph and as a
// table; and, per agent, granted against used (GET /v1/review/{agent}) with the grants never
// used marked as removal candidates.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { drawGraph, Drawn, GEdge, GNode } from '../graph';
import '../graphs.css';

type Obj = Record<string, any>;
const errText = (e: unknown) => (e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));

interface Row {
  target: string;
  potential: boolean;
  potentialActions: string[];
  agents: Set<string>;
  count: number;
  denied: number;
  held: number;
  last: string;
}

function rowsOf(br: Obj): Row[] {
  const rows = new Map<string, Row>();
  const row = (t: string) => {
    if (!rows.has(t))
      rows.set(t, { target: t, potential: false, potentialActions: [], agents: new Set(), count: 0, denied: 0, held: 0, last: '' });
    return rows.get(t)!;
  };
  for (const p of br.potential ?? []) {
    const r = row(p.target);
    r.potential = true;
    r.potentialActions = p.actions ?? [];
    for (const a of p.agents ?? []) r.agents.add(a);
  }
  for (const a of br.actual ?? []) {
    const r = row(a.target);
    r.count = a.count;
    r.denied = a.denied;
    r.held = a.held_for_approval ?? 0;
    r.last = a.last ?? '';
    for (const g of a.agents ?? []) r.agents.add(g);
  }
  // Used first (most calls), then reachable but never used.
  return [...rows.values()].sort((x, y) => y.count + y.denied - (x.count + x.denied) || x.target.localeCompare(y.target));
}

// A target key names a tool as <server>/<tool>; resources, prompts and Cedar entities otherwise.
const isTool = (t: string) => /^[^/:]+\/[^:]+$/.test(t);

// subject -> agents -> targets; an agent -> target edge for what it can reach (potential,
// dashed) and for what it tried (actual: green when allowed at least once, red when only denied).
function graphOf(br: Obj): { nodes: GNode[]; edges: GEdge[] } {
  const subject = `subject:${br.kind}:${br.id}`;
  const nodes = new Map<string, GNode>();
  const edges: GEdge[] = [];
  nodes.set(subject, { id: subject, label: `${br.kind} ${br.id}`, type: 'subject', layer: 0 });
  const agent = (a: string) => {
    const id = 'agent:' + a;
    if (!nodes.has(id)) {
      nodes.set(id, { id, label: a, type: 'agent', layer: 1 });
      edges.push({ from: subject, to: id, type: 'in_play' });
    }
    return id;
  };
  const target = (t: string) => {
    const id = 'target:' + t;
    if (!nodes.has(id)) nodes.set(id, { id, label: t, type: isTool(t) ? 'tool' : 'resource', layer: 2 });
    return id;
  };
  for (const a of br.agents ?? []) {
    const an = agent(a.agent);
    for (const r of a.reachable ?? []) edges.push({ from: an, to: target(r.target), type: 'potential' });
  }
  for (const act of br.actual ?? []) {
    for (const a of act.agents ?? []) {
      edges.push({ from: agent(a), to: target(act.target), type: act.count > 0 ? 'allowed' : 'denied' });
    }
  }
  return { nodes: [...nodes.values()], edges };
}

const EDGE_COLORS: Record<string, string> = { potential: '#9aa3b5', allowed: '#0f7b3f', denied: '#b42318', in_play: '#1d2230' };

function Review({ agent }: { agent: string }) {
  const [r, setR] = useState<Obj | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    getJson<Obj>(`/v1/review/${encodeURIComponent(agent)}`)
      .then(setR)
      .catch((e) => setError(errText(e)));
  }, [agent]);
  if (error) return <p class="error">{agent}: {error}</p>;
  if (!r) return <p class="muted">{agent}: loading…</p>;
  const candidates = new Set<string>(r.removal_candidates ?? []);
  return (
    <div class="review" data-testid="review" data-agent={agent}>
      <h3>
        {agent} <span class="muted small">{r.allowed_actions} allowed actions</span>
      </h3>
      <table class="grid">
        <thead>
          <tr>
            <th>Granted scope</th>
            <th>Used</th>
            <th>Calls</th>
            <th>Targets used</th>
          </tr>
        </thead>
        <tbody>
          {r.grants.map((g: Obj) => (
            <tr data-testid="grant" data-scope={g.scope} data-used={String(g.used)}>
              <td class="mono">{g.scope}</td>
              <td>
                {g.used ? (
                  'yes'
                ) : candidates.has(g.scope) ? (
                  <span class="status st-revoked" data-testid="removal-candidate">
                    never used: removal candidate
                  </span>
                ) : (
                  'no'
                )}
              </td>
              <td>{g.calls}</td>
              <td class="small">{g.targets.map((t: Obj) => `${t.target} (${t.count})`).join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {(r.used_outside_grants ?? []).length > 0 && (
        <p class="error small">Used outside any current grant: {r.used_outside_grants.join(', ')}</p>
      )}
    </div>
  );
}

export function BlastRadius({ kind: kind0, id: id0 }: { kind?: string; id?: string }) {
  const [kind, setKind] = useState(kind0 ?? 'agent');
  const [id, setId] = useState(id0 ?? '');
  const [br, setBr] = useState<Obj | null>(null);
  const [error, setError] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    setKind(kind0 ?? 'agent');
    setId(id0 ?? '');
    setBr(null);
    setError('');
    if (!kind0 || !id0) return;
    let live = true;
    getJson<Obj>(`/v1/blast-radius?kind=${encodeURIComponent(kind0)}&id=${encodeURIComponent(id0)}`)
      .then((r) => live && setBr(r))
      .catch((e) => live && setError(errText(e)));
    return () => {
      live = false;
    };
  }, [kind0, id0]);
  useEffect(() => {
    if (!br || !box.current) return;
    let drawn: Drawn | null = null;
    let live = true;
    const { nodes, edges } = graphOf(br);
    delete box.current.dataset.rendered;
    drawGraph(box.current, nodes, edges, {
      edgeColor: (e) => EDGE_COLORS[e.type] ?? '#b8bfcc',
      edgeDashed: (e) => e.type === 'potential',
      onSelect: setSelected,
    })
      .then((d) => {
        if (!live) return d.destroy();
        drawn = d;
        // Which answer is drawn, for whoever waits for this one (the browser test).
        if (box.current) box.current.dataset.subject = `${br.kind}:${br.id}`;
      })
      .catch((e) => setError('cannot draw the graph: ' + String(e)));
    return () => {
      live = false;
      drawn?.destroy();
    };
  }, [br]);
  const rows = br ? rowsOf(br) : [];
  const used = rows.filter((r) => r.count > 0).length;
  return (
    <div class="blast">
      <div class="toolbar">
        <h1>Blast radius</h1>
      </div>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (id.trim()) location.hash = `#/blast/${kind}/${encodeURIComponent(id.trim())}`;
        }}
      >
        <label>
          Of
          <select data-testid="blast-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="agent">an agent</option>
            <option value="session">a session tree</option>
            <option value="user">a human (initiator)</option>
          </select>
        </label>
        <label>
          Name, session id or initiator
          <input data-testid="blast-id" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" data-testid="blast-go">
          Show
        </button>
      </form>
      {error && (
        <p class="error" data-testid="blast-error">
          {error}
        </p>
      )}
      {br && (
        <>
          <p data-testid="blast-summary">
            <strong>
              {br.kind} {br.id}
            </strong>
            : {br.sessions.length} session(s) in play, {br.agents.length} agent(s);{' '}
            <strong>{br.potential.length}</strong> target(s) reachable now (potential), <strong>{used}</strong> used
            and {br.actual.length - used} only denied or held (actual).{' '}
            {br.contained && (
              <span class="status st-revoked" data-testid="blast-contained">
                contained
              </span>
            )}
          </p>
          {(br.notes ?? []).map((n: string) => (
            <p class="muted small">{n}</p>
          ))}
          <div class="legend small">
            <span class="lg potential">potential (policies would allow)</span>
            <span class="lg allowed">used (allowed)</span>
            <span class="lg denied">tried, denied</span>
            {selected && <span class="muted"> selected: {selected.replace(/^[a-z]+:/, '')}</span>}
          </div>
        </>
      )}
      <div class="graph-box small-graph" ref={box} data-testid="blast-graph" hidden={!br} />
      {br && (
        <div class="card">
          <h2>Potential against actual</h2>
          <table class="grid" data-testid="blast-table">
            <thead>
              <tr>
                <th>Target</th>
                <th>Potential</th>
                <th>Allowed</th>
                <th>Denied</th>
                <th>Held</th>
                <th>Last attempt</th>
                <th>Agents</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr data-testid="blast-row" data-target={r.target}>
                  <td class="mono">{r.target}</td>
                  <td>{r.potential ? r.potentialActions.join(', ') || 'yes' : <span class="muted">no</span>}</td>
                  <td class={r.count ? 'd-allow' : ''}>{r.count}</td>
                  <td class={r.denied ? 'd-deny' : ''}>{r.denied}</td>
                  <td>{r.held}</td>
                  <td class="small">{r.last}</td>
                  <td class="small">{[...r.agents].join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {br && br.agents.length > 0 && (
        <div class="card" data-testid="granted-vs-used">
          <h2>Granted against used</h2>
          {br.agents.slice(0, 25).map((a: Obj) => (
            <Review agent={a.agent} />
          ))}
          {br.agents.length > 25 && <p class="muted">{br.agents.length - 25} more agents: open each agent's blast radius.</p>}
        </div>
      )}
    </div>
  );
}

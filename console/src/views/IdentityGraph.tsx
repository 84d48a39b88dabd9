// The identity graph (GET /v1/graph): humans and other initiators -> the sessions they started
// (and delegated sessions) -> the agents that acted -> the tools and resources they used.
// Readable at thousands of nodes: laid out in layers (../graph.ts), labels drawn only when large
// enough to read, filterable by node type and by name (a match keeps its neighbours), and a
// click on a node fades everything but its neighbourhood and says what it is.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { drawGraph, Drawn, GEdge, GNode } from '../graph';
import '../graphs.css';

type Obj = Record<string, any>;
const TYPES = ['human', 'initiator', 'session', 'agent', 'tool', 'resource'];
const LAYER: Record<string, number> = { human: 0, initiator: 0, session: 1, agent: 2, tool: 3, resource: 3 };

export function IdentityGraph() {
  const [graph, setGraph] = useState<Obj | null>(null);
  const [error, setError] = useState('');
  const [types, setTypes] = useState<Set<string>>(new Set(TYPES));
  const [text, setText] = useState('');
  const [applied, setApplied] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const view = useRef<Drawn | null>(null);
  useEffect(() => {
    getJson<Obj>('/v1/graph')
      .then(setGraph)
      .catch((e) => setError(e instanceof ApiError ? `${e.status}: ${e.message}` : String(e)));
  }, []);
  // Debounced: typing in the filter does not redraw 5,000 nodes on every key.
  useEffect(() => {
    const t = setTimeout(() => setApplied(text.trim().toLowerCase()), 250);
    return () => clearTimeout(t);
  }, [text]);

  const shown = useMemo(() => {
    if (!graph) return null;
    let nodes: Obj[] = graph.nodes.filter((n: Obj) => types.has(n.type));
    let ids = new Set(nodes.map((n) => n.id));
    let edges: Obj[] = graph.edges.filter((e: Obj) => ids.has(e.from) && ids.has(e.to));
    if (applied) {
      const match = new Set<string>();
      for (const n of nodes) if (String(n.label).toLowerCase().includes(applied)) match.add(n.id);
      const keep = new Set(match);
      for (const e of edges) {
        if (match.has(e.from) || match.has(e.to)) {
          keep.add(e.from);
          keep.add(e.to);
        }
      }
      nodes = nodes.filter((n) => keep.has(n.id));
      ids = keep;
      edges = edges.filter((e) => ids.has(e.from) && ids.has(e.to));
    }
    return { nodes, edges };
  }, [graph, types, applied]);

  useEffect(() => {
    if (!shown || !box.current) return;
    let drawn: Drawn | null = null;
    let live = true;
    // A session's label is the end of its id (UUIDv7: the start is the time, shared by
    // neighbours); the full id is in the details of a clicked node.
    const nodes: GNode[] = shown.nodes.map((n) => ({
      id: n.id,
      label: n.type === 'session' ? '…' + String(n.label).slice(-12) : n.label,
      type: n.type,
      layer: LAYER[n.type] ?? 4,
    }));
    const edges: GEdge[] = shown.edges.map((e) => ({ from: e.from, to: e.to, type: e.type }));
    delete box.current.dataset.rendered;
    setSelected(null);
    drawGraph(box.current, nodes, edges, {
      edgeColor: (e) => (e.type === 'used' ? '#c4b5fd' : e.type === 'delegated' ? '#f59e0b' : '#b8bfcc'),
      onSelect: setSelected,
    })
      .then((d) => {
        if (!live) return d.destroy();
        drawn = d;
        view.current = d;
      })
      .catch((e) => setError('cannot draw the graph: ' + String(e)));
    return () => {
      live = false;
      view.current = null;
      drawn?.destroy();
    };
  }, [shown]);

  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const n of graph?.nodes ?? []) c[n.type] = (c[n.type] ?? 0) + 1;
    return c;
  }, [graph]);
  const sel = selected ? graph?.nodes.find((n: Obj) => n.id === selected) : null;
  const selEdges = selected ? (graph?.edges ?? []).filter((e: Obj) => e.from === selected || e.to === selected) : [];
  const used = selEdges.filter((e: Obj) => e.type === 'used');
  const blastKind = sel && ({ agent: 'agent', session: 'session', human: 'user', initiator: 'user' } as Record<string, string>)[sel.type];

  return (
    <div class="identity">
      <div class="toolbar">
        <h1>Identity graph</h1>
        <span class="muted" data-testid="graph-count">
          {graph && shown ? `${shown.nodes.length} of ${graph.nodes.length} nodes, ${shown.edges.length} edges` : 'loading…'}
        </span>
      </div>
      <div class="filters">
        {TYPES.map((t) => (
          <label class="check">
            <span>
              <input
                type="checkbox"
                data-testid={'graph-type-' + t}
                checked={types.has(t)}
                onChange={(e) => {
                  const next = new Set(types);
                  if ((e.target as HTMLInputElement).checked) next.add(t);
                  else next.delete(t);
                  setTypes(next);
                }}
              />{' '}
              <span class={'swatch sw-' + t} /> {t} ({counts[t] ?? 0})
            </span>
          </label>
        ))}
        <span class="zoom">
          <button type="button" title="Zoom in" data-testid="graph-zoom-in" onClick={() => view.current?.zoom(2)}>
            +
          </button>
          <button type="button" title="Zoom out" data-testid="graph-zoom-out" onClick={() => view.current?.zoom(0.5)}>
            −
          </button>
          <button type="button" title="Show everything" data-testid="graph-fit" onClick={() => view.current?.fit()}>
            Fit
          </button>
        </span>
        <label>
          Name contains (keeps its neighbours)
          <input data-testid="graph-filter" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      <div class="graph-wrap">
        <div class="graph-box" ref={box} data-testid="identity-graph" />
        {sel && (
          <aside class="card graph-side" data-testid="graph-selected">
            <h2>
              <span class={'swatch sw-' + sel.type} /> {sel.type}
            </h2>
            <p class="mono">{sel.label}</p>
            {sel.verification && (
              <p>
                <span class={'badge v-' + sel.verification}>{sel.verification}</span>
                {sel.asserted_by ? ` by ${sel.asserted_by}` : ''} {sel.issuer ?? ''}
              </p>
            )}
            <p class="small">
              {selEdges.length} edge(s)
              {used.length > 0 &&
                `; calls: ${used.reduce((n: number, e: Obj) => n + e.allowed, 0)} allowed, ` +
                  `${used.reduce((n: number, e: Obj) => n + e.denied, 0)} denied`}
            </p>
            {sel.type === 'session' && <a href={'#/sessions/' + sel.label}>Open the session tree</a>}
            {blastKind && (
              <p>
                <a href={`#/blast/${blastKind}/${encodeURIComponent(sel.label)}`}>Blast radius</a>
              </p>
            )}
          </aside>
        )}
      </div>
      <p class="muted small">
        Scroll or + and − to zoom, drag to pan, click a node for its neighbourhood; labels appear as you zoom in.
      </p>
    </div>
  );
}

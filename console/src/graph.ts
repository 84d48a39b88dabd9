// Graphs drawn with cytoscape.js, loaded on first use by a dynamic import so the library is a
// chunk of its own and the first load (sign-in, feed) does not pay for it (docs/CONSOLE.md).
//
// The layout is computed here rather than by a force-directed layout: the identity graph is
// layered by nature (initiators -> sessions -> agents -> tools), and a layered grid is instant
// and stable at 5,000 nodes where cose would take seconds and move every time.
import type { Core, ElementDefinition, EventObject, StylesheetJson } from 'cytoscape';

export interface GNode {
  id: string;
  label: string;
  type: string;
  layer: number;
  extra?: Record<string, unknown>;
}
export interface GEdge {
  from: string;
  to: string;
  type: string;
  extra?: Record<string, unknown>;
}

const importCytoscape = () => import('cytoscape');
let loading: ReturnType<typeof importCytoscape> | null = null;

// Cytoscape prepends a <style> element to <head> unless one with this id exists; the CSP
// (style-src 'self') refuses inline styles, so a placeholder stands in for it and graphs.css
// carries the one rule it holds.
function placeholderStylesheet() {
  const id = '__________cytoscape_stylesheet';
  if (document.getElementById(id)) return;
  const m = document.createElement('meta');
  m.id = id;
  document.head.appendChild(m);
}

export function loadCytoscape() {
  placeholderStylesheet();
  loading ??= importCytoscape();
  return loading;
}

// Positions: one band of columns per layer, left to right; in a layer, nodes ordered by the mean
// position of their neighbours in earlier layers (fewer crossings), wrapped into columns of at
// most `rows` nodes so a layer of 2,000 sessions is a block, not a line 80,000 px tall.
export function layeredPositions(nodes: GNode[], edges: GEdge[]): Map<string, { x: number; y: number }> {
  const byLayer = new Map<number, GNode[]>();
  for (const n of nodes) {
    if (!byLayer.has(n.layer)) byLayer.set(n.layer, []);
    byLayer.get(n.layer)!.push(n);
  }
  const layerOf = new Map(nodes.map((n) => [n.id, n.layer]));
  const earlier = new Map<string, string[]>();
  for (const e of edges) {
    const a = layerOf.get(e.from);
    const b = layerOf.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    const [lo, hi] = a < b ? [e.from, e.to] : [e.to, e.from];
    if (!earlier.has(hi)) earlier.set(hi, []);
    earlier.get(hi)!.push(lo);
  }
  const gapY = 36;
  const gapX = 180;
  // About 1.6 times as wide as tall (a wide screen): rows ~ sqrt(n gapX / (1.6 gapY)).
  const rows = Math.max(12, Math.ceil(Math.sqrt((nodes.length * gapX) / (1.6 * gapY))));
  const pos = new Map<string, { x: number; y: number }>();
  const rank = new Map<string, number>();
  let x = 0;
  for (const layer of [...byLayer.keys()].sort((a, b) => a - b)) {
    const list = byLayer.get(layer)!;
    const key = (n: GNode) => {
      const ps = (earlier.get(n.id) ?? []).map((p) => rank.get(p)).filter((r): r is number => r !== undefined);
      return ps.length ? ps.reduce((s, r) => s + r, 0) / ps.length : Number.MAX_SAFE_INTEGER;
    };
    const keys = new Map(list.map((n) => [n.id, key(n)]));
    list.sort((a, b) => keys.get(a.id)! - keys.get(b.id)! || a.label.localeCompare(b.label));
    const cols = Math.ceil(list.length / rows);
    const height = Math.min(list.length, rows) * gapY;
    list.forEach((n, i) => {
      const col = Math.floor(i / rows);
      const row = i % rows;
      pos.set(n.id, { x: x + col * gapX, y: row * gapY - height / 2 });
      rank.set(n.id, i / Math.max(1, list.length - 1));
    });
    x += cols * gapX + gapX * 1.6;
  }
  return pos;
}

export const TYPE_COLORS: Record<string, string> = {
  human: '#2b59c3',
  initiator: '#8a5200',
  session: '#6b7280',
  agent: '#0f7b3f',
  tool: '#7c3aed',
  resource: '#b45309',
  subject: '#1d2230',
};

// The viewport that shows every position with a margin (what cy.fit() does, without measuring
// labels).
function fitTo(cy: Core, container: HTMLElement, pos: Map<string, { x: number; y: number }>) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const p of pos.values()) {
    x0 = Math.min(x0, p.x);
    y0 = Math.min(y0, p.y);
    x1 = Math.max(x1, p.x);
    y1 = Math.max(y1, p.y);
  }
  if (!isFinite(x0)) return;
  const pad = 40;
  const w = Math.max(1, container.clientWidth - 2 * pad);
  const h = Math.max(1, container.clientHeight - 2 * pad);
  const zoom = Math.min(2, Math.max(cy.minZoom(), Math.min(w / Math.max(1, x1 - x0), h / Math.max(1, y1 - y0))));
  cy.viewport({
    zoom,
    pan: { x: container.clientWidth / 2 - ((x0 + x1) / 2) * zoom, y: container.clientHeight / 2 - ((y0 + y1) / 2) * zoom },
  });
}

// The style sheet; `labels` false leaves nodes unlabelled.
function graphStyle(big: boolean, labels: boolean): StylesheetJson {
  return [
    {
      selector: 'node',
      style: {
        'background-color': 'data(color)',
        // Large graphs: labels only once zoomed in enough to read them (below); measuring
        // thousands of labels nobody can read costs seconds on the first frame.
        label: labels ? 'data(label)' : '',
        'font-size': 10,
        'min-zoomed-font-size': 7,
        'text-valign': 'bottom',
        'text-margin-y': 2,
        // Ellipsis measures every label; at thousands of nodes only the zoomed-in few show.
        'text-max-width': '140px',
        'text-wrap': big ? 'none' : 'ellipsis',
        width: 14,
        height: 14,
      },
    },
    { selector: 'node[type = "session"]', style: { shape: 'round-rectangle', width: 10, height: 10 } },
    { selector: 'node[type = "agent"]', style: { shape: 'hexagon', width: 20, height: 20 } },
    { selector: 'node[type = "tool"], node[type = "resource"]', style: { shape: 'diamond' } },
    { selector: 'node[type = "subject"]', style: { width: 26, height: 26, 'font-weight': 'bold' } },
    {
      selector: 'edge',
      style: {
        width: 1,
        'line-color': 'data(color)',
        'line-style': 'data(line)' as any,
        'curve-style': big ? 'haystack' : 'bezier',
        'target-arrow-shape': big ? 'none' : 'triangle',
        'target-arrow-color': 'data(color)',
        'arrow-scale': 0.6,
        opacity: 0.7,
      },
    },
    { selector: '.faded', style: { opacity: 0.08 } },
    { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#f59e0b' } },
    { selector: 'edge.hl', style: { width: 2, opacity: 1 } },
  ];
}

export interface Drawn {
  cy: Core;
  destroy(): void;
  // Zooms by `factor` about the middle of the view; fit() shows everything again.
  zoom(factor: number): void;
  fit(): void;
}

// Draws nodes and edges into `container` (laid out by layeredPositions) and calls `onRendered`
// with what cytoscape holds once it has drawn; `onSelect` with a node's id when one is clicked.
export async function drawGraph(
  container: HTMLElement,
  nodes: GNode[],
  edges: GEdge[],
  opts: { edgeColor?: (e: GEdge) => string; edgeDashed?: (e: GEdge) => boolean; onSelect?: (id: string | null) => void } = {},
): Promise<Drawn> {
  const { default: cytoscape } = await loadCytoscape();
  const pos = layeredPositions(nodes, edges);
  const ids = new Set(nodes.map((n) => n.id));
  const elements: ElementDefinition[] = [];
  for (const n of nodes) {
    elements.push({
      group: 'nodes',
      data: { id: n.id, label: n.label, type: n.type, color: TYPE_COLORS[n.type] ?? '#333' },
      position: pos.get(n.id),
    });
  }
  edges.forEach((e, i) => {
    if (!ids.has(e.from) || !ids.has(e.to)) return;
    elements.push({
      group: 'edges',
      data: {
        id: 'e' + i,
        source: e.from,
        target: e.to,
        type: e.type,
        color: opts.edgeColor?.(e) ?? '#b8bfcc',
        line: opts.edgeDashed?.(e) ? 'dashed' : 'solid',
      },
    });
  });
  const big = nodes.length > 800;
  const cy = cytoscape({
    container,
    elements,
    // Fitted below from the positions: cytoscape's own fit measures every label first.
    layout: { name: 'preset', fit: false },
    // Large graphs: draw a texture while panning or zooming, hide labels too small to read.
    textureOnViewport: big,
    hideEdgesOnViewport: big,
    pixelRatio: big ? 1 : 'auto',
    minZoom: 0.02,
    maxZoom: 4,
    wheelSensitivity: 0.3,
    boxSelectionEnabled: false,
    style: graphStyle(big, !big),
  });
  fitTo(cy, container, pos);
  container.dataset.labels = String(!big);
  if (big) {
    let labelled = false;
    cy.on('zoom', () => {
      // Where 'min-zoomed-font-size' (7 px for 10 px labels) starts drawing them.
      const want = cy.zoom() >= 0.7;
      if (want === labelled) return;
      labelled = want;
      cy.style(graphStyle(big, want));
      container.dataset.labels = String(want);
    });
  }
  cy.on('tap', 'node', (ev: EventObject) => {
    const n = ev.target;
    cy.elements().addClass('faded').removeClass('hl');
    const near = n.closedNeighborhood();
    near.removeClass('faded');
    near.edges().addClass('hl');
    opts.onSelect?.(n.id());
  });
  cy.on('tap', (ev: EventObject) => {
    if (ev.target !== cy) return;
    cy.elements().removeClass('faded').removeClass('hl');
    opts.onSelect?.(null);
  });
  // The counts cytoscape holds, for the reader (and the browser test), once it has drawn.
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
  container.dataset.rendered = 'true';
  return {
    cy,
    destroy: () => cy.destroy(),
    zoom: (factor) =>
      cy.zoom({
        level: Math.min(cy.maxZoom(), Math.max(cy.minZoom(), cy.zoom() * factor)),
        renderedPosition: { x: container.clientWidth / 2, y: container.clientHeight / 2 },
      }),
    fit: () => fitTo(cy, container, pos),
  };
}

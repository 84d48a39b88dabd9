// Cedar policy text cut into its statements, each with the id Custody gives it (its `@id("…")`
// annotation, else `policy<N>` by position, as src/policy/parser.cc names them), so the action
// view can highlight the determining policy inside the exact text of a policy-set version. And a
// line diff between two versions (longest common subsequence), for the policies view.

export interface Statement {
  id: string;
  start: number; // offsets into the text, the statement's annotations included
  end: number; // just past its `;`
}

// Splits at top-level `;`, skipping strings and comments (`//` to the end of the line).
export function statements(text: string): Statement[] {
  const out: Statement[] = [];
  let start = -1;
  let i = 0;
  let n = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (start < 0 && !/\s/.test(c)) start = i;
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (c === ';' && start >= 0) {
      const body = text.slice(start, i + 1);
      const m = /@id\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\)/.exec(body);
      out.push({ id: m ? m[1] : `policy${n}`, start, end: i + 1 });
      n++;
      start = -1;
    }
    i++;
  }
  return out;
}

export interface Piece {
  text: string;
  id?: string; // set when the piece is a statement
}

// The text as pieces: statements (with their ids) and what lies between them.
export function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  let at = 0;
  for (const s of statements(text)) {
    if (s.start > at) out.push({ text: text.slice(at, s.start) });
    out.push({ text: text.slice(s.start, s.end), id: s.id });
    at = s.end;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

export interface DiffLine {
  op: ' ' | '+' | '-';
  text: string;
}

// A line diff of a → b. Quadratic in memory for the lines between the common prefix and suffix,
// which is fine for policy texts (bounded at 4 MiB by the server, usually a few hundred lines).
export function diffLines(a: string, b: string): DiffLine[] {
  const x = a.split('\n');
  const y = b.split('\n');
  let pre = 0;
  while (pre < x.length && pre < y.length && x[pre] === y[pre]) pre++;
  let suf = 0;
  while (suf < x.length - pre && suf < y.length - pre && x[x.length - 1 - suf] === y[y.length - 1 - suf]) suf++;
  const xs = x.slice(pre, x.length - suf);
  const ys = y.slice(pre, y.length - suf);
  const m = xs.length;
  const n = ys.length;
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= m; i++) lcs.push(new Uint32Array(n + 1));
  for (let i = m - 1; i >= 0; i--)
    for (let j = n - 1; j >= 0; j--)
      lcs[i][j] = xs[i] === ys[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: DiffLine[] = x.slice(0, pre).map((t) => ({ op: ' ', text: t }) as DiffLine);
  let i = 0;
  let j = 0;
  while (i < m || j < n) {
    if (i < m && j < n && xs[i] === ys[j]) {
      out.push({ op: ' ', text: xs[i] });
      i++;
      j++;
    } else if (j < n && (i === m || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push({ op: '+', text: ys[j++] });
    } else {
      out.push({ op: '-', text: xs[i++] });
    }
  }
  for (const t of x.slice(x.length - suf)) out.push({ op: ' ', text: t });
  return out;
}

// Session trees (GET /v1/graph for the trees that have acted, GET /v1/sessions/{sid} for one
// tree): who initiated each, which agent and instance acted, and whether each session is live,
// expired or revoked. An admin can contain a session (its whole subtree) or an agent (disabled,
// every session revoked) through POST /v1/contain, after a confirmation with a required reason;
// the tree is then read again and shows revoked. A reader gets no contain button, and the API
// refuses a reader's console session anyway (admin only).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, getJson, request } from '../api';
import '../graphs.css';

type Obj = Record<string, any>;

interface Root {
  sid: string;
  agent: string;
  initiator: string;
  verification: string;
  children: number;
}

export function sessionStatus(s: Obj, nowS = Date.now() / 1000): 'live' | 'expired' | 'revoked' {
  if (s.status === 'revoked') return 'revoked';
  return s.expires_at <= nowS ? 'expired' : 'live';
}

const time = (unix: number) => (unix ? new Date(unix * 1000).toISOString().replace('.000Z', 'Z') : '');
const errText = (e: unknown) => (e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));

// The session trees that have acted, from the identity graph: a root is a session an initiator
// started; delegated sessions hang below it.
function rootsOf(graph: Obj): Root[] {
  const nodes = new Map<string, Obj>(graph.nodes.map((n: Obj) => [n.id, n]));
  const agentOf = new Map<string, string>();
  const started = new Map<string, Obj>();
  const kids = new Map<string, number>();
  for (const e of graph.edges as Obj[]) {
    if (e.type === 'acted_as') agentOf.set(e.from, nodes.get(e.to)?.label ?? '');
    if (e.type === 'started') started.set(e.to, nodes.get(e.from) ?? {});
    if (e.type === 'delegated') kids.set(e.from, (kids.get(e.from) ?? 0) + 1);
  }
  const roots: Root[] = [];
  for (const [id, init] of started) {
    roots.push({
      sid: id.slice('session:'.length),
      agent: agentOf.get(id) ?? '',
      initiator: init.label ?? '',
      verification: init.verification ?? '',
      children: kids.get(id) ?? 0,
    });
  }
  // Session ids are UUIDv7: newest first is descending order.
  return roots.sort((a, b) => (a.sid < b.sid ? 1 : -1));
}

export function ContainDialog({
  what,
  onClose,
  onContained,
}: {
  what: { session?: string; agent?: string };
  onClose: () => void;
  onContained: (result: Obj) => void;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const label = what.session ? `session ${what.session} and every session below it` : `agent ${what.agent}`;
  async function confirm(e: Event) {
    e.preventDefault();
    if (!reason.trim()) return;
    setBusy(true);
    setError('');
    try {
      const r = await request('/v1/contain', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...what, reason: reason.trim() }),
      });
      onContained(await r.json());
    } catch (err) {
      setError(errText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="modal-back">
      <form class="modal" role="dialog" aria-modal="true" data-testid="contain-dialog" onSubmit={confirm}>
        <h2>Contain {what.session ? 'a session' : 'an agent'}?</h2>
        <p>
          This revokes <strong>{label}</strong>
          {what.agent ? ' (disables it and revokes all its sessions)' : ''}. Their next call is refused and the
          containment is recorded in the ledger.
        </p>
        <label>
          Reason (required, recorded)
          <textarea
            data-testid="contain-reason"
            required
            maxLength={1024}
            value={reason}
            onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        {error && (
          <p class="error" data-testid="contain-error">
            {error}
          </p>
        )}
        <div class="modal-buttons">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="danger" data-testid="contain-confirm" disabled={busy || !reason.trim()}>
            Contain
          </button>
        </div>
      </form>
    </div>
  );
}

function Tree({ sid, admin }: { sid: string; admin: boolean }) {
  const [tree, setTree] = useState<Obj[] | null>(null);
  const [error, setError] = useState('');
  const [containing, setContaining] = useState<{ session?: string; agent?: string } | null>(null);
  const [done, setDone] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setError('');
    getJson<Obj>(`/v1/sessions/${encodeURIComponent(sid)}`)
      .then((r) => live && setTree(r.tree))
      .catch((e) => live && setError(errText(e)));
    return () => {
      live = false;
    };
  }, [sid, tick]);
  if (error) return <p class="error">{error}</p>;
  if (!tree) return <p class="muted">Loading…</p>;
  const root = tree[0];
  const rootStatus = sessionStatus(root);
  return (
    <div class="card tree" data-testid="session-tree" data-status={rootStatus}>
      <h2>
        Session tree <span class="mono">{root.sid}</span>{' '}
        <span class={'status st-' + rootStatus} data-testid="tree-status">
          {rootStatus}
        </span>
      </h2>
      <dl>
        <div class="field">
          <dt>Initiated by</dt>
          <dd>
            {root.initiator.id}{' '}
            <span class={'badge v-' + root.initiator.verification}>{root.initiator.verification}</span>
            {root.initiator.asserted_by ? ` by ${root.initiator.asserted_by}` : ''}
            {root.initiator.issuer ? ` (${root.initiator.issuer})` : ''}
          </dd>
        </div>
        <div class="field">
          <dt>Transaction</dt>
          <dd class="mono">{root.txn}</dd>
        </div>
      </dl>
      <p class="links">
        Blast radius: <a href={`#/blast/session/${encodeURIComponent(root.sid)}`}>of this tree</a> ·{' '}
        <a href={`#/blast/user/${encodeURIComponent(root.initiator.id)}`}>of {root.initiator.id}</a>
      </p>
      {done && (
        <p class="ok-note" data-testid="contain-done">
          {done}
        </p>
      )}
      <table class="grid">
        <thead>
          <tr>
            <th>Session</th>
            <th>Status</th>
            <th>Agent</th>
            <th>Instance</th>
            <th>Scopes</th>
            <th>Created</th>
            <th>Expires</th>
            {admin && <th />}
          </tr>
        </thead>
        <tbody>
          {tree.map((s) => {
            const st = sessionStatus(s);
            return (
              <tr data-testid="tree-session" data-sid={s.sid} data-status={st}>
                <td class="mono">
                  <span class={'indent d' + Math.min(s.depth, 6)}>{s.depth ? '└ ' : ''}</span>
                  {s.sid}
                </td>
                <td>
                  <span class={'status st-' + st} title={s.revoke_reason ?? ''}>
                    {st}
                  </span>
                  {s.revoke_reason && <div class="muted small">{s.revoke_reason}</div>}
                </td>
                <td>
                  <a href={`#/blast/agent/${encodeURIComponent(s.agent)}`}>{s.agent}</a>
                </td>
                <td class="mono small instance">{s.instance}</td>
                <td class="small">{(s.scopes ?? []).join(', ')}</td>
                <td class="small">{time(s.created_at)}</td>
                <td class="small">{time(s.expires_at)}</td>
                {admin && (
                  <td class="actions">
                    <button
                      data-testid="contain-session"
                      disabled={st !== 'live'}
                      onClick={() => setContaining({ session: s.sid })}
                    >
                      Contain session
                    </button>
                    <button data-testid="contain-agent" onClick={() => setContaining({ agent: s.agent })}>
                      Contain agent
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {containing && (
        <ContainDialog
          what={containing}
          onClose={() => setContaining(null)}
          onContained={(r) => {
            setContaining(null);
            setDone(
              `Contained ${r.scope} ${r.subject}: ${r.revoked_sessions.length} session(s) revoked (ledger index ${r.ledger_index}).`,
            );
            setTick((t) => t + 1);
          }}
        />
      )}
    </div>
  );
}

const PAGE = 50;

export function Sessions({ role, sid }: { role: string; sid?: string }) {
  const [roots, setRoots] = useState<Root[] | null>(null);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState('');
  const [page, setPage] = useState(0);
  const [open, setOpen] = useState('');
  useEffect(() => {
    getJson<Obj>('/v1/graph')
      .then((g) => setRoots(rootsOf(g)))
      .catch((e) => setError(errText(e)));
  }, []);
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const all = roots ?? [];
    return f ? all.filter((r) => `${r.sid} ${r.agent} ${r.initiator}`.toLowerCase().includes(f)) : all;
  }, [roots, filter]);
  const admin = role === 'admin';
  return (
    <div class="sessions">
      <div class="toolbar">
        <h1>Sessions</h1>
        <span class="muted" data-testid="sessions-count">
          {roots ? `${shown.length} session trees` : ''}
        </span>
      </div>
      <p class="muted">
        Every session tree that has acted, newest first. Open one for its sessions, their status and who started
        them{admin ? '; contain a session or an agent from there' : ''}.
      </p>
      <div class="filters">
        <label>
          Filter (session, agent, initiator)
          <input
            data-testid="sessions-filter"
            value={filter}
            onInput={(e) => {
              setFilter((e.target as HTMLInputElement).value);
              setPage(0);
            }}
          />
        </label>
        <form
          class="open-sid"
          onSubmit={(e) => {
            e.preventDefault();
            if (open.trim()) location.hash = '#/sessions/' + encodeURIComponent(open.trim());
          }}
        >
          <label>
            Open a session by id
            <input data-testid="session-open" value={open} onInput={(e) => setOpen((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Open</button>
        </form>
      </div>
      {error && <p class="error">{error}</p>}
      <div class="split">
        <div class="list">
          <table class="grid">
            <thead>
              <tr>
                <th>Root session</th>
                <th>Agent</th>
                <th>Initiated by</th>
                <th>Below</th>
              </tr>
            </thead>
            <tbody>
              {shown.slice(page * PAGE, page * PAGE + PAGE).map((r) => (
                <tr
                  data-testid="session-root"
                  data-sid={r.sid}
                  class={r.sid === sid ? 'selected' : ''}
                  onClick={() => (location.hash = '#/sessions/' + r.sid)}
                >
                  <td class="mono small">{r.sid}</td>
                  <td>{r.agent}</td>
                  <td>
                    {r.initiator} <span class={'badge v-' + r.verification}>{r.verification}</span>
                  </td>
                  <td>{r.children || ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {shown.length > PAGE && (
            <div class="pager">
              <button disabled={page === 0} onClick={() => setPage(page - 1)}>
                ‹
              </button>
              <span class="muted">
                {page * PAGE + 1}–{Math.min(shown.length, page * PAGE + PAGE)} of {shown.length}
              </span>
              <button disabled={(page + 1) * PAGE >= shown.length} onClick={() => setPage(page + 1)}>
                ›
              </button>
            </div>
          )}
        </div>
        <div class="detail">{sid ? <Tree sid={sid} admin={admin} /> : <p class="muted">Open a session tree.</p>}</div>
      </div>
    </div>
  );
}

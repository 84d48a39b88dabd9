// Policy-set versions (GET /v1/policies), which one is active (GET /v1/policies/active), and what
// changed between two of them: both texts fetched by hash (GET /v1/policies/{hash}) and diffed
// line by line here.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';
import { diffLines, DiffLine } from '../policytext';

type Obj = Record<string, any>;

const text = (hash: string) =>
  getJson<Obj>(`/v1/policies/${encodeURIComponent(hash)}`).then((p) => String(p.policies ?? ''));

export function Policies() {
  const [sets, setSets] = useState<Obj[] | null>(null);
  const [active, setActive] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [diff, setDiff] = useState<DiffLine[] | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    Promise.all([
      getJson<{ policy_sets: Obj[] }>('/v1/policies'),
      getJson<Obj>('/v1/policies/active').catch((e) => {
        if (e instanceof ApiError && e.status === 404) return {} as Obj;
        throw e;
      }),
    ])
      .then(([list, act]) => {
        setSets(list.policy_sets);
        setActive(String(act.hash ?? ''));
        // Newest first: by default, what the newest version changed from the one before it.
        setTo(list.policy_sets[0]?.hash ?? '');
        setFrom(list.policy_sets[1]?.hash ?? list.policy_sets[0]?.hash ?? '');
      })
      .catch((e) => setErr(e instanceof Error ? e.message : String(e)));
  }, []);
  useEffect(() => {
    if (!from || !to) return setDiff(null);
    setDiff(null);
    Promise.all([text(from), text(to)])
      .then(([a, b]) => setDiff(diffLines(a, b)))
      .catch((e) => setErr(e instanceof Error ? e.message : String(e)));
  }, [from, to]);
  if (err) return <p class="error">{err}</p>;
  if (!sets) return <p class="muted">Loading…</p>;
  const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  const pick = (value: string, set: (h: string) => void, testid: string) => (
    <select value={value} data-testid={testid} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
      {sets.map((p) => (
        <option value={p.hash}>
          {p.hash.slice(0, 12)}… {when(p.published_ms)}
          {p.hash === active ? ' (active)' : ''}
        </option>
      ))}
    </select>
  );
  const changed = diff ? diff.filter((d) => d.op !== ' ').length : 0;
  return (
    <section data-testid="policies">
      <h1>Policies</h1>
      <table class="grid">
        <thead>
          <tr>
            <th>version (hash)</th>
            <th>published</th>
            <th>by</th>
            <th>ledger index</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {sets.map((p) => (
            <tr data-testid="policy-version" data-hash={p.hash} data-active={String(p.hash === active)}>
              <td class="mono">{p.hash}</td>
              <td>{when(p.published_ms)}</td>
              <td class="mono">{p.published_by}</td>
              <td>{p.ledger_index}</td>
              <td>{p.hash === active && <span class="badge v-verified">active</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="card">
        <h2>What changed</h2>
        <div class="filters">
          <label>
            from {pick(from, setFrom, 'diff-from')}
          </label>
          <label>
            to {pick(to, setTo, 'diff-to')}
          </label>
        </div>
        {!diff ? (
          <p class="muted">{sets.length ? 'Comparing…' : 'No policy set has been published.'}</p>
        ) : (
          <>
            <p class="muted" data-testid="diff-summary">
              {changed === 0 ? 'No change.' : `${changed} changed ${changed === 1 ? 'line' : 'lines'}.`}
            </p>
            <pre class="diff" data-testid="diff">
              {diff.map((d) => (
                <div class={'dl ' + (d.op === '+' ? 'add' : d.op === '-' ? 'del' : '')} data-op={d.op}>
                  {d.op} {d.text}
                </div>
              ))}
            </pre>
          </>
        )}
      </div>
    </section>
  );
}

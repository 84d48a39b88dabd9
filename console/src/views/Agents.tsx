// The agent registry (GET /v1/agents): each agent with its owners, sponsor and revocation
// contact. A production (`prod`) agent missing any of them is flagged: nobody would answer for
// it, or nobody could be called to cut it off, in an incident. (Registration refuses a prod
// agent without owners or a revocation contact, not one without a sponsor; all four are checked
// here anyway, as the registry is read, not assumed.)
import { useEffect, useState } from 'preact/hooks';
import { getJson } from '../api';

type Obj = Record<string, any>;

const kAccountable: [string, string][] = [
  ['business_owner', 'business owner'],
  ['technical_owner', 'technical owner'],
  ['sponsor', 'sponsor'],
  ['revocation_contact', 'revocation contact'],
];

export function missingFor(a: Obj): string[] {
  return kAccountable.filter(([k]) => !String(a[k] ?? '').trim()).map(([, label]) => label);
}

export function Agents() {
  const [agents, setAgents] = useState<Obj[] | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    getJson<{ agents: Obj[] }>('/v1/agents')
      .then((r) => setAgents(r.agents))
      .catch((e) => setErr(e instanceof Error ? e.message : String(e)));
  }, []);
  if (err) return <p class="error">{err}</p>;
  if (!agents) return <p class="muted">Loading…</p>;
  const flagged = agents.filter((a) => a.environment === 'prod' && missingFor(a).length > 0);
  return (
    <section data-testid="agents">
      <h1>Agents</h1>
      <p class="muted">
        {agents.length} registered ·{' '}
        <span class={flagged.length ? 'error' : ''} data-testid="agents-flagged-count">
          {flagged.length} production {flagged.length === 1 ? 'agent' : 'agents'} missing an owner, sponsor or
          revocation contact
        </span>
      </p>
      <table class="grid">
        <thead>
          <tr>
            <th>agent</th>
            <th>environment</th>
            <th>business owner</th>
            <th>technical owner</th>
            <th>sponsor</th>
            <th>revocation contact</th>
            <th>grants</th>
            <th>state</th>
          </tr>
        </thead>
        <tbody>
          {agents.map((a) => {
            const missing = missingFor(a);
            const flag = a.environment === 'prod' && missing.length > 0;
            return (
              <tr
                class={flag ? 'flagged' : ''}
                data-testid="agent-row"
                data-agent={a.name}
                data-flagged={String(flag)}
              >
                <td>
                  <strong>{a.name}</strong>
                  {flag && (
                    <div class="flag" data-testid="agent-flag">
                      ⚠ production, missing: {missing.join(', ')}
                    </div>
                  )}
                </td>
                <td>{a.environment}</td>
                {kAccountable.map(([k]) => (
                  <td class={String(a[k] ?? '').trim() ? '' : 'missing'}>{a[k] || '—'}</td>
                ))}
                <td class="mono">{(a.grants ?? []).join(' ')}</td>
                <td>{a.disabled ? 'disabled' : 'active'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

// A database role's lease (GET /v1/credentials/{role}, docs/CREDENTIALS.md): the way from a role
// seen in the database back to the human. The issuing decision (#/action/<action_id>) shows who
// initiated the work and the delegation chain; the root session shows the rest of that work.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson } from '../api';

type Obj = Record<string, any>;
const errText = (e: unknown) => (e instanceof ApiError ? `${e.status}: ${e.message}` : String(e));

export function Credential({ role }: { role?: string }) {
  const [lease, setLease] = useState<Obj | null>(null);
  const [error, setError] = useState('');
  const [input, setInput] = useState(role ?? '');

  useEffect(() => {
    setLease(null);
    setError('');
    if (!role) return;
    getJson<Obj>(`/v1/credentials/${encodeURIComponent(role)}`)
      .then(setLease)
      .catch((e) => setError(errText(e)));
  }, [role]);

  const find = (e: Event) => {
    e.preventDefault();
    if (input.trim()) location.hash = `#/credential/${encodeURIComponent(input.trim())}`;
  };
  const row = (k: string, v: any, id: string) =>
    v === undefined || v === '' ? null : (
      <tr>
        <th>{k}</th>
        <td data-testid={`credential-${id}`}>{String(v)}</td>
      </tr>
    );

  return (
    <section>
      <h2>Database role</h2>
      <form onSubmit={find}>
        <input
          data-testid="credential-role-input"
          placeholder="Find a database role"
          size={60}
          value={input}
          onInput={(e) => setInput((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Find</button>
      </form>
      {error && (
        <p class="error" data-testid="credential-error">
          {error}
        </p>
      )}
      {lease && (
        <>
          <table data-testid="credential-lease">
            <tbody>
              {row('Role', lease.role, 'role')}
              {row('Database', lease.database, 'database')}
              {row('Access', lease.access, 'access')}
              {row('State', lease.state, 'state')}
              {row('Agent', lease.agent, 'agent')}
              {row('Initiator', lease.initiator, 'initiator')}
              {row('Session', lease.session, 'session')}
              {row('Root session', lease.root_session, 'root-session')}
              {row('Issued', lease.issued_at, 'issued')}
              {row('Expires', lease.expires_at, 'expires')}
              {row('Revoked', lease.revoked_at, 'revoked')}
              {row('Revoke reason', lease.revoke_reason, 'revoke-reason')}
            </tbody>
          </table>
          <p>
            <a href={`#/action/${encodeURIComponent(lease.action_id)}`} data-testid="credential-action">
              The issuing decision
            </a>
            {' · '}
            <a href={`#/sessions/${encodeURIComponent(lease.root_session)}`} data-testid="credential-root">
              The root session's work
            </a>
          </p>
        </>
      )}
    </section>
  );
}

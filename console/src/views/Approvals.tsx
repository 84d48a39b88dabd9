// The approvals queue (GET /v1/approvals): actions an `@approval` forbid holds until a person
// approves. An approver signed in here approves or denies with a reason (POST
// /v1/approvals/{id}:approve | :deny, the same call as the API's, recorded in the ledger as
// approval.approve / approval.deny); a reader or admin sees the queue only (deciding takes an
// approver token whose label is the person, docs/APPROVALS.md).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../api';

type Obj = Record<string, any>;

function Decide({ a, onDone }: { a: Obj; onDone: () => void }) {
  const [reason, setReason] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  async function decide(verb: 'approve' | 'deny') {
    setBusy(true);
    setErr('');
    try {
      await postJson(`/v1/approvals/${encodeURIComponent(a.id)}:${verb}`, { reason });
      onDone();
    } catch (e) {
      setErr(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="decide">
      <input
        placeholder="reason (recorded in the ledger)"
        value={reason}
        data-testid="approval-reason"
        onInput={(e) => setReason((e.target as HTMLInputElement).value)}
      />
      <button disabled={busy || !reason.trim()} data-testid="approval-approve" onClick={() => decide('approve')}>
        Approve
      </button>
      <button disabled={busy || !reason.trim()} data-testid="approval-deny" onClick={() => decide('deny')}>
        Deny
      </button>
      {err && (
        <p class="error" data-testid="approval-error">
          {err}
        </p>
      )}
    </div>
  );
}

export function Approvals({ role }: { role: string }) {
  const [state, setState] = useState('pending');
  const [rows, setRows] = useState<Obj[] | null>(null);
  const [err, setErr] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    setErr('');
    getJson<{ approvals: Obj[] }>('/v1/approvals' + (state ? `?state=${state}` : ''))
      .then((r) => setRows(r.approvals))
      .catch((e) => setErr(e instanceof Error ? e.message : String(e)));
  }, [state, tick]);
  // New requests arrive while the page is open.
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  const canDecide = role === 'approver';
  return (
    <section data-testid="approvals">
      <div class="toolbar">
        <h1>Approvals</h1>
        <select value={state} data-testid="approvals-state" onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
          <option value="pending">pending</option>
          <option value="approved">approved</option>
          <option value="denied">denied</option>
          <option value="used">used</option>
          <option value="expired">expired</option>
          <option value="cancelled">cancelled</option>
          <option value="">all</option>
        </select>
      </div>
      {!canDecide && (
        <p class="muted" data-testid="approvals-readonly">
          Signed in as {role}: the queue is shown; deciding takes an approver token (its label is the person).
        </p>
      )}
      {err && <p class="error">{err}</p>}
      {rows && rows.length === 0 && <p class="muted">No {state || ''} approvals.</p>}
      {rows?.map((a) => (
        <div class="card approval" data-testid="approval-row" data-approval-id={a.id} data-state={a.state}>
          <h2>
            <span class={'badge s-' + a.state}>{a.state}</span> {a.action} <span class="mono">{a.target}</span>
          </h2>
          <dl>
            <div class="field">
              <dt>agent</dt>
              <dd>
                {a.agent} <span class="mono muted">{a.instance}</span>
              </dd>
            </div>
            <div class="field">
              <dt>initiator</dt>
              <dd>{a.initiator}</dd>
            </div>
            <div class="field">
              <dt>session</dt>
              <dd class="mono">{a.session}</dd>
            </div>
            <div class="field">
              <dt>groups · policies</dt>
              <dd>
                {(a.groups ?? []).join(', ')} · {(a.policies ?? []).join(', ')}
              </dd>
            </div>
            <div class="field">
              <dt>held action</dt>
              <dd>
                <a href={`#/action/${a.request_action}`}>{a.request_action}</a>
              </dd>
            </div>
            <div class="field">
              <dt>{a.state === 'pending' ? 'decide by' : 'expires'}</dt>
              <dd>{a.expires_at}</dd>
            </div>
            {a.approver && (
              <div class="field" data-testid="approval-decided">
                <dt>decided by</dt>
                <dd>
                  {a.approver} ({a.verified_by}) at {a.decided_at}, ledger index {a.decided_index}: {a.reason}
                </dd>
              </div>
            )}
          </dl>
          {canDecide && a.state === 'pending' && <Decide a={a} onDone={() => setTick((n) => n + 1)} />}
        </div>
      ))}
    </section>
  );
}

// One action, answered (GET /v1/trace/{id}): who initiated it, which identity executed it, what
// allowed it, the delegation chain and the outcome; and its receipt verified in this browser
// against the ledger's verifier key (../verify.ts), green or red.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, getText } from '../api';
import { verifyReceipt, Verification } from '../verify';

type Obj = Record<string, any>;

function Field({ label, children, testid }: { label: string; children: any; testid?: string }) {
  return (
    <div class="field" data-testid={testid}>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function Receipt({ index }: { index: number }) {
  const [v, setV] = useState<Verification | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    let live = true;
    (async () => {
      const [entry, key] = await Promise.all([
        getJson<Obj>(`/v1/ledger/entries/${index}`),
        getText('/v1/ledger/key'),
      ]);
      const result = await verifyReceipt(entry.event, index, String(entry.receipt ?? ''), key);
      if (live) setV(result);
    })().catch((e) => live && setErr(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [index]);
  if (err)
    return (
      <div class="receipt bad" data-testid="receipt" data-verified="false">
        ✗ Receipt not checked: {err}
      </div>
    );
  if (!v)
    return (
      <div class="receipt" data-testid="receipt" data-verified="pending">
        Verifying receipt…
      </div>
    );
  return (
    <div class={'receipt ' + (v.ok ? 'good' : 'bad')} data-testid="receipt" data-verified={String(v.ok)}>
      <strong>{v.ok ? '✓ Receipt verified in this browser' : '✗ Receipt does NOT verify'}</strong>
      <ul>
        {v.steps.map((s) => (
          <li class={s.ok ? 'ok' : 'fail'}>
            {s.name}: <span class="mono">{s.detail}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function Action({ id }: { id: string }) {
  const [t, setT] = useState<Obj | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    setT(null);
    setErr('');
    getJson<Obj>(`/v1/trace/${encodeURIComponent(id)}`)
      .then(setT)
      .catch((e) => setErr(e instanceof ApiError ? e.message : String(e)));
  }, [id]);
  if (err) return <p class="error">{err}</p>;
  if (!t) return <p class="muted">Loading…</p>;
  const init = (t.initiated_by ?? {}) as Obj;
  const exec = (t.executed_by ?? {}) as Obj;
  const allowed = (t.allowed_by ?? {}) as Obj;
  const target = (t.request?.target ?? {}) as Obj;
  const chain = (allowed.delegation_chain ?? []) as Obj[];
  return (
    <section class="action" data-testid="action">
      <p>
        <a href="#/feed">← feed</a>
      </p>
      <h1>
        <span class={'badge d-' + t.decision} data-testid="action-decision">
          {t.decision}
        </span>{' '}
        {t.request?.action} <span class="mono">{target.key}</span>
      </h1>
      <p class="muted">
        {t.time} · ledger index {t.index} · via {t.request?.via} · event <span class="mono">{t.event_id}</span>
      </p>
      <Receipt index={Number(t.index)} />
      <div class="cards">
        <div class="card" data-testid="who-initiated">
          <h2>Who initiated it</h2>
          <dl>
            <Field label="initiator">{init.id || '—'}</Field>
            <Field label="issuer">{init.issuer || '—'}</Field>
            <Field label="how known">
              <span class={'badge v-' + init.verification}>{init.verification}</span>
              {init.asserted_by ? ` by ${init.asserted_by}` : ''}
            </Field>
          </dl>
        </div>
        <div class="card" data-testid="who-executed">
          <h2>Which identity executed it</h2>
          <dl>
            <Field label="agent">{exec.agent}</Field>
            <Field label="instance">
              <span class="mono">{exec.instance}</span>
            </Field>
            <Field label="session">
              <span class="mono">{exec.session}</span>
            </Field>
            <Field label="credential (jti)">
              <span class="mono">{exec.credential}</span>
            </Field>
          </dl>
        </div>
        <div class="card" data-testid="what-allowed">
          <h2>What allowed it</h2>
          <dl>
            <Field label="decision">{allowed.decision}</Field>
            <Field label="message">{t.message}</Field>
            <Field label="determining policies">{(allowed.determining_policies ?? []).join(', ') || 'none'}</Field>
            {(allowed.policy_errors ?? []).length > 0 && (
              <Field label="policy errors">{allowed.policy_errors.join('; ')}</Field>
            )}
            <Field label="policy set">
              <span class="mono">{allowed.policy_set?.hash}</span>
            </Field>
          </dl>
        </div>
      </div>
      <div class="card">
        <h2>Delegation chain</h2>
        <ol class="chain" data-testid="chain">
          {init.id && <li class="human">{init.id}</li>}
          {chain.map((c) => (
            <li>
              {c.agent ?? '?'} <span class="mono muted">{c.sid}</span>
            </li>
          ))}
        </ol>
      </div>
      <div class="card" data-testid="outcome">
        <h2>Outcome</h2>
        {t.outcome ? (
          <dl>
            <Field label="status">{t.outcome.status}</Field>
            {t.outcome.error && <Field label="error">{t.outcome.error}</Field>}
            {t.outcome.latency_ms !== undefined && <Field label="latency">{t.outcome.latency_ms} ms</Field>}
            <Field label="ledger index">{t.outcome.index}</Field>
          </dl>
        ) : (
          <p class="muted">No outcome recorded yet.</p>
        )}
      </div>
      <details class="card">
        <summary>Evaluated context</summary>
        <pre>{JSON.stringify(allowed.context ?? {}, null, 2)}</pre>
      </details>
    </section>
  );
}

// One action, answered (GET /v1/trace/{id}): who initiated it, which identity executed it, what
// allowed it, the delegation chain and the outcome; and its receipt verified in this browser
// against the ledger's verifier key (../verify.ts), green or red.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, getText } from '../api';
import { verifyReceipt, Verification } from '../verify';
import { pieces } from '../policytext';

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


// The policy text of the exact policy-set version the decision was made under (fetched by its
// hash), the determining policies highlighted in it.
function PolicyText({ hash, determining }: { hash: string; determining: string[] }) {
  const [text, setText] = useState<string | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    if (!hash) return;
    getJson<Obj>(`/v1/policies/${encodeURIComponent(hash)}`)
      .then((p) => setText(String(p.policies ?? '')))
      .catch((e) => setErr(e instanceof Error ? e.message : String(e)));
  }, [hash]);
  if (!hash) return <p class="muted">No policy set was in force.</p>;
  if (err) return <p class="error">Policy set {hash.slice(0, 12)}…: {err}</p>;
  if (text === null) return <p class="muted">Loading the policy set…</p>;
  const hit = new Set(determining);
  return (
    <pre class="policy" data-testid="policy-text">
      {pieces(text).map((p) =>
        p.id && hit.has(p.id) ? (
          <mark data-testid="policy-highlight" data-policy-id={p.id} title={`determining policy ${p.id}`}>
            {p.text}
          </mark>
        ) : (
          p.text
        ),
      )}
    </pre>
  );
}

// The action's parent (the decision it was made under, by trace) and its children: the actions
// of the sessions delegated below its session, each linked to its own answer.
function Related({ t }: { t: Obj }) {
  const [children, setChildren] = useState<Obj[] | null>(null);
  const sid = String(t.executed_by?.session ?? '');
  useEffect(() => {
    if (!sid) return setChildren([]);
    getJson<Obj>(`/v1/sessions/${encodeURIComponent(sid)}/events`)
      .then((r) => {
        const out: Obj[] = [];
        for (const s of (r.sessions ?? []) as Obj[]) {
          if (s.sid === sid) continue;
          for (const a of (s.actions ?? []) as Obj[]) out.push({ ...a, sid: s.sid });
        }
        setChildren(out);
      })
      .catch(() => setChildren([]));
  }, [sid]);
  const parent = String(t.trace?.parent_event ?? '');
  return (
    <div class="card" data-testid="related">
      <h2>Parent and child actions</h2>
      <dl>
        <Field label="parent">
          {parent ? (
            <a href={`#/action/${parent}`} data-testid="parent-link">
              {parent}
            </a>
          ) : (
            'none (a root action)'
          )}
        </Field>
        <Field label="children">
          {children === null
            ? '…'
            : children.length === 0
              ? 'none'
              : children.map((c) => (
                  <div>
                    <a href={`#/action/${c.action_id}`} data-testid="child-link">
                      {c.action} {c.target}
                    </a>{' '}
                    <span class={'d-' + c.decision}>{c.decision}</span>
                  </div>
                ))}
        </Field>
      </dl>
    </div>
  );
}

function ApprovalCard({ approvals }: { approvals: Obj[] }) {
  return (
    <div class="card" data-testid="approval">
      <h2>Approval</h2>
      {approvals.length === 0 ? (
        <p class="muted">None was involved.</p>
      ) : (
        approvals.map((a) => (
          <dl>
            <Field label="approval">
              <span class="mono">{a.id}</span> ({a.state}
              {a.outcome ? `, ${a.outcome}` : ''})
            </Field>
            <Field label="groups">{(a.groups ?? []).join(', ')}</Field>
            {a.approver && (
              <Field label="approved by">
                {a.approver} ({a.verified_by})
              </Field>
            )}
            {a.reason && <Field label="reason">{a.reason}</Field>}
            {a.execution && <Field label="execution">{a.execution}</Field>}
          </dl>
        ))
      )}
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
      <ApprovalCard approvals={(allowed.approvals ?? []) as Obj[]} />
      <Related t={t} />
      <div class="card" data-testid="policy">
        <h2>
          Policy set <span class="mono muted">{String(allowed.policy_set?.hash ?? '').slice(0, 16)}…</span>, the
          determining {(allowed.determining_policies ?? []).length === 1 ? 'policy' : 'policies'} highlighted
        </h2>
        <PolicyText
          hash={String(allowed.policy_set?.hash ?? '')}
          determining={(allowed.determining_policies ?? []) as string[]}
        />
      </div>
      <details class="card" open data-testid="context">
        <summary>Evaluated context</summary>
        <pre>{JSON.stringify(allowed.context ?? {}, null, 2)}</pre>
      </details>
    </section>
  );
}

// The ledger: its size and latest signed checkpoint (GET /v1/ledger/checkpoint), a server-side
// verification of every entry up to that checkpoint with a progress bar (POST /v1/ledger/verify,
// then GET /v1/ledger/verify/{id} polled: each poll advances it), and a session's evidence
// bundle downloaded (GET /v1/evidence/{sid}; check it offline with `custody ledger verify-bundle`).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, getText, getJson, postJson, request } from '../api';
import { feed } from '../feed';

type Obj = Record<string, any>;

function Verify() {
  const [job, setJob] = useState<Obj | null>(null);
  const [err, setErr] = useState('');
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );
  async function run() {
    setErr('');
    try {
      let j = await postJson<Obj>('/v1/ledger/verify');
      setJob(j);
      while (live.current && j.state === 'running') {
        j = await getJson<Obj>(`/v1/ledger/verify/${j.id}`);
        if (live.current) setJob(j);
      }
    } catch (e) {
      setErr(e instanceof Error ? e.message : String(e));
    }
  }
  const pct = job ? (job.size ? Math.floor((100 * job.verified) / job.size) : 100) : 0;
  return (
    <div class="card" data-testid="verify">
      <h2>Verify the ledger on the server</h2>
      <p class="muted">
        Every entry up to the latest checkpoint: its stored bytes rehashed and checked canonical, the tree rebuilt
        from them and its root compared with the checkpoint's signed root.
      </p>
      <button data-testid="verify-start" disabled={job?.state === 'running'} onClick={run}>
        {job ? 'Verify again' : 'Verify'}
      </button>
      {job && (
        <div class="progress">
          <progress max={100} value={pct} data-testid="verify-progress" data-percent={String(pct)} />
          <span data-testid="verify-state" data-state={job.state}>
            {pct}% · {job.verified.toLocaleString()} of {job.size.toLocaleString()} entries ·{' '}
            {job.state === 'verified' ? '✓ verified' : job.state === 'failed' ? '✗ failed' : 'verifying…'}
          </span>
          {job.problem && <p class="error">{job.problem}</p>}
        </div>
      )}
      {err && <p class="error">{err}</p>}
    </div>
  );
}

function Evidence() {
  // The newest session the feed has seen, as a starting point.
  const recent = [...feed.rows].reverse().find((r) => r.session)?.session ?? '';
  const [sid, setSid] = useState(recent);
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  async function download(e: Event) {
    e.preventDefault();
    setBusy(true);
    setMsg('');
    try {
      const r = await request(`/v1/evidence/${encodeURIComponent(sid.trim())}`);
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `evidence-${sid.trim()}.json`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      setMsg(`Downloaded (${blob.size.toLocaleString()} bytes). Check it offline: custody ledger verify-bundle FILE`);
    } catch (err) {
      setMsg(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="card" data-testid="evidence">
      <h2>Evidence bundle for a session</h2>
      <form class="inline" onSubmit={download}>
        <input
          value={sid}
          placeholder="session id"
          data-testid="evidence-sid"
          onInput={(e) => setSid((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy || !sid.trim()} data-testid="evidence-download">
          Download
        </button>
      </form>
      {msg && (
        <p class="muted" data-testid="evidence-message">
          {msg}
        </p>
      )}
    </div>
  );
}

export function Ledger() {
  const [cp, setCp] = useState<string | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    getText('/v1/ledger/checkpoint')
      .then(setCp)
      .catch((e) => setErr(e instanceof ApiError && e.status === 404 ? 'The ledger is empty.' : String(e)));
  }, []);
  const lines = (cp ?? '').split('\n');
  return (
    <section data-testid="ledger">
      <h1>Ledger</h1>
      {err && <p class="muted">{err}</p>}
      {cp && (
        <div class="card">
          <h2>Latest checkpoint</h2>
          <dl>
            <div class="field">
              <dt>size</dt>
              <dd data-testid="ledger-size">{Number(lines[1]).toLocaleString()} entries</dd>
            </div>
            <div class="field">
              <dt>origin</dt>
              <dd class="mono">{lines[0]}</dd>
            </div>
            <div class="field">
              <dt>root (base64)</dt>
              <dd class="mono">{lines[2]}</dd>
            </div>
          </dl>
          <details>
            <summary>Signed note</summary>
            <pre data-testid="checkpoint">{cp}</pre>
          </details>
        </div>
      )}
      <Verify />
      <Evidence />
    </section>
  );
}

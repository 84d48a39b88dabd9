// Sign-in: a reader or admin token pasted once, exchanged for an HttpOnly session cookie. The
// token is sent in a POST body only and the field is cleared at once; it never reaches the URL
// or browser storage. The methods come from GET /v1/console/methods: when [login] names the
// company IdP it is listed, and shown here as not available yet (a console session is made from
// a token only; making one from an IdP sign-in is what is missing, docs/CONSOLE.md).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, SessionInfo, SignInMethod, signIn, signInMethods } from '../api';

function hostOf(issuer?: string): string {
  try {
    return new URL(issuer ?? '').host || 'the company IdP';
  } catch {
    return 'the company IdP';
  }
}

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [methods, setMethods] = useState<SignInMethod[]>([]);
  useEffect(() => {
    signInMethods()
      .then(setMethods)
      .catch(() => undefined);
  }, []);
  const idp = methods.find((m) => m.type === 'idp');
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError('');
    const t = token;
    setToken('');
    try {
      onSignedIn(await signIn(t.trim()));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'cannot reach Custody');
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="signin">
      <h1>Custody console</h1>
      <p class="muted">Chain of custody for AI agents: who initiated, which identity executed, what allowed it.</p>
      <section class="method" data-testid="method-token">
        <h2>Sign in with a token</h2>
        <p class="muted">
          A <code>reader</code>, <code>admin</code> or <code>approver</code> token (
          <code>custody admin token create</code>). It is exchanged for a session cookie and not kept by this page.
        </p>
        <form onSubmit={submit} autocomplete="off">
          <input
            type="password"
            name="token"
            data-testid="token"
            placeholder="cst_…"
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            autocomplete="off"
            spellcheck={false}
          />
          <button type="submit" disabled={busy || !token} data-testid="sign-in">
            Sign in
          </button>
        </form>
        {error && (
          <p class="error" data-testid="sign-in-error">
            {error}
          </p>
        )}
      </section>
      {idp && (
        <section class="method" data-testid="method-idp">
          <h2>Sign in with your company account</h2>
          <button disabled={!idp.available} data-testid="sign-in-idp">
            Continue with {hostOf(idp.issuer)}
          </button>
          {!idp.available && (
            <p class="muted">
              Not available yet: Custody signs people in at this IdP for approvals and MCP clients, but a console
              session is still made from a token.
            </p>
          )}
        </section>
      )}
    </div>
  );
}

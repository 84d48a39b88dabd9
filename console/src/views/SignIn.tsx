// Sign-in: a reader or admin token pasted once, exchanged for an HttpOnly session cookie, or the
// company IdP when [login] names one and [console.idp_roles] gives its groups a role. The token
// is sent in a POST body only and the field is cleared at once; it never reaches the URL or
// browser storage. The IdP sign-in is a navigation (/console/sign-in/idp, then the IdP, then back
// to /console/?signed-in=idp with the cookie set); the page then reads its session's CSRF token
// once (GET /v1/console/session).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, SessionInfo, SignInMethod, resumeSession, signIn, signInMethods } from '../api';

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
    // Back from the IdP (/console/?signed-in=idp): the cookie is set, the CSRF token is read once.
    // Otherwise a page starts signed out, as after a reload (a token's session needs the token).
    if (new URLSearchParams(location.search).get('signed-in') === 'idp') {
      history.replaceState(null, '', location.pathname + location.hash);
      resumeSession()
        .then((s) => s && onSignedIn(s))
        .catch(() => undefined);
    }
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
          {idp.available ? (
            // A navigation, not a form: the CSP's form-action 'self' would stop the redirect to the IdP.
            <button data-testid="sign-in-idp" onClick={() => location.assign('/console/sign-in/idp')}>
              Continue with {hostOf(idp.issuer)}
            </button>
          ) : (
            <button disabled data-testid="sign-in-idp">
              Continue with {hostOf(idp.issuer)}
            </button>
          )}
          {!idp.available && (
            <p class="muted">
              Not available: no IdP group is given a console role yet (<code>[console.idp_roles]</code>).
            </p>
          )}
        </section>
      )}
    </div>
  );
}

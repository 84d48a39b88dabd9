// Sign-in: a reader or admin token pasted once, exchanged for an HttpOnly session cookie. The
// token is sent in a POST body only and the field is cleared at once; it never reaches the URL
// or browser storage. The list of methods is where the company IdP will be offered once the
// OAuth sign-in for people lands (issue #21).
import { useState } from 'preact/hooks';
import { ApiError, SessionInfo, signIn } from '../api';

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
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
          A <code>reader</code> or <code>admin</code> token (<code>custody admin token create</code>). It is exchanged
          for a session cookie and not kept by this page.
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
    </div>
  );
}

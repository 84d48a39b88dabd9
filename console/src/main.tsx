// The Custody console (docs/CONSOLE.md): sign-in, the live feed, one action answered with its
// receipt verified here. Hash routes (#/feed, #/action/<event id>) so the server serves one page.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { SessionInfo, signOut, whenSignedOut } from './api';
import { startFeed, stopFeed } from './feed';
import { SignIn } from './views/SignIn';
import { Feed } from './views/Feed';
import { Action } from './views/Action';
import { registryNav, registryView } from './registryRoutes';
import { graphNav, graphView } from './graphRoutes';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function App() {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const hash = useHash();
  useEffect(() => whenSignedOut(() => setSession(null)), []);
  useEffect(() => {
    // An approver reads the approvals only: no ledger stream.
    if (session && session.role !== 'approver') void startFeed();
    else stopFeed();
  }, [session]);

  if (!session) return <SignIn onSignedIn={setSession} />;
  const action = /^#\/action\/([0-9a-f-]+)$/.exec(hash);
  const registry = registryView(hash, session.role);
  const mine = graphView(hash, session.role);
  return (
    <div class="shell">
      <header>
        <a class="brand" href="#/feed">
          Custody
        </a>
        <nav>
          <a href="#/feed" class={action || registry || mine ? '' : 'active'}>
            Live feed
          </a>
          {registryNav(hash, session.role)}
          {graphNav(hash)}
        </nav>
        {session.name && (
          <span class="who" data-testid="person" title={session.verified_by}>
            {session.name}
          </span>
        )}
        <span class="who" data-testid="role">
          {session.role}
        </span>
        <button
          data-testid="sign-out"
          onClick={async () => {
            await signOut().catch(() => undefined);
            location.hash = '';
            setSession(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main>{registry ?? mine ?? (action ? <Action id={action[1]} /> : <Feed />)}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);

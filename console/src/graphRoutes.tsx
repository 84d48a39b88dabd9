// The hash routes and nav entries of the session, blast-radius and identity-graph views, kept
// here so main.tsx only asks: #/sessions[/<sid>], #/blast[/<kind>/<id>], #/graph,
// #/credential[/<role>].
import { BlastRadius } from './views/BlastRadius';
import { Credential } from './views/Credential';
import { IdentityGraph } from './views/IdentityGraph';
import { Sessions } from './views/Sessions';

export function graphView(hash: string, role: string) {
  let m = /^#\/sessions(?:\/([^/]+))?$/.exec(hash);
  if (m) return <Sessions role={role} sid={m[1] ? decodeURIComponent(m[1]) : undefined} />;
  m = /^#\/blast(?:\/(agent|session|user)\/(.+))?$/.exec(hash);
  if (m) return <BlastRadius kind={m[1]} id={m[2] ? decodeURIComponent(m[2]) : undefined} />;
  if (hash === '#/graph') return <IdentityGraph />;
  m = /^#\/credential(?:\/(.+))?$/.exec(hash);
  if (m) return <Credential role={m[1] ? decodeURIComponent(m[1]) : undefined} />;
  return null;
}

export function graphNav(hash: string) {
  const at = (p: string) => (hash === p || hash.startsWith(p + '/') ? 'active' : '');
  return (
    <>
      <a href="#/sessions" class={at('#/sessions')} data-testid="nav-sessions">
        Sessions
      </a>
      <a href="#/blast" class={at('#/blast')} data-testid="nav-blast">
        Blast radius
      </a>
      <a href="#/graph" class={at('#/graph')} data-testid="nav-graph">
        Identity graph
      </a>
    </>
  );
}

// The hash routes and nav entries of the agents, policies, ledger and approvals views, kept here
// so main.tsx only asks: #/agents, #/policies, #/ledger, #/approvals. An approver (who may
// read the approvals and decide them, nothing else) gets the approvals view only.
import { Agents } from './views/Agents';
import { Approvals } from './views/Approvals';
import { Ledger } from './views/Ledger';
import { Policies } from './views/Policies';

export function registryView(hash: string, role: string) {
  if (role === 'approver' || hash === '#/approvals') return <Approvals role={role} />;
  if (hash === '#/agents') return <Agents />;
  if (hash === '#/policies') return <Policies />;
  if (hash === '#/ledger') return <Ledger />;
  return null;
}

export function registryNav(hash: string, role: string) {
  const at = (p: string) => (hash === p || role === 'approver' ? 'active' : '');
  if (role === 'approver')
    return (
      <a href="#/approvals" class={at('#/approvals')} data-testid="nav-approvals">
        Approvals
      </a>
    );
  return (
    <>
      <a href="#/agents" class={at('#/agents')} data-testid="nav-agents">
        Agents
      </a>
      <a href="#/policies" class={at('#/policies')} data-testid="nav-policies">
        Policies
      </a>
      <a href="#/ledger" class={at('#/ledger')} data-testid="nav-ledger">
        Ledger
      </a>
      <a href="#/approvals" class={at('#/approvals')} data-testid="nav-approvals">
        Approvals
      </a>
    </>
  );
}

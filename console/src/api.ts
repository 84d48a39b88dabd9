// The console's one way to the public HTTP API (docs/API.md). After sign-in the browser holds an
// HttpOnly session cookie it cannot read; this module holds the CSRF token in memory only (never
// in storage or the URL) and sends it as X-Custody-CSRF on every request, which is what makes
// the cookie count (src/api/console_sessions.h).

let csrf: string | null = null;
let onSignedOut: (() => void) | null = null;

export interface SessionInfo {
  role: string;
  expires_at: string;
  name?: string; // a person signed in at the company IdP
  verified_by?: string; // "oidc:<issuer>"
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

export function whenSignedOut(f: () => void) {
  onSignedOut = f;
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  if (csrf) h['X-Custody-CSRF'] = csrf;
  return h;
}

async function fail(r: Response): Promise<never> {
  let code = 'unknown';
  let message = `${r.status} ${r.statusText}`;
  try {
    const body = await r.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    /* not the error shape */
  }
  if (r.status === 401 && csrf) {
    csrf = null;
    onSignedOut?.();
  }
  throw new ApiError(r.status, code, message);
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const r = await fetch(path, {
    ...init,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: headers((init.headers as Record<string, string>) ?? {}),
  });
  if (!r.ok) await fail(r);
  return r;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function getText(path: string): Promise<string> {
  return (await request(path)).text();
}

// A state-changing call: JSON body (or none), the CSRF header added by request().
export async function postJson<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  return (await request(path, init)).json() as Promise<T>;
}

export interface SignInMethod {
  type: string; // "token" | "idp"
  available: boolean;
  issuer?: string;
}

// What the sign-in page offers (GET /v1/console/methods, public).
export async function signInMethods(): Promise<SignInMethod[]> {
  const r = await fetch('/v1/console/methods', { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) return [{ type: 'token', available: true }];
  return ((await r.json()) as { methods: SignInMethod[] }).methods;
}

// Exchanges a reader or admin token for a console session. The token leaves this function only
// in the request body; the caller clears its input field.
export async function signIn(token: string): Promise<SessionInfo> {
  const r = await fetch('/v1/console/session', {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  if (!r.ok) await fail(r);
  const body = (await r.json()) as { csrf: string; role: string; expires_at: string };
  csrf = body.csrf;
  return { role: body.role, expires_at: body.expires_at };
}

// The session of the cookie, when the page holds none in memory: after the IdP's redirect back
// (the cookie was set there). Null when there is no live session.
export async function resumeSession(): Promise<SessionInfo | null> {
  const r = await fetch('/v1/console/session', { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) return null;
  const body = (await r.json()) as SessionInfo & { csrf: string };
  csrf = body.csrf;
  return { role: body.role, expires_at: body.expires_at, name: body.name, verified_by: body.verified_by };
}

export async function signOut(): Promise<void> {
  try {
    await request('/v1/console/session/logout', { method: 'POST' });
  } finally {
    csrf = null;
  }
}

// A headless "browser" for the OAuth tests: it follows redirects by hand, keeps cookies per
// host:port, and submits the forms the IdP and Custody show (the login form with a user name,
// consent with "allow"). It stops at the MCP client's redirect URI and returns that URL.
export class Browser {
  constructor() { this.jar = new Map(); this.log = []; }

  cookiesFor(url) {
    const host = new URL(url).host;
    const c = this.jar.get(host) ?? new Map();
    return [...c].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keep(url, res) {
    const host = new URL(url).host;
    const c = this.jar.get(host) ?? new Map();
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') c.delete(name);
      else c.set(name, value);
      this.log.push({ url, setCookie: line });
    }
    this.jar.set(host, c);
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { cookie: this.cookiesFor(url) };
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.keep(url, res);
    const text = await res.text();
    this.log.push({ method, url, status: res.status });
    return { status: res.status, location: res.headers.get('location'), text, headers: res.headers };
  }

  // Goes to `url` and on until a redirect to `stopAt` (returned), or a page that is neither a
  // redirect nor a form this browser knows how to fill (then {page} is returned).
  async navigate(url, stopAt, { user = 'alice', decision = 'allow' } = {}) {
    let next = { url, method: 'GET' };
    for (let step = 0; step < 25; step++) {
      const r = await this.request(next.url, next);
      if (r.status >= 300 && r.status < 400 && r.location) {
        const to = new URL(r.location, next.url).href;
        if (to.startsWith(stopAt)) return { redirect: to };
        next = { url: to, method: 'GET' };
        continue;
      }
      const form = /<form[^>]*action="([^"]*)"[^>]*method="post"/i.exec(r.text) ??
        /<form[^>]*method="post"[^>]*action="([^"]*)"/i.exec(r.text);
      if (r.status !== 200 || !form) return { page: r, url: next.url };
      const fields = {};
      for (const m of r.text.matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
        const name = /name="([^"]*)"/.exec(m[0])?.[1];
        const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
        if (name) fields[name] = value.replace(/&amp;/g, '&').replace(/&quot;/g, '"');
      }
      if (/name="login"/.test(r.text)) { fields.login = user; fields.password = 'any'; }
      if (/name="decision"/.test(r.text)) fields.decision = decision;
      this.lastFormPage = r;
      next = { url: new URL(form[1].replace(/&amp;/g, '&'), next.url).href, method: 'POST', form: fields };
    }
    throw new Error('too many steps: ' + JSON.stringify(this.log.slice(-6)));
  }
}

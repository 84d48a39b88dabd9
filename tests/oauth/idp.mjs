// The company IdP of the OAuth tests: oidc-provider (a certified OpenID Provider) with its
// development login and consent forms, one confidential client (Custody) and any login name as
// a user. Started by the tests on a loopback port.
import Provider from 'oidc-provider';

export async function startIdp({ port, custodyCallbacks, clientSecret }) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'custody',
      client_secret: clientSecret,
      redirect_uris: custodyCallbacks,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.com`, name: id }),
    }),
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    cookies: { keys: ['custody-oauth-e2e-cookie-key'] },
    features: { devInteractions: { enabled: true } },
  });
  provider.on('server_error', (ctx, err) => console.error('idp server_error', err));
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, close: () => new Promise((r) => server.close(r)) };
}

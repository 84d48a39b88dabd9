// The company IdP of the OAuth tests: oidc-provider (a certified OpenID Provider) with its
// development login and consent forms, one confidential client (Custody) and any login name as
// a user. Started by the tests on a loopback port.
//
// Custody authenticates at its token endpoint with the client secret (client_secret_basic), or,
// given `jwks` (the public JWKS of Custody's login.private_key_file), with private_key_jwt.
// `authMethods` overrides the token_endpoint_auth_methods_supported the IdP announces (and
// accepts); `signingAlg` is the client assertion algorithm registered for Custody (ES256 by
// default, RS256 for an RSA key).
import Provider from 'oidc-provider';

const GROUPS = { dana: ['finance'], sam: ['secops'], rita: ['audit'] };

export async function startIdp({ port, custodyCallbacks, clientSecret, jwks, authMethods,
  signingAlg = 'ES256' }) {
  const issuer = `http://127.0.0.1:${port}`;
  const client = {
    client_id: 'custody',
    redirect_uris: custodyCallbacks,
    grant_types: ['authorization_code'],
    response_types: ['code'],
  };
  if (jwks) {
    client.token_endpoint_auth_method = 'private_key_jwt';
    client.token_endpoint_auth_signing_alg = signingAlg;
    client.jwks = jwks;
  } else {
    client.token_endpoint_auth_method = 'client_secret_basic';
    client.client_secret = clientSecret;
  }
  const provider = new Provider(issuer, {
    clients: [client],
    ...(authMethods ? { clientAuthMethods: authMethods } : {}),
    findAccount: (ctx, id) => ({
      accountId: id,
      // dana's groups come from the IdP only (an approver by the IdP's word, not the entities');
      // sam's and rita's make a console admin and reader (console_idp_e2e.mjs).
      claims: () => ({ sub: id, email: `${id}@example.com`, name: id,
        ...(GROUPS[id] ? { groups: GROUPS[id] } : {}) }),
    }),
    claims: { openid: ['sub'], email: ['email'], profile: ['name', 'groups'] },
    // The claims of the scopes in the ID token itself, as IdPs configured to send groups do.
    conformIdTokenClaims: false,
    cookies: { keys: ['custody-oauth-e2e-cookie-key'] },
    features: { devInteractions: { enabled: true } },
  });
  provider.on('server_error', (ctx, err) => console.error('idp server_error', err));
  // What the token endpoint decided about each client authentication, for the tests.
  const clientAuth = [];
  provider.on('grant.success', () => clientAuth.push('ok'));
  provider.on('grant.error', (ctx, err) => clientAuth.push(err.error ?? String(err)));
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { issuer, clientAuth, close: () => new Promise((r) => server.close(r)) };
}

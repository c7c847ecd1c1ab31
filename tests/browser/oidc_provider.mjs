// A real OpenID provider for the tests: oidc-provider (an OpenID-certified implementation) on
// 127.0.0.1, with one confidential client and its development login pages, where any login and
// password sign in. A login starting with "admin" gets the role claim admin; any other, artist.
//
//   node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Prints "ready ISSUER" once it listens; stops with its parent (stdin closed) or on SIGTERM.
import Provider from 'oidc-provider';

const [port, clientId, secret, redirect] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: secret,
    redirect_uris: [redirect],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], roles: ['role'] },
  // The id token carries the claims the scopes ask for, as Keycloak's does.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@id.example`,
          email_verified: true,
          name: `Oidc ${id}`,
          role: id.startsWith('admin') ? 'admin' : 'artist',
        };
      },
    };
  },
});
provider.proxy = false;
const server = provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();

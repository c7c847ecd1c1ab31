// Sign-in with OpenID Connect in Debian's headless Chromium, against a real provider
// (oidc-provider): the app's "Sign in with …" button, the provider's login and consent pages,
// back to the app signed in with the name and role the provider gave; signed out, and in again
// as another person. No console error on the app's pages (the provider's own are not ours).
//
//   node app_oidc.mjs SERVER_URL BUTTON_NAME SCREENSHOT_DIR
import { launch } from './chromium.mjs';
import { axe } from './axe.mjs';

const [server, provider, shots] = process.argv.slice(2);
const base = server.replace(/\/$/, '');
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [], axe: {}, people: [] };
let ok = false;
// Each person in their own browser; the first signs out and in again, and the provider, which
// remembers them, sends them straight back.
const open = async () => {
  const p = await (await browser.newContext()).newPage();
  p.on('console', (m) => {
    if (m.type() === 'error' && p.url().startsWith(base)) seen.consoleErrors.push(m.text());
  });
  p.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  return p;
};
const back = (p) => p.waitForURL((u) => u.href.startsWith(base) && !u.href.includes('/v1/'), { timeout: 20000 });
let page = null;
try {
  const first = await open();
  for (const [p, login] of [[first, 'admin-olga'], [await open(), 'ari']]) {
    page = p;
    await p.goto(base);
    await p.getByRole('link', { name: `Sign in with ${provider}` }).click();
    // The provider's pages: any login and password, then consent.
    await p.locator('input[name=login]').fill(login);
    await p.locator('input[name=password]').fill('whatever');
    await p.locator('button[type=submit]').click();
    await p.getByRole('button', { name: 'Continue' }).click();
    await back(p);
    await p.getByRole('button', { name: 'Sign out' }).waitFor();
    const me = await p.evaluate(async () => (await fetch('/v1/me')).json());
    seen.people.push({ login, shown: await p.getByTestId('who').innerText(), role: me.role, subject: me.subject, url: p.url() });
    if (seen.people.length === 1) {
      seen.axe.signedIn = await axe(p);
      const path = `${shots}/oidc.png`;
      await p.screenshot({ path });
      seen.screenshots.push(path);
    }
  }
  page = first;
  await first.getByRole('button', { name: 'Sign out' }).click();
  await first.getByRole('heading', { name: 'Sign in' }).waitFor();
  await first.getByRole('link', { name: `Sign in with ${provider}` }).click();
  await back(first);
  await first.getByRole('button', { name: 'Sign out' }).waitFor();
  seen.again = await first.evaluate(async () => (await fetch('/v1/me')).json());
  ok = seen.people.length === 2;
} catch (e) {
  seen.error = String(e);
  if (page) {
    seen.pageText = await page.locator('body').innerText().catch(() => null);
    seen.url = page.url();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);

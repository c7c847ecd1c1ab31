// The Veza Stream web app: sign in (an account, or an API key or JWT), then what the role
// allows: discover public music, upload and manage tracks, build playlists, run channels and go
// live, with one player bar that keeps playing across every section. Public items play on
// their own pages (`/play/…`) and in embeds (`/embed/…`) without sign-in; artists have pages
// at `/a/{handle}`.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, hasSession, me, Problem, signIn, signInAccount, signOut, storage } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Channels } from './channels.jsx';
import { Discover, ArtistPage } from './discover.jsx';
import { Library, TrackPage } from './library.jsx';
import { PlaylistPage, Playlists } from './playlists.jsx';
import { PublicPage } from './public.jsx';
import { QueueProvider } from './queue.jsx';
import { PlayerBar } from './bar.jsx';

function AccountForm({ onDone, options }) {
  const [mode, setMode] = useState('in');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [invite, setInvite] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      if (mode === 'in') await signInAccount('/v1/sessions', { email, password });
      else {
        const body = { email, password, display_name: name };
        if (invite.trim()) body.invite = invite.trim();
        await signInAccount('/v1/accounts', body);
      }
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const up = mode === 'up';
  return (
    <form onSubmit={submit} class="card auth" aria-labelledby="auth-h">
      <h2 id="auth-h">{up ? 'Create your account' : 'Sign in'}</h2>
      {up ? (
        <label class="field">Name shown to listeners
          <input value={name} required maxLength={80} autocomplete="name" onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      ) : null}
      <label class="field">Email
        <input type="email" value={email} required autocomplete="email" onInput={(e) => setEmail(e.currentTarget.value)} />
      </label>
      <label class="field">Password
        <input type="password" value={password} required minLength={up ? 8 : undefined}
          autocomplete={up ? 'new-password' : 'current-password'} onInput={(e) => setPassword(e.currentTarget.value)} />
      </label>
      {up && options.registration === 'invite' ? (
        <label class="field">Invitation code
          <input value={invite} autocomplete="off" onInput={(e) => setInvite(e.currentTarget.value)} />
        </label>
      ) : null}
      <ProblemBox error={error} />
      <button class="primary wide-button" type="submit" disabled={busy}>{up ? 'Create account' : 'Sign in'}</button>
      {options.oidc ? (
        <p><a class="button wide-button" href={options.oidc.url}>Sign in with {options.oidc.name}</a></p>
      ) : null}
      {options.registration !== 'closed' ? (
        <p class="muted">
          {up ? 'Already have an account? ' : 'New here? '}
          <button type="button" class="link" onClick={() => { setError(null); setMode(up ? 'in' : 'up'); }}>
            {up ? 'Sign in' : 'Create an account'}
          </button>
        </p>
      ) : null}
    </form>
  );
}

function OtherSignIn({ onDone }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    signIn(value);
    try {
      await me();
      onDone();
    } catch (err) {
      await signOut();
      setError(err);
    }
  };
  const dev = async () => {
    try {
      const r = await api('POST', '/app/dev-sign-in');
      signIn(r.credential);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  // From this machine the development sign-in may work: the choices start open.
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(location.hostname);
  return (
    <details class="card other" open={loopback}>
      <summary>Other ways to sign in</summary>
      <form onSubmit={submit}>
        <p>
          <label for="credential">API key or JWT</label>
          <br />
          <textarea id="credential" rows="3" cols="60" value={value}
            onInput={(e) => setValue(e.currentTarget.value)} />
        </p>
        <button type="submit">Sign in with the key</button>
      </form>
      <p>
        <button type="button" onClick={dev}>Development sign-in</button>
      </p>
      <p class="muted">The development sign-in works on a server started on its embedded defaults,
        from a browser on the same machine.</p>
      <ProblemBox error={error} />
    </details>
  );
}

function SignIn({ onDone }) {
  const [options, setOptions] = useState({ registration: 'closed', oidc: null });
  useEffect(() => { api('GET', '/v1/auth').then(setOptions, () => {}); }, []);
  return (
    <div class="signin">
      <p class="lede">Stream your music, run your station, share it anywhere.</p>
      <AccountForm onDone={onDone} options={options} />
      <OtherSignIn onDone={onDone} />
    </div>
  );
}

// Sections by role: listeners discover and play; artists and admins also upload and manage.
const SECTIONS = {
  listener: { discover: 'Discover', playlists: 'Playlists', channels: 'Channels' },
  artist: { discover: 'Discover', library: 'Library', playlists: 'Playlists', channels: 'Channels' },
  admin: { discover: 'Discover', library: 'Library', playlists: 'Playlists', channels: 'Channels' },
};

/** The signed-in app's place, from the URL's hash: `#/library`, `#/tracks/ID`, … */
function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const [, section = '', id = ''] = hash.split('/');
  return { section, id: decodeURIComponent(id) };
}

/** The theme: the system's, or the one chosen here. */
function useTheme() {
  const [theme, setTheme] = useState(localStorage.getItem('veza.theme') || 'system');
  useEffect(() => {
    if (theme === 'system') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', theme);
    localStorage.setItem('veza.theme', theme);
  }, [theme]);
  return [theme, setTheme];
}

function ThemeSwitch() {
  const [theme, setTheme] = useTheme();
  return (
    <label class="theme">
      <span class="visually-hidden">Theme</span>
      <select value={theme} onChange={(e) => setTheme(e.currentTarget.value)} aria-label="Theme">
        <option value="system">System theme</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function Signed({ who, onSignOut }) {
  const sections = SECTIONS[who.role] || SECTIONS.listener;
  const route = useRoute();
  const mainRef = useRef(null);
  // Artists land on their library, listeners on what there is to discover.
  const home = who.role === 'listener' ? 'discover' : 'library';
  const section = route.section === 'tracks' ? 'library'
    : route.section === 'artists' ? 'discover'
      : route.section in sections ? route.section : home;
  let body;
  // Keyed by id: another track is a new page, not the last one's state under a new id.
  if (route.section === 'tracks' && route.id) body = <TrackPage key={route.id} id={route.id} />;
  else if (route.section === 'artists' && route.id) body = <ArtistPage key={route.id} handle={route.id} />;
  else if (section === 'discover') body = <Discover who={who} />;
  else if (section === 'library') body = <Library />;
  else if (section === 'playlists' && route.id) body = <PlaylistPage key={route.id} id={route.id} who={who} />;
  else if (section === 'playlists') body = <Playlists who={who} />;
  else body = <Channels who={who} />;
  // A new place: focus moves to its main content, for keyboards and screen readers.
  useEffect(() => {
    if (mainRef.current && document.activeElement === document.body) mainRef.current.focus({ preventScroll: true });
  }, [route.section, route.id]);
  const name = who.account ? who.account.display_name : who.role;
  return (
    <>
      <header>
        <h1><a href="#/">Veza Stream</a></h1>
        <nav aria-label="Sections">
          {Object.entries(sections).map(([v, label]) => (
            <a key={v} href={`#/${v}`} aria-current={section === v ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        <ThemeSwitch />
        <span class="muted who" data-testid="who" title={who.role}>{name}</span>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      <main ref={mainRef} tabIndex={-1}>{body}</main>
      <PlayerBar />
    </>
  );
}

/** What a provider's sign-in came back with: `?signed_in=1`, or `?sign_in_error=…`. */
function returned() {
  const q = new URLSearchParams(location.search);
  if (!q.has('signed_in') && !q.has('sign_in_error')) return null;
  history.replaceState(null, '', `/${location.hash}`);
  if (q.has('signed_in')) {
    storage.set(() => localStorage, 'veza.session', '1');
    return null;
  }
  return new Problem(-1, 'You are not signed in', q.get('sign_in_error'));
}

function App() {
  const [who, setWho] = useState(null);
  const [error, setError] = useState(returned);
  const check = () => {
    // Nothing to ask without a session or a credential (a 401 would be the first thing a
    // visitor's console shows).
    if (!hasSession()) { setWho(false); return; }
    me().then(setWho, (e) => {
      // A session that ended is a sign-in to make again, not an error to show.
      if (e.status === 401) localStorage.removeItem('veza.session');
      else setError(e);
      setWho(false);
    });
  };
  useEffect(check, []);
  if (who === null) return <main><p>Loading…</p></main>;
  if (!who) {
    return (
      <>
        <header><h1>Veza Stream</h1><ThemeSwitch /></header>
        <main>
          <ProblemBox error={error} />
          <SignIn onDone={() => { setError(null); check(); }} />
        </main>
      </>
    );
  }
  return (
    <QueueProvider>
      <Signed who={who} onSignOut={async () => { await signOut(); setWho(false); }} />
    </QueueProvider>
  );
}

// A public page (`/play/{kind}/{id}`) plays without sign-in, as does an embed
// (`/embed/{kind}/{id}`); an artist's page (`/a/{handle}`) shows their public music; everything
// else is the app.
const play = location.pathname.match(/^\/play\/([a-z]+)\/([^/]+)$/);
const embed = location.pathname.match(/^\/embed\/([a-z]+)\/([^/]+)$/);
const artist = location.pathname.match(/^\/a\/([^/]+)$/);
if (embed) document.documentElement.classList.add('embedded');
render(
  embed ? <PublicPage kind={embed[1]} id={embed[2]} embed />
    : play ? (
      <>
        <header><h1><a href="/">Veza Stream</a></h1></header>
        <PublicPage kind={play[1]} id={play[2]} />
      </>
    ) : artist ? (
      <>
        <header><h1><a href="/">Veza Stream</a></h1></header>
        <main><ArtistPage handle={decodeURIComponent(artist[1])} standalone /></main>
      </>
    ) : <App />,
  document.getElementById('app'),
);

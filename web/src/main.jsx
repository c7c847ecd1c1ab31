// The Veza Stream web app: sign in, then what the role allows: upload and manage tracks, build
// playlists, run channels and go live, and listen. Public items play on their own pages
// (`/play/…`) without sign-in.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, credential, me, signIn, signOut } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Channels } from './channels.jsx';
import { Library, TrackPage } from './library.jsx';
import { PlaylistPage, Playlists } from './playlists.jsx';
import { PublicPage } from './public.jsx';

function SignIn({ onDone }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    signIn(value);
    try {
      await me();
      onDone();
    } catch (err) {
      signOut();
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
  return (
    <form onSubmit={submit}>
      <h2>Sign in</h2>
      <p>
        <label for="credential">API key or JWT</label>
        <br />
        <textarea id="credential" rows="3" cols="60" value={value}
          onInput={(e) => setValue(e.currentTarget.value)} />
      </p>
      <button class="primary" type="submit">Sign in</button>{' '}
      <button type="button" onClick={dev}>Development sign-in</button>
      <p class="muted">The development sign-in works on a server started on its embedded defaults,
        from a browser on the same machine.</p>
      <ProblemBox error={error} />
    </form>
  );
}

// Sections by role: listeners play public playlists and channels; artists and admins also
// upload and manage.
const SECTIONS = {
  listener: { playlists: 'Playlists', channels: 'Channels' },
  artist: { library: 'Library', playlists: 'Playlists', channels: 'Channels' },
  admin: { library: 'Library', playlists: 'Playlists', channels: 'Channels' },
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
  return { section, id };
}

function Signed({ who, onSignOut }) {
  const sections = SECTIONS[who.role] || SECTIONS.listener;
  const route = useRoute();
  const section = route.section === 'tracks' ? 'library' : route.section in sections ? route.section : Object.keys(sections)[0];
  let body;
  // Keyed by id: another track is a new page, not the last one's state under a new id.
  if (route.section === 'tracks' && route.id) body = <TrackPage key={route.id} id={route.id} />;
  else if (section === 'library') body = <Library />;
  else if (section === 'playlists' && route.id) body = <PlaylistPage key={route.id} id={route.id} who={who} />;
  else if (section === 'playlists') body = <Playlists who={who} />;
  else body = <Channels who={who} />;
  return (
    <>
      <header>
        <h1>Veza Stream</h1>
        <nav aria-label="Sections">
          {Object.entries(sections).map(([v, label]) => (
            <a key={v} href={`#/${v}`} aria-current={section === v ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        <span class="muted" data-testid="who">{who.role}</span>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      <main>{body}</main>
    </>
  );
}

function App() {
  const [who, setWho] = useState(null);
  const [error, setError] = useState(null);
  const check = () => {
    if (!credential()) { setWho(false); return; }
    me().then(setWho, (e) => { signOut(); setError(e); setWho(false); });
  };
  useEffect(check, []);
  if (who === null) return <main><p>Loading…</p></main>;
  if (!who) {
    return (
      <>
        <header><h1>Veza Stream</h1></header>
        <main>
          <ProblemBox error={error} />
          <SignIn onDone={() => { setError(null); check(); }} />
        </main>
      </>
    );
  }
  return <Signed who={who} onSignOut={() => { signOut(); setWho(false); }} />;
}

// A public page (`/play/{kind}/{id}`) plays without sign-in; everything else is the app.
const play = location.pathname.match(/^\/play\/([a-z]+)\/([^/]+)$/);
render(
  play ? (
    <>
      <header><h1><a href="/">Veza Stream</a></h1></header>
      <PublicPage kind={play[1]} id={play[2]} />
    </>
  ) : <App />,
  document.getElementById('app'),
);

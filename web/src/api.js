// The control API from the page. An account signs in with its session cookie (HttpOnly: the
// page never sees it), and every change it makes carries the session's CSRF token, which the page
// keeps in memory; an API key or a JWT pasted in (or the development sign-in) is sent as Bearer.
// Every refusal becomes the problem document's title and detail (RFC 9457), in plain words.

const KEY = 'veza.credential';
// Set while this browser holds an account's session cookie, which the page cannot read.
const SESSION = 'veza.session';
let csrf = '';

/**
 * This browser's storage, or nothing where it is refused (an embed framed by another site, with
 * third-party storage blocked): the page then works signed out.
 */
export const storage = {
  get(area, key) {
    try { return area().getItem(key); } catch { return null; }
  },
  set(area, key, value) {
    try { area().setItem(key, value); } catch { /* refused: not kept */ }
  },
  remove(area, key) {
    try { area().removeItem(key); } catch { /* refused: nothing kept */ }
  },
};
const local = () => localStorage;
const tab = () => sessionStorage;

/** Whether this browser may be signed in: a credential, or an account's session. */
export function hasSession() {
  return !!(credential() || storage.get(local, SESSION));
}

export function credential() {
  return storage.get(local, KEY) || storage.get(tab, KEY) || '';
}

/** Signs in with an API key or a JWT, kept in this browser. */
export function signIn(value) {
  storage.set(local, KEY, value.trim());
}

/** The session's CSRF token, from the sign-in answer or `GET /v1/me`. */
export function setCsrf(token) {
  csrf = token || '';
}

/**
 * Signs in to an account: the session cookie is set by the answer. Where the browser refuses
 * the cookie (it is `Secure`, and the page came over plain HTTP from another machine), the
 * answer's JWT stands in for this tab.
 */
export async function signInAccount(path, body) {
  const r = await api('POST', path, body);
  setCsrf(r.csrf);
  storage.set(local, SESSION, '1');
  try {
    await me();
  } catch {
    storage.set(tab, KEY, r.token);
  }
  return r;
}

/** Signs out: ends the account's session, forgets a pasted credential. */
export async function signOut() {
  const cookie = !credential();
  storage.remove(local, KEY);
  storage.remove(local, SESSION);
  storage.remove(tab, KEY);
  if (cookie) await api('DELETE', '/v1/sessions/current').catch(() => {});
  csrf = '';
}

/** The headers that authenticate a request: Bearer, or the CSRF token of the cookie session. */
export function authHeaders() {
  const c = credential();
  if (c) return { authorization: `Bearer ${c}` };
  return csrf ? { 'x-csrf-token': csrf } : {};
}

/** An API refusal: what the server said, put in plain words where its words are technical. */
export class Problem extends Error {
  constructor(status, title, detail, type = '') {
    const plain = plainly(status, type, title, detail);
    super(plain.detail ? `${plain.title}: ${plain.detail}` : plain.title);
    this.status = status;
    this.type = type;
    this.title = plain.title;
    this.detail = plain.detail;
  }
}

/** What a refusal means for the person using the app. */
function plainly(status, type, title, detail) {
  const kind = (type || '').split('/').pop();
  if (status === 0) return { title: 'The server cannot be reached', detail: 'Check your connection and try again.' };
  if (status < 0) return { title: 'Something went wrong', detail };
  if (kind === 'sign-in-failed') return { title: 'Wrong email or password', detail: '' };
  if (kind === 'session-ended' || kind === 'invalid-token' || (status === 401 && kind !== 'sign-in-failed')) {
    return { title: 'You are signed out', detail: 'Sign in again to carry on.' };
  }
  if (kind === 'csrf') return { title: 'This page is out of date', detail: 'Reload it and try again.' };
  if (status === 412) return { title: 'Someone changed this meanwhile', detail: 'Reload to see their change, then try again.' };
  if (status === 429) return { title: 'Too many attempts', detail: detail || 'Wait a moment and try again.' };
  if (status >= 500) return { title: 'Something went wrong on the server', detail: 'Try again in a moment.' };
  return { title, detail };
}

/** One request; resolves to the JSON answer (null for an empty one), rejects with a Problem. */
export async function api(method, path, body, headers = {}) {
  return (await request(method, path, body, headers)).doc;
}

/** As `api`, resolving to `{ doc, etag }`: the answer and its `ETag`, for a later `If-Match`. */
export async function request(method, path, body, headers = {}) {
  const h = { ...authHeaders(), ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Problem(0, 'The server cannot be reached', String(e.message || e));
  }
  const text = await r.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!r.ok) {
    throw new Problem(r.status, (doc && doc.title) || `HTTP ${r.status}`, (doc && doc.detail) || '', (doc && doc.type) || '');
  }
  return { doc, etag: r.headers.get('etag') };
}

/**
 * Follows a server-sent event stream: `onEvent(name, data)` for each event, the data parsed as
 * JSON. It uses fetch rather than EventSource, which cannot send `Authorization`; it reconnects
 * a second after the stream ends or fails, until the returned function is called. A refusal
 * (4xx) ends it and goes to `onError` as a Problem.
 */
export function follow(path, onEvent, onError = () => {}) {
  const stop = new AbortController();
  const run = async () => {
    while (!stop.signal.aborted) {
      try {
        const h = { accept: 'text/event-stream' };
        const c = credential();
        if (c && !path.startsWith('/v1/public/')) h.authorization = `Bearer ${c}`;
        const r = await fetch(path, { headers: h, signal: stop.signal });
        if (r.status >= 400 && r.status < 500) {
          let doc = {};
          try { doc = await r.json(); } catch { doc = {}; }
          onError(new Problem(r.status, doc.title || `HTTP ${r.status}`, doc.detail || '', doc.type || ''));
          return;
        }
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let name = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (!data) continue;
            try { onEvent(name, JSON.parse(data)); } catch { /* not JSON: a keep-alive */ }
          }
        }
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
  };
  run();
  return () => stop.abort();
}

/** Who the credential is: `{subject, role, account?, csrf?}`; keeps the session's CSRF token. */
export async function me() {
  const who = await api('GET', '/v1/me');
  if (who.csrf) setCsrf(who.csrf);
  return who;
}

/** Seconds as m:ss. */
export function clock(s) {
  if (s == null || !Number.isFinite(s)) return '';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

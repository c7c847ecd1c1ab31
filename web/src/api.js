// The control API from the page: the signed-in credential as Bearer, and every refusal turned
// into the problem document's title and detail (RFC 9457), which the page shows as it is.

const KEY = 'veza.credential';

export function credential() {
  return localStorage.getItem(KEY) || '';
}

export function signIn(value) {
  localStorage.setItem(KEY, value.trim());
}

export function signOut() {
  localStorage.removeItem(KEY);
}

/** An API refusal: what the server said, in its words. */
export class Problem extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

/** One request; resolves to the JSON answer (null for an empty one), rejects with a Problem. */
export async function api(method, path, body, headers = {}) {
  return (await request(method, path, body, headers)).doc;
}

/** As `api`, resolving to `{ doc, etag }`: the answer and its `ETag`, for a later `If-Match`. */
export async function request(method, path, body, headers = {}) {
  const h = { ...headers };
  const c = credential();
  if (c) h.authorization = `Bearer ${c}`;
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
    throw new Problem(r.status, (doc && doc.title) || `HTTP ${r.status}`, (doc && doc.detail) || '');
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
          onError(new Problem(r.status, doc.title || `HTTP ${r.status}`, doc.detail || ''));
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

/** Who the credential is: `{subject, role}`. */
export function me() {
  return api('GET', '/v1/me');
}

/** Seconds as m:ss. */
export function clock(s) {
  if (s == null || !Number.isFinite(s)) return '';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

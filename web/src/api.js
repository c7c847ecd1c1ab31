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
  return doc;
}

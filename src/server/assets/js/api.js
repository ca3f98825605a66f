/* The API client: every request of the page goes through api(), which adds the access token
 * (see API.md "Access") and turns failures into ApiError with the server's message. */

/* The page's token: the server writes it into <meta name="expman-token">; a remote server's
   printed URL also carries it as ?token=, which GETs repeat. */
const TOKEN = (() => {
  const meta = document.querySelector('meta[name="expman-token"]');
  let t = meta ? meta.getAttribute('content') || '' : '';
  if (t.includes('{{')) t = '';
  const fromUrl = new URLSearchParams(location.search).get('token') || '';
  return { header: t || fromUrl, url: fromUrl };
})();

export class ApiError extends Error {
  /** `body`: the error answer's JSON (a query error carries `start`/`end` there). */
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body || null;
  }
}

/** The URL of `path` with `params` (and the token, for a link the browser follows itself). */
export function apiUrl(path, params) {
  const q = new URLSearchParams();
  if (params) {
    for (const [k, v] of Object.entries(params)) if (v != null) q.set(k, String(v));
  }
  if (TOKEN.url) q.set('token', TOKEN.url);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** One request; resolves with the JSON body, rejects with an ApiError (status 0: no answer). */
export async function api(method, path, params) {
  const headers = { Accept: 'application/json' };
  if (TOKEN.header) headers['X-Expman-Token'] = TOKEN.header;
  let res;
  try {
    res = await fetch(apiUrl(path, params), { method, headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError('cannot reach the expman server', 0);
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    const msg = body && body.error ? body.error : `${res.status} ${res.statusText}`;
    throw new ApiError(msg, res.status, body);
  }
  return body;
}

/** `/api/experiments/<id>/<rest...>`, each part escaped. */
export const expPath = (id, ...rest) =>
  '/api/experiments/' + [id, ...rest].map(encodeURIComponent).join('/');

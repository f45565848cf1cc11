// Calls to the runner's admin endpoints. Every call carries the bearer token the user typed,
// which is kept in this tab's sessionStorage only. URLs are relative to the page (/admin/ui/), so
// the page also works behind a proxy that serves the runner under a prefix.

const TokenKey = 'runner-admin-token';

/** Raised for 401/403: the page shows why and hides every piece of data. */
export class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onRefused = () => {};

/** Who hears of a refused call (the page, to show the message and clear the data). */
export function whenRefused(handler) {
  onRefused = handler;
}

export function token() {
  return sessionStorage.getItem(TokenKey) ?? '';
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TokenKey, value);
  } else {
    sessionStorage.removeItem(TokenKey);
  }
}

/** `path` relative to /admin/ (`partitions`, `instances?saga=x`); `../info` reaches /info. */
export function adminUrl(path) {
  return new URL(`../${path}`, document.baseURI).toString();
}

/** A query string of the non-empty values. */
export function query(values) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value !== null && value !== undefined && value !== '') {
      params.append(name, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Calls the runner; resolves `{ status, body }` for any answer but 401/403 (which the page is told
 * of, and which reject with Refused). The body is the parsed JSON, or `{ error: text }`.
 */
export async function call(path, method = 'GET') {
  const headers = { Accept: 'application/json' };
  const bearer = token();
  if (bearer) {
    headers.Authorization = `Bearer ${bearer}`;
  }
  const response = await fetch(adminUrl(path), { method, headers, cache: 'no-store', credentials: 'omit' });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { error: text };
  }
  if (response.status === 401 || response.status === 403) {
    const refused = new Refused(response.status, refusal(response.status, bearer, body));
    onRefused(refused);
    throw refused;
  }
  return { status: response.status, body };
}

/** Like call, but a non-2xx answer rejects with the runner's error text. */
export async function get(path) {
  const { status, body } = await call(path);
  if (status < 200 || status > 299) {
    throw new Error(`${status}: ${body.error ?? 'request failed'}`);
  }
  return body;
}

function refusal(status, bearer, body) {
  if (status === 401) {
    return bearer
      ? '401: token invalid — the runner refused this admin token. Enter the right one above.'
      : '401: token required — enter the admin token above to see this runner.';
  }
  return `403: ${body.error ?? 'admin endpoints are disabled on this runner'}`;
}

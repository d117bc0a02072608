// Thin wrappers over the tastespace HTTP API (same origin, JSON in and out).
//
// A server started with --token wants "Authorization: Bearer <token>" on /api. The page is
// opened once as /?token=<token>: the token moves to this tab's sessionStorage and out of the
// address bar (so it is not bookmarked, shared or kept in history), and goes with every call.

const TOKEN_KEY = "tastespace-token";

function takeToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given !== null) {
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  try {
    if (given !== null) sessionStorage.setItem(TOKEN_KEY, given);
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return given; // storage disabled: the token lasts until the tab reloads
  }
}

const token = takeToken();

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

async function call(path, { method = "GET", body, signal } = {}) {
  const response = await fetch(path, {
    method,
    signal,
    headers: {
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    let detail = typeof payload.detail === "string" ? payload.detail : `HTTP ${response.status}`;
    if (response.status === 401) detail += " (open this page as /?token=<token> to send it)";
    throw new ApiError(response.status, detail, payload);
  }
  return payload;
}

const query = (params) =>
  new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null)).toString();

export const api = {
  models: () => call("/api/models"),
  map: (model, method = "pca") => call(`/api/map?${query({ model, method })}`),
  search: (q, model, limit, signal) => call(`/api/items?${query({ q, model, limit })}`, { signal }),
  similar: (id, model, k) =>
    call(`/api/items/${encodeURIComponent(id)}/similar?${query({ model, k })}`),
  recommend: (history, model, k) =>
    call("/api/recommend?explain=1", {
      method: "POST",
      body: { history, model, k, skip_unknown: true },
    }),
};

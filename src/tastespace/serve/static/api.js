// Thin wrappers over the tastespace HTTP API (same origin, JSON in and out).

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
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof payload.detail === "string" ? payload.detail : `HTTP ${response.status}`;
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
    call("/api/recommend", {
      method: "POST",
      body: { history, model, k, skip_unknown: true },
    }),
};

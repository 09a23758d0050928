// Shared by every page: calls the API with the session's CSRF token, and signs out.
// The session cookie is HttpOnly; the CSRF token comes from GET /api/me.
"use strict";

const hotline = (() => {
  let csrf = null;

  async function me() {
    const response = await fetch("/api/me", { headers: { Accept: "application/json" } });
    if (response.status === 401) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname));
      return null;
    }
    const body = await response.json();
    csrf = body.csrf_token;
    return body;
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (!["GET", "HEAD"].includes(method)) {
      if (csrf === null) await me();
      headers["X-CSRF-Token"] = csrf;
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname));
    return response;
  }

  async function logout() {
    await api("POST", "/api/logout");
    location.assign("/login");
  }

  return { me, api, logout };
})();

document.getElementById("logout")?.addEventListener("click", () => hotline.logout());

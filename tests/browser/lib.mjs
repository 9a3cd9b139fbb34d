// Shared set-up for the browser tests: Debian's chromium through playwright-core, every request
// that does not go to loopback aborted (and recorded, so a test fails when a page tried), and an
// axe-core check that fails on serious or critical violations.
import { createRequire } from "node:module";
import { readFileSync, readdirSync, statSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const axePath = require.resolve("axe-core/axe.min.js");

export const BASE = process.env.ANXIN_BASE || "http://127.0.0.1:8080";
export const DATA = process.env.ANXIN_DATA || "./data";
export const SHOTS = process.env.ANXIN_SCREENSHOTS || "";
export const PASSWORD = "Anxin-demo-2026";

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
}

function loopback(url) {
  try {
    const u = new URL(url);
    if (u.protocol === "data:" || u.protocol === "blob:" || u.protocol === "about:") return true;
    return ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  } catch {
    return false;
  }
}

/// A page whose every non-loopback request is aborted; `blocked` lists them.
export async function newPage(browser, opts = {}) {
  // bypassCSP: only so axe-core can be injected; the pages themselves run under their CSP.
  const context = await browser.newContext({ locale: "zh-CN", bypassCSP: true, ...opts });
  const blocked = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (loopback(url)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Forms answer 401/422 on purpose (wrong password, invalid field); anything else counts.
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (/Failed to load resource: the server responded with a status of (401|422)/.test(m.text())) return;
    errors.push(m.text());
  });
  return { context, page, blocked, errors };
}

/// Run axe-core on the page; fail on serious or critical violations.
export async function axe(page, label) {
  await page.addScriptTag({ content: readFileSync(axePath, "utf8") });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `axe on ${label}: ${JSON.stringify(bad, null, 2)}`);
}

export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name), fullPage: false });
}

/// A staff session over the JSON API (for set-up only: finding a resident's phone).
export async function apiLogin(username) {
  const r = await fetch(`${BASE}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(r.status, 200, `API sign-in as ${username}`);
  const body = await r.json();
  const cookie = r.headers.get("set-cookie").split(";")[0];
  return { cookie, csrf: body.csrf };
}

export async function api(session, method, path, body) {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      cookie: session.cookie,
      "x-csrf-token": session.csrf,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/// The newest sign-in code sent to `phone` (E.164 or 11 digits), from the SMS outbox.
export function codeFromOutbox(phone, since) {
  const dir = join(DATA, "outbox", "sms");
  const digits = phone.replace(/\D/g, "").slice(-11);
  let best = null;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".json") || f.startsWith(".")) continue;
    const p = join(dir, f);
    const st = statSync(p);
    if (st.mtimeMs < since) continue;
    const m = JSON.parse(readFileSync(p, "utf8"));
    if (!String(m.to).replace(/\D/g, "").endsWith(digits)) continue;
    if (!best || st.mtimeMs > best.t) best = { t: st.mtimeMs, code: m.params.code };
  }
  return best && best.code;
}

export async function waitFor(fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/// A demo person with a phone who lives in a household of two or more, found as the worker.
export async function residentPhone() {
  const worker = await apiLogin("worker");
  for (let offset = 0; offset < 2000; offset += 100) {
    const page = await api(worker, "GET", `/api/v1/people?limit=100&offset=${offset}`);
    for (const p of page.items) {
      if (!p.phone_mask || !p.household_id) continue;
      const hh = await api(worker, "GET", `/api/v1/households/${p.household_id}`);
      const members = hh.members || hh[1] || [];
      if (members.length < 2) continue;
      const plain = await api(worker, "POST", `/api/v1/people/${p.id}/unmask`, {});
      if (plain.phone) return { phone: plain.phone, person: p };
    }
  }
  throw new Error("no demo person with a phone in a household of two");
}

/// Sign a resident in on `page` with a code read from the SMS outbox.
export async function residentSignIn(page, phone) {
  const local = phone.replace(/\D/g, "").slice(-11);
  const since = Date.now() - 1000;
  await page.goto(`${BASE}/resident/login`);
  await page.fill("#phone", local);
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector("#code");
  const code = await waitFor(() => codeFromOutbox(local, since));
  assert.ok(code, "a code in the outbox");
  await page.fill("#code", code);
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/resident(\/choose)?$/);
  if (page.url().endsWith("/choose")) {
    await page.click("ul.choices button >> nth=0");
    await page.waitForURL(/\/resident$/);
  }
}

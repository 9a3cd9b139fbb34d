// The monitor-and-warn chain in the browser: a gauge's reading crosses the deep-water line, the
// alarm appears on the worker's board without a reload, the worker makes it a red warning for
// the community, approves and issues it, and a signed-in resident of the community sees the
// banner and answers "safe".
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, residentPhone, residentSignIn, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const GAUGE = "demo-sjf-water-1";

async function reading(seq, level) {
  const r = await fetch(`${BASE}/api/v1/ingest/readings`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer anxin-demo-${GAUGE}` },
    body: JSON.stringify({ seq, ts: new Date().toISOString(), values: { level } }),
  });
  assert.equal(r.status, 200, `reading ${seq}: ${await r.text()}`);
}

test("worker: a reading raises an alarm, it becomes a red warning; a resident sees it and answers", async () => {
  const { phone } = await residentPhone();
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", "worker");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/manage(\/nodes\/.*)?$/);

  // The board is open and live before the water rises.
  await page.goto(`${BASE}/manage/alarms`);
  await page.waitForFunction(() => document.getElementById("alarm-live").textContent.length > 0);
  const seq = Date.now();
  await reading(seq, 0.05);
  await reading(seq + 1, 0.62);
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#results tr.alarm")].some((tr) => tr.textContent.includes("deep_water")),
    null, { timeout: 15000 });
  await page.waitForSelector("path.anxin-alarm");
  await axe(page, "alarm board");
  await shot(page, "manage-alarms.png");

  // Make it a warning: the form comes filled in from the alarm; the worker makes it red and
  // covers the whole community.
  const row = page.locator("#results tr.alarm", { hasText: "deep_water" }).first();
  await row.locator("a.button").click();
  await page.waitForURL(/\/manage\/nodes\/[0-9a-f-]{36}\/warnings\/new\?alarm=/);
  assert.equal(await page.inputValue("#category"), "flood");
  assert.match(await page.inputValue("#headline"), /积水监测/);
  await page.selectOption("#level", "red");
  await page.selectOption("#whole_node", "1");
  await axe(page, "warning form");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/warnings\/[0-9a-f-]{36}$/);
  assert.match(await page.textContent("h1"), /草稿/);

  await page.click("div.steps button:has-text('审核通过')");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("已审核"));
  await page.click("div.steps button:has-text('发布')");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("已发布"));
  await page.waitForSelector("#reach-total-h");
  await axe(page, "issued warning");
  await shot(page, "manage-warning.png");
  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();

  // The resident: the banner, then "I am safe".
  const r = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await residentSignIn(r.page, phone);
  await r.page.waitForSelector("#warnings .warning-red");
  assert.match(await r.page.textContent("#warnings"), /积水监测/);
  await axe(r.page, "resident warning banner");
  await shot(r.page, "resident-warning.png");
  await r.page.click("#warnings button[value=safe]");
  await r.page.waitForSelector("#warnings .warning-red p.ok");
  assert.deepEqual(r.blocked, [], "no request left loopback");
  assert.deepEqual(r.errors, [], "no page errors");
  await r.context.close();
});

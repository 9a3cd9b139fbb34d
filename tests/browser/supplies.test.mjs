// Supplies in the browser beyond the campaign: a worker books stock into a depot and is refused
// an issue larger than the balance (the error names the field; nothing moves); the gap report;
// the provider publishes an offer on its own portal after a bad price is refused; a worker
// records a donation in the emergency fund and a resident reads it on the public page without
// signing in. axe checks every page on the way.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const COMMUNITY_CODE = "510104017001"; // 水井坊社区

async function signIn(page, username) {
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.endsWith("/login"));
}

/// The quantity in a depot's balance row of an item, as a number (0 when the row is absent).
async function balance(page, item) {
  const row = page.locator(`table.balances tr[data-item="${item}"] td`).nth(1);
  if ((await row.count()) === 0) return 0;
  return Number.parseInt((await row.innerText()).trim(), 10);
}

function isoDate(daysAhead) {
  const d = new Date(Date.now() + daysAhead * 86400000);
  return d.toISOString().slice(0, 10);
}

test("reserves: receive into a depot, an issue over the balance refused, the gap report", async () => {
  const s = await newPage(browser);
  await signIn(s.page, "worker");
  await s.page.goto(`${BASE}/manage/supplies`);
  await axe(s.page, "supplies");
  const depotLink = s.page.locator("table tr[data-id] a[href^='/manage/supplies/depots/']").first();
  await depotLink.click();
  await s.page.waitForURL(/\/manage\/supplies\/depots\/[0-9a-f-]{36}$/);
  await axe(s.page, "depot");
  const depotUrl = s.page.url();
  const waterItem = await s.page.locator("#item_id option", { hasText: "饮用水" }).first().getAttribute("value");
  assert.ok(waterItem, "the item list offers drinking water");
  const before = await balance(s.page, "water");

  // Receive 120 with an expiry date.
  await s.page.selectOption("#kind", "receive");
  await s.page.selectOption("#item_id", waterItem);
  await s.page.fill("#quantity", "120");
  await s.page.fill("#expires_on", isoDate(300));
  await s.page.fill("#note", "浏览器测试入库");
  await s.page.click("form[action^='/manage/supplies/depots/'] button[type=submit]");
  await s.page.waitForURL(depotUrl);
  assert.equal(await balance(s.page, "water"), before + 120);

  // Issue more than there is: refused on the form, the quantity named, the balance unchanged.
  await s.page.selectOption("#kind", "issue");
  await s.page.selectOption("#item_id", waterItem);
  await s.page.fill("#quantity", String(before + 121));
  await s.page.fill("#expires_on", "");
  await s.page.click("form[action^='/manage/supplies/depots/'] button[type=submit]");
  const err = s.page.locator("p.error[role=alert]");
  await err.waitFor();
  assert.equal(await err.getAttribute("data-code"), "stock.insufficient");
  assert.equal(await s.page.inputValue("#quantity"), String(before + 121), "the form keeps what was typed");
  await axe(s.page, "depot with an error");
  await s.page.goto(depotUrl);
  assert.equal(await balance(s.page, "water"), before + 120, "a refused issue moves nothing");

  // The gap report of the community, and its CSV.
  await s.page.goto(`${BASE}/manage/supplies`);
  await s.page.locator("a[href^='/manage/supplies/gaps/']").first().click();
  await s.page.waitForURL(/\/manage\/supplies\/gaps\/[0-9a-f-]{36}$/);
  await axe(s.page, "gap report");
  const csvHref = await s.page.locator("a[href$='.csv']").getAttribute("href");
  const csv = await s.context.request.get(`${BASE}${csvHref}`);
  assert.equal(csv.status(), 200);
  assert.match(await csv.text(), /water|饮用水/);
  assert.deepEqual(s.blocked, [], "no request left loopback");
  assert.deepEqual(s.errors, []);
  await s.context.close();
});

test("providers: the provider publishes an offer after a bad price is refused", async () => {
  const p = await newPage(browser);
  await signIn(p.page, "provider");
  await p.page.waitForURL(/\/manage\/provider$/);
  await axe(p.page, "provider portal");
  const note = `浏览器测试报价 ${Date.now()}`;
  await p.page.selectOption("#item_code", "water");
  await p.page.fill("#quantity_available", "800");
  await p.page.fill("#unit_price", "两块五");
  await p.page.fill("#lead_time_hours", "12");
  await p.page.fill("#valid_until", isoDate(30));
  await p.page.fill("#note", note);
  await p.page.click("form[action='/manage/provider'] button[type=submit]");
  const err = p.page.locator("p.error[role=alert]");
  await err.waitFor();
  assert.equal(await err.getAttribute("data-field"), "unit_price");
  assert.equal(await p.page.inputValue("#note"), note, "the form keeps what was typed");
  await axe(p.page, "provider portal with an error");
  const offersBefore = await p.page.locator("form.offer").count();

  await p.page.fill("#unit_price", "2.50");
  await p.page.click("form[action='/manage/provider'] button[type=submit]");
  await p.page.waitForURL(/\/manage\/provider$/);
  assert.equal(await p.page.locator("p.error[role=alert]").count(), 0);
  assert.equal(await p.page.locator("form.offer").count(), offersBefore + 1);
  const values = await p.page.locator("form.offer input[name=unit_price]").evaluateAll((els) => els.map((e) => e.value));
  assert.ok(values.includes("2.5") || values.includes("2.50"), `the new price is listed: ${values}`);
  // The provider reaches no staff page.
  const r = await p.context.request.get(`${BASE}/manage/supplies`, { maxRedirects: 0 });
  assert.ok([302, 303, 403].includes(r.status()), `provider on /manage/supplies: ${r.status()}`);
  assert.deepEqual(p.blocked, []);
  assert.deepEqual(p.errors, []);
  await p.context.close();

  // The worker's side: the orders page.
  const w = await newPage(browser);
  await signIn(w.page, "worker");
  await w.page.goto(`${BASE}/manage/orders`);
  await axe(w.page, "orders");
  await w.context.close();
});

test("funds: a donation recorded by the worker shows on the public page", async () => {
  const w = await newPage(browser);
  await signIn(w.page, "worker");
  await w.page.goto(`${BASE}/manage/funds`);
  await axe(w.page, "funds");
  await w.page.locator("a[href^='/manage/funds/']").first().click();
  await w.page.waitForURL(/\/manage\/funds\/[0-9a-f-]{36}$/);
  await axe(w.page, "fund ledger");
  const description = `浏览器测试捐赠 ${Date.now()}`;
  await w.page.check("input[name=direction][value=income]");
  await w.page.selectOption("#kind", "donation");
  await w.page.fill("#amount", "不是金额");
  await w.page.fill("#description", description);
  await w.page.click("form[action$='/entries'] button[type=submit]");
  const err = w.page.locator("p.error[role=alert]");
  await err.waitFor();
  assert.equal(await err.getAttribute("data-field"), "amount");
  await w.page.fill("#amount", "123.45");
  await w.page.fill("#description", description);
  await w.page.click("form[action$='/entries'] button[type=submit]");
  await w.page.waitForURL(/\/manage\/funds\/[0-9a-f-]{36}$/);
  await w.page.getByText(description).first().waitFor();
  await w.context.close();

  // A resident, not signed in, reads the community's public page.
  const r = await newPage(browser);
  await r.page.goto(`${BASE}/public/funds/${COMMUNITY_CODE}`);
  await axe(r.page, "public fund page");
  await r.page.getByText(description).first().waitFor();
  assert.match(await r.page.locator("main").innerText(), /123\.45/);
  assert.deepEqual(r.blocked, []);
  assert.deepEqual(r.errors, []);
  await r.context.close();
});

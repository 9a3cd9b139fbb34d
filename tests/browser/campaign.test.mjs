// Distribution in the browser: a worker starts a mask campaign (the configure form, then 开启
// 发放); a resident reserves on a phone and sees the pickup code as a QR code with the place and
// time; the worker redeems the code on the redeem page; a second redemption is refused with when
// and by whom it was used. axe checks each page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, apiLogin, api, residentPhone, residentSignIn, BASE, PASSWORD } from "./lib.mjs";

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

test("campaign: start, reserve with a QR code, redeem once", async () => {
  const worker = await apiLogin("worker");
  const node = await api(worker, "GET", `/api/v1/nodes/by-code/${COMMUNITY_CODE}`);

  // The worker configures and opens a mask campaign.
  const staff = await newPage(browser);
  await signIn(staff.page, "worker");
  await staff.page.goto(`${BASE}/manage/campaigns`);
  await axe(staff.page, "campaigns");
  const title = `口罩发放 ${Date.now()}`;
  await staff.page.selectOption("#node_id", node.id);
  await staff.page.fill("#title", title);
  await staff.page.fill("#item_code", "mask");
  await staff.page.fill("#stock", "100");
  await staff.page.fill("#quantity_per_household", "2");
  await staff.page.fill("#capacity", "50");
  await staff.page.click("#new-campaign button[type=submit]");
  await staff.page.waitForURL(/\/manage\/campaigns\/[0-9a-f-]{36}$/);
  const id = staff.page.url().split("/").pop();
  assert.equal(await staff.page.getAttribute("#status", "data-status"), "draft");
  await staff.page.click("form[action$='/open'] button");
  await staff.page.waitForSelector("#status[data-status=open]");
  await axe(staff.page, "campaign");
  await shot(staff.page, "campaign.png");

  // A resident reserves on a phone and sees the QR code.
  const { phone } = await residentPhone();
  const res = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await residentSignIn(res.page, phone);
  await res.page.goto(`${BASE}/resident/supplies`);
  await axe(res.page, "resident supplies");
  await res.page.click(`#c-${id} button[type=submit]`);
  await res.page.waitForSelector(`#c-${id} img.qr`);
  const code = (await res.page.textContent(`#c-${id} .pickup-code`)).trim();
  assert.match(code, /^[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}$/);
  assert.match(await res.page.textContent(`#c-${id}`), /社区居委会/);
  await axe(res.page, "resident pickup code");
  await shot(res.page, "campaign-resident.png");

  // The worker redeems it; the second time it is refused.
  await staff.page.goto(`${BASE}/manage/campaigns/${id}/redeem`);
  await axe(staff.page, "redeem");
  await staff.page.fill("#code", code.toLowerCase());
  await staff.page.click("form.stack button[type=submit]");
  await staff.page.waitForSelector(".redeem-result[data-ok=true]");
  await axe(staff.page, "redeemed");
  await staff.page.fill("#code", code);
  await staff.page.click("form.stack button[type=submit]");
  await staff.page.waitForSelector(".redeem-result[data-ok=false]");
  assert.equal(await staff.page.getAttribute(".redeem-result [data-code]", "data-code"), "campaign.code_used");
  assert.ok((await staff.page.textContent("#used-at")).trim().length > 0);
  await axe(staff.page, "second redemption refused");
  await shot(staff.page, "campaign-redeem-refused.png");
  // The refused second redemption answers 409 on purpose.
  assert.deepEqual(staff.errors.filter((e) => !/status of 409/.test(e)), []);
  assert.deepEqual(res.errors, []);
});

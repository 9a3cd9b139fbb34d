// The management end's record forms and administration pages: a community worker creates a
// building and a dwelling through the forms and sees them (a bad field first shows its Chinese
// error); the audit administrator enrols TOTP on the enrolment page and opens the audit log.
// axe-core runs on every page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { launch, newPage, axe, shot, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function signIn(page, username) {
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
}

test("community worker: create a building and a dwelling through the forms", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(page, "worker");
  await page.waitForURL(/\/manage\/nodes\/[0-9a-f-]{36}$/);
  await axe(page, "community page");

  // The community page offers the new-building form.
  await page.click("text=新建楼栋");
  await page.waitForURL(/\/buildings\/new$/);
  assert.match(await page.textContent("main h1"), /新建楼栋/);
  await axe(page, "new building form");

  // A bad field: its Chinese error next to it, and the form keeps what was typed.
  const name = `浏览器测试楼${Date.now() % 100000}`;
  await page.fill("#name", name);
  await page.fill("#floors", "0");
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector("#floors-error");
  assert.ok(/[\u4e00-\u9fff]/.test(await page.textContent("#floors-error")), "error in Chinese");
  assert.equal(await page.inputValue("#name"), name);
  assert.equal(await page.getAttribute("#floors", "aria-invalid"), "true");
  await axe(page, "new building form with an error");

  await page.fill("#floors", "18");
  await page.fill("#address", "水井坊街 88 号");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/buildings\/[0-9a-f-]{36}$/);
  assert.equal((await page.textContent("main h1")).replace(/\s+楼栋$/, "").trim(), name);
  assert.ok((await page.textContent("main")).includes("水井坊街 88 号"));
  await axe(page, "building");
  await shot(page, "manage-building.png");

  // A unit, then a dwelling in it.
  await page.click("text=新增单元");
  await page.waitForURL(/\/units\/new$/);
  await axe(page, "new unit form");
  await page.fill("#name", "1单元");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/buildings\/[0-9a-f-]{36}$/);

  await page.click("text=新增房屋");
  await page.waitForURL(/\/dwellings\/new$/);
  await axe(page, "new dwelling form");
  await page.fill("#number", "1-1-301");
  await page.selectOption("#unit_id", { label: "1单元" });
  await page.fill("#floor", "3");
  await page.fill("#area_m2", "89.5");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/dwellings\/[0-9a-f-]{36}$/);
  const detail = await page.textContent("main");
  assert.ok(detail.includes("1-1-301") && detail.includes("1单元") && detail.includes("89.5"), detail);
  await axe(page, "dwelling");

  // Back on the building, the dwelling is listed.
  await page.click(`dd a:text-is("${name}")`);
  await page.waitForURL(/\/manage\/buildings\/[0-9a-f-]{36}$/);
  assert.ok((await page.textContent("section[aria-labelledby=dwellings-h]")).includes("1-1-301"));

  // The other lists and forms of the management end pass axe too.
  await page.click("nav.main-nav >> text=户");
  await page.waitForURL(/\/manage\/households/);
  assert.ok((await page.$$("table.list tbody tr")).length > 0, "households listed");
  await axe(page, "households list");
  await page.click("table.list tbody tr td a");
  await page.waitForURL(/\/manage\/households\/[0-9a-f-]{36}$/);
  await axe(page, "household");
  await page.click("text=登记新成员");
  await page.waitForURL(/\/people\/new$/);
  await axe(page, "new person form");
  await page.click("nav.main-nav >> text=重点人群");
  await page.waitForURL(/\/manage\/vulnerable/);
  await axe(page, "vulnerable people list");
  await page.click("nav.main-nav >> text=设施");
  await page.waitForURL(/\/manage\/facilities/);
  await axe(page, "facilities list");
  await page.goBack();
  await page.goBack();
  await page.goBack();
  await page.goBack();
  await page.goBack();
  await page.waitForURL(/\/manage\/buildings\/[0-9a-f-]{36}$/);

  // Keyboard: the skip link is the first stop and leads to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.className), "skip");

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

/// RFC 6238 code (SHA-1, 30 s, 6 digits) for a base32 secret, as an authenticator app makes it.
function totp(base32, at = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = createHmac("sha1", Buffer.from(bytes)).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}

test("audit administrator: enrol TOTP, then read the audit log", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(page, "auditor");
  // An administrator without a second factor is sent to enrolment.
  await page.waitForURL(/\/manage\/totp$/);
  await axe(page, "TOTP enrolment");
  await page.click("main form button[type=submit]");
  await page.waitForSelector("img.qr");
  assert.equal(await page.getAttribute("img.qr", "alt"), "两步验证密钥二维码");
  await axe(page, "TOTP QR code");
  await shot(page, "manage-totp.png");
  await page.click("summary");
  const secret = (await page.textContent("#totp-secret")).trim();
  await page.fill("#code", totp(secret));
  await page.click("main form.stack button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/manage/totp"));

  await page.click("nav.main-nav >> text=审计日志");
  await page.waitForURL(/\/manage\/audit/);
  assert.equal((await page.textContent("main h1")).trim(), "审计日志");
  const actions = await page.$$eval("tbody tr", (rows) => rows.map((r) => r.dataset.action));
  assert.ok(actions.includes("auth.totp_enrolled"), `the enrolment is logged: ${actions}`);
  await axe(page, "audit log");
  await shot(page, "manage-audit.png");

  // Filter by action.
  await page.selectOption("#action", "auth.login");
  await page.click(".filters button[type=submit]");
  await page.waitForURL(/action=auth\.login/);
  const filtered = await page.$$eval("tbody tr", (rows) => rows.map((r) => r.dataset.action));
  assert.ok(filtered.length > 0 && filtered.every((a) => a === "auth.login"), `${filtered}`);
  await axe(page, "audit log filtered");

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

test("security administrator: enrol TOTP, the users and one user's grants", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(page, "secadmin");
  await page.waitForURL(/\/manage\/totp$/);
  await page.click("main form button[type=submit]");
  await page.waitForSelector("img.qr");
  await page.click("summary");
  await page.fill("#code", totp((await page.textContent("#totp-secret")).trim()));
  await page.click("main form.stack button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/manage/totp"));

  await page.click("nav.main-nav >> text=账号与授权");
  await page.waitForURL(/\/manage\/users/);
  await axe(page, "users");
  await page.fill("#q", "worker");
  await page.click(".filters button[type=submit]");
  await page.click("table.list tbody a:text-is('worker')");
  await page.waitForURL(/\/manage\/users\/[0-9a-f-]{36}$/);
  assert.ok((await page.textContent("main")).includes("社区工作者"), "the worker's grant is shown");
  await axe(page, "user grants");
  await shot(page, "manage-grants.png");

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

// A resident signs in with a code sent to their phone (read from the SMS outbox), sees their
// household and corrects a member's name; the large-text mode works.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, residentPhone, codeFromOutbox, waitFor, BASE } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("resident: phone code sign-in, own household, correct a member", async () => {
  const { phone } = await residentPhone();
  const local = phone.replace(/\D/g, "").slice(-11);
  const { context, page, blocked, errors } = await newPage(browser, {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });

  await page.goto(`${BASE}/resident`);
  assert.match(page.url(), /\/resident\/login$/);
  await axe(page, "resident sign-in");
  await shot(page, "resident-login.png");

  // A malformed phone gets the code's Chinese text.
  await page.fill("#phone", "123");
  await page.click("form.stack button[type=submit]");
  assert.match(await page.textContent("p.error"), /手机号格式不正确/);

  const since = Date.now() - 1000;
  await page.fill("#phone", local);
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector("#code");
  await axe(page, "code entry");
  const code = await waitFor(() => codeFromOutbox(local, since));
  assert.ok(code, "a code in the outbox");
  await page.fill("#code", code);
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/resident(\/choose)?$/);
  if (page.url().endsWith("/choose")) {
    await axe(page, "choose person");
    await page.click("ul.choices button >> nth=0");
    await page.waitForURL(/\/resident$/);
  }
  await page.waitForSelector("ul.cards li.card");
  await axe(page, "own household");

  // 适老化: base font at least 18px, large mode at least 22px, touch targets at least 44px.
  const size = () => page.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize));
  assert.ok((await size()) >= 18, `base font ${await size()}px`);
  const small = await page.$$eval("a.button, button", (els) =>
    els.map((e) => e.getBoundingClientRect()).filter((r) => r.height > 0 && r.height < 44).length);
  assert.equal(small, 0, "every button is at least 44px tall");
  await page.click("text=大字模式");
  await page.waitForSelector("body.large");
  assert.ok((await size()) >= 22, `large font ${await size()}px`);
  await axe(page, "own household, large text");
  await shot(page, "resident-household.png");

  // Correct the second member's name.
  const cards = await page.$$("ul.cards li.card");
  assert.ok(cards.length >= 2, "a household of two or more");
  const target = cards[1];
  const oldName = (await target.$eval("h2", (h) => h.firstChild.textContent)).trim();
  await target.$eval("a.button", (a) => a.click());
  await page.waitForURL(/\/resident\/people\/[0-9a-f-]{36}\/edit$/);
  await axe(page, "correct member");
  // A bad phone is refused, named by field, in Chinese.
  await page.fill("#phone", "999");
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector("#phone-error");
  assert.match(await page.textContent("#phone-error"), /手机号格式不正确/);
  await axe(page, "correct member with error");
  const newName = oldName.length > 1 ? oldName.slice(0, -1) + "安" : oldName + "安";
  await page.fill("#name", newName);
  await page.fill("#phone", "");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/resident\?saved=1$/);
  await page.waitForSelector("p.ok");
  const names = await page.$$eval("ul.cards li.card h2", (hs) => hs.map((h) => h.firstChild.textContent.trim()));
  assert.ok(names.includes(newName), `${newName} in ${names}`);
  await shot(page, "resident-saved.png");

  // Back to normal text, and sign out.
  await page.click("text=标准字号");
  await page.waitForSelector("body:not(.large)");
  await page.click("text=退出登录");
  await page.waitForURL(/\/resident\/login$/);

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

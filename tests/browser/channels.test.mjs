// A resident adds an e-mail address for warnings on a phone: a bad address is refused with the
// field named and what was typed kept; a good one gets a code by e-mail; a wrong code is refused;
// the right code verifies the address, which the page then shows masked. axe checks each step.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { launch, newPage, axe, residentPhone, residentSignIn, waitFor, DATA, BASE } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// The newest e-mailed channel code to `to`, from the e-mail outbox.
function mailedCode(to, since) {
  const dir = join(DATA, "outbox", "email");
  let best = null;
  let names = [];
  try { names = readdirSync(dir); } catch { return null; }
  for (const f of names) {
    if (!f.endsWith(".json") || f.startsWith(".")) continue;
    const p = join(dir, f);
    const st = statSync(p);
    if (st.mtimeMs < since) continue;
    const m = JSON.parse(readFileSync(p, "utf8"));
    if (m.template !== "channel_code" || m.to !== to) continue;
    if (!best || st.mtimeMs > best.t) best = { t: st.mtimeMs, code: m.params.code };
  }
  return best && best.code;
}

test("channels: a resident verifies an e-mail address for warnings", async () => {
  const { phone } = await residentPhone();
  const r = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true });
  await residentSignIn(r.page, phone);
  await r.page.click("nav.main-nav a[href='/resident/channels']");
  await r.page.waitForURL(/\/resident\/channels$/);
  await axe(r.page, "channels");

  // The browser's own check is skipped to reach the server's.
  await r.page.evaluate(() => document.querySelectorAll("form").forEach((f) => f.setAttribute("novalidate", "")));
  await r.page.fill("#address", "wang at example");
  await r.page.click("form[action='/resident/channels/email'] button[type=submit]");
  const err = r.page.locator("p.error[role=alert]");
  await err.waitFor();
  assert.equal(await err.getAttribute("data-code"), "channel.email_invalid");
  assert.equal(await err.getAttribute("data-field"), "address");
  assert.equal(await r.page.inputValue("#address"), "wang at example");
  await axe(r.page, "channels with an error");

  const to = `resident${Date.now()}@example.com`;
  const since = Date.now() - 1000;
  await r.page.fill("#address", to);
  await r.page.click("form[action='/resident/channels/email'] button[type=submit]");
  await r.page.waitForURL(/done=email_sent/);
  const pending = r.page.locator("p.channel-email");
  assert.equal(await pending.getAttribute("data-verified"), "false", await r.page.content());
  const code = await waitFor(() => mailedCode(to, since));
  assert.ok(code, "a code in the e-mail outbox");

  await r.page.fill("#code", code === "000000" ? "111111" : "000000");
  await r.page.click("form[action='/resident/channels/email/confirm'] button[type=submit]");
  await r.page.locator("p.error[data-code='channel.code_wrong']").waitFor();

  await r.page.fill("#code", code);
  await r.page.click("form[action='/resident/channels/email/confirm'] button[type=submit]");
  await r.page.waitForURL(/done=email$/);
  const shown = await r.page.locator("p.channel-email[data-verified=true]").innerText();
  assert.match(shown, /^r\*\*\*@example\.com/);
  assert.ok(!(await r.page.content()).includes(to), "the address is shown masked only");
  await axe(r.page, "channels verified");
  assert.deepEqual(r.blocked, []);
  assert.deepEqual(r.errors, []);
  await r.context.close();
});

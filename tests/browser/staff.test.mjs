// A community worker signs in, finds a person by part of a Chinese name, opens the person,
// unmasks (audited), sees a field-named error in Chinese on the edit form, and opens the map.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("community worker: sign in, search by part of a Chinese name, map", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 800 } });

  await page.goto(`${BASE}/manage/people`);
  assert.match(page.url(), /\/manage\/login$/, "signed-out pages go to sign-in");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  await axe(page, "sign-in");
  await shot(page, "manage-login.png");

  // A wrong password shows the code's Chinese text.
  await page.fill("#username", "worker");
  await page.fill("#password", "wrong-password");
  await page.click("button[type=submit]");
  assert.equal(await page.textContent("p.error"), "用户名或密码错误");

  await page.fill("#username", "worker");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/manage(\/nodes\/.*)?$/);
  await page.waitForSelector("main h1");
  await axe(page, "tree");

  // The tree as navigation: the community page lists grids.
  await page.click("nav.main-nav >> text=实有人口");
  await page.waitForURL(/\/manage\/people/);
  const first = (await page.textContent("table.list tbody tr td a")).trim();
  assert.ok(first.length >= 2, `a name in the list: ${first}`);
  // Part of the name: its last character (a substring, not a prefix).
  const part = [...first].slice(-1)[0];
  await page.fill("#q", part);
  await page.click(".filters button[type=submit]");
  await page.waitForURL(new RegExp(`q=${encodeURIComponent(part)}`));
  await page.waitForSelector("table.list tbody tr");
  const names = await page.$$eval("table.list tbody tr td:first-child a", (as) => as.map((a) => a.textContent.trim()));
  assert.ok(names.length > 0, "search finds someone");
  for (const n of names) assert.ok(n.includes(part), `${n} contains ${part}`);
  assert.ok(names.includes(first), `${first} is found by ${part}`);
  await axe(page, "people list");
  await shot(page, "manage-people.png");

  // Detail: masked, then unmasked on request.
  await page.click(`table.list tbody a:text-is("${first}")`);
  await page.waitForURL(/\/manage\/people\/[0-9a-f-]{36}$/);
  const masked = (await page.textContent("#doc")).trim();
  await axe(page, "person");
  await page.click("text=查看完整证件号和手机号");
  await page.waitForSelector("p.notice");
  const plain = (await page.textContent("#doc")).trim();
  assert.ok(!plain.includes("*"), `unmasked document: ${plain} (was ${masked})`);

  // Edit: an empty name is refused with a field-named Chinese error.
  await page.click("text=修改");
  await page.waitForURL(/\/edit$/);
  await axe(page, "person edit");
  await page.fill("#name", "");
  await page.fill("#phone", "12345");
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector(".field-error");
  const err = await page.$$eval(".field-error", (ps) => ps.map((p) => [p.id, p.textContent.trim()]));
  assert.ok(err.length >= 1, "a field error is shown");
  assert.match(err[0][0], /^(name|phone)-error$/);
  assert.ok(/[\u4e00-\u9fff]/.test(err[0][1]), `error in Chinese: ${err[0][1]}`);
  await axe(page, "person edit with errors");

  // English switch.
  await page.click(".prefs a[lang=en]");
  await page.waitForSelector("html[lang=en]");
  await page.goto(`${BASE}/manage/people`);
  assert.equal(await page.textContent("main h1"), "People");
  await page.click(".prefs a[lang=zh-CN]");
  await page.waitForSelector("html[lang=zh-CN]");

  // Places lists.
  await page.click("nav.main-nav >> text=设施");
  await page.waitForURL(/\/manage\/facilities$/);
  assert.ok((await page.$$("table.list tbody tr")).length > 0, "facilities listed");
  await axe(page, "facilities");
  await page.click("nav.main-nav >> text=楼栋");
  await page.waitForURL(/\/manage\/buildings$/);
  await axe(page, "buildings");

  // The map: Leaflet from /static, facilities from the API, no tiles.
  await page.click("nav.main-nav >> text=地图");
  await page.waitForURL(/\/manage\/map$/);
  await page.waitForSelector(".leaflet-container");
  await page.waitForFunction(() => document.getElementById("map-count").textContent.length > 0);
  const count = await page.textContent("#map-count");
  assert.match(count, /已显示 \d+ 个设施/);
  assert.ok(!/已显示 0 个设施、0 栋楼/.test(count), `something on the map: ${count}`);
  await axe(page, "map");
  await shot(page, "manage-map.png");

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

// The map with no network: a community worker opens it (offline base, the default), sees the
// buildings, draws a grid's outline and a named area, moves a building, and finds the drawings
// again after a reload.
// Every request off loopback is aborted (lib.mjs), so a tile or font fetch would fail the test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// Click the points (offsets from the map's centre, in pixels) on the map.
async function clickOnMap(page, offsets) {
  const box = await page.locator("#map").boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  for (const [dx, dy] of offsets) {
    await page.mouse.click(cx + dx, cy + dy);
    await page.waitForTimeout(150);
  }
}

test("community worker: the map offline, draw a grid outline and an area, reload", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", "worker");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/manage(\/nodes\/.*)?$/);

  await page.goto(`${BASE}/manage/map`);
  await page.waitForSelector(".leaflet-container");
  assert.equal(await page.$$eval(".leaflet-tile", (t) => t.length), 0, "offline: no tiles");
  await page.waitForSelector(".leaflet-control-scale");
  await page.waitForFunction(() => document.querySelectorAll("path.anxin-building").length > 0);

  // A grid's outline.
  await page.click("[data-mode=grid]");
  await page.waitForFunction(() => document.querySelectorAll("#map-grid option").length > 0);
  await clickOnMap(page, [[-160, -120], [160, -120], [160, 120], [-160, 120]]);
  await page.click("#map-save button[type=submit]");
  await page.waitForFunction(() => document.getElementById("map-hint").textContent === "已保存。");
  await page.waitForFunction(() => document.querySelectorAll("path.anxin-grid").length > 0);

  // A named area, drawn across the grid just drawn (clicks on it count as map clicks).
  await page.click("[data-mode=area]");
  await clickOnMap(page, [[-60, -40], [80, -50], [20, 90]]);
  await page.fill("#map-name", "浏览器标绘风险区");
  await page.selectOption("#map-kind", "risk_area");
  await axe(page, "map drawing");
  await page.click("#map-save button[type=submit]");
  await page.waitForFunction(() => document.getElementById("map-hint").textContent === "已保存。");
  await shot(page, "manage-map-drawing.png");

  // Move a building: pick it, click its new place; the server stores it (in WGS84).
  await page.click("[data-mode=move]");
  // A building whose centre is visible and not covered by another layer or a control.
  const at = await page.evaluate(() => {
    for (const p of document.querySelectorAll("path.anxin-building")) {
      const r = p.getBoundingClientRect();
      const x = r.x + r.width / 2, y = r.y + r.height / 2;
      if (document.elementFromPoint(x, y) === p) return { x, y };
    }
    return null;
  });
  assert.ok(at, "a building is visible on the map");
  await page.mouse.click(at.x, at.y);
  await page.waitForFunction(() => /已选中/.test(document.getElementById("map-hint").textContent));
  await clickOnMap(page, [[-200, 150]]);
  await page.waitForFunction(() => document.getElementById("map-hint").textContent === "已保存。");

  // Both are stored: after a reload they are drawn again from the server.
  await page.reload();
  await page.waitForSelector(".leaflet-container");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#map-list li")].some((li) => li.textContent.includes("浏览器标绘风险区")));
  assert.ok((await page.$$("path.anxin-grid")).length > 0, "grid outline after reload");
  assert.ok((await page.$$("path.anxin-feature")).length > 0, "drawn area after reload");
  assert.ok((await page.$$("path.anxin-building")).length > 0, "buildings after reload");

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

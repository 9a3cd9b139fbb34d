// The hazard ledger in the browser: the grid worker does a household gas inspection on a phone
// and fails the joint-sealing item (a major one) with a photo; a major hazard appears with its
// deadlines (the plan within 24 hours, the fix within 7 working days); the community worker
// records the plan's start by linking a real activation of the community's gas plan; the grid
// worker marks the fix with a photo; the third-party inspector accepts it; the community worker
// closes it; and the community's on-time figures on the supervision page change.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, apiLogin, api, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const COMMUNITY_CODE = "510104017001"; // 水井坊社区
const GAS_TEMPLATE = "01940000-0014-7000-8000-000000000001"; // 燃气安全入户检查 (shipped)
// A 1×1 PNG: the photo evidence.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);
const photo = (name) => ({ name, mimeType: "image/png", buffer: PNG });

async function signIn(page, username) {
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.endsWith("/login"));
}

/// Open an action's form on the hazard page (the first one is open already).
async function openAction(page, action) {
  await page.$eval(`details.action-${action}`, (d) => { d.open = true; });
}

/// The community's gas-leak plan, written, adopted and activated over the API (the plan pages
/// have their own tests): the activation the hazard's plan start links to.
async function activeGasPlan() {
  const worker = await apiLogin("worker");
  const me = await api(worker, "GET", "/api/v1/auth/me");
  const node = await api(worker, "GET", `/api/v1/nodes/by-code/${COMMUNITY_CODE}`);
  const name = `水井坊社区燃气泄漏应急预案 ${Date.now()}`;
  const plan = await api(worker, "POST", "/api/v1/plans", { node_id: node.id, name, review_period_days: 365 });
  const version = await api(worker, "POST", `/api/v1/plans/${plan.id}/versions`, {
    change_summary: "首版",
    body: {
      risks: ["gas"],
      roles: [{ key: "commander", name: "指挥长", user_id: me.user.id }],
      tasks: [{ title: "关闭燃气总阀并疏散楼栋住户", role: "commander", due_minutes: 15 }],
    },
  });
  await api(worker, "POST", `/api/v1/plan-versions/${version.id}/adopt`, {});
  const incident = await api(worker, "POST", `/api/v1/plans/${plan.id}/activate`, { title: `${name}启动` });
  return { node, incident };
}

/// The community's own figures on the supervision page, as the community worker sees them.
async function figures(page) {
  await page.goto(`${BASE}/manage/supervision`);
  await page.waitForSelector("#sup-own");
  const num = async (sel) => Number((await page.textContent(sel)).trim());
  return {
    due: await num("#sup-due"),
    closedOnTime: await num("#sup-closed-on-time"),
    onTime: (await page.textContent("#sup-on-time")).trim(),
  };
}

test("a failed gas item becomes a major hazard: plan started, fixed, accepted, closed, counted on time", async () => {
  const { incident } = await activeGasPlan();

  // The community worker's figures before.
  const w = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(w.page, "worker");
  const before = await figures(w.page);
  await axe(w.page, "supervision, the community's own figures");

  // The grid worker on a phone: a household gas inspection from today's list (or, when today's
  // list has none, started from the gas checklist itself).
  const g = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const gp = g.page;
  await signIn(gp, "grid");
  await gp.goto(`${BASE}/manage/inspections`);
  await axe(gp, "inspections to-do list");
  const todo = gp.locator("ul.todo li", { hasText: "燃气" }).first();
  if (await todo.count()) {
    await todo.locator("button[type=submit]").click();
  } else {
    await gp.goto(`${BASE}/manage/inspection-templates/${GAS_TEMPLATE}`);
    await gp.locator("form:has(#start-target) button[type=submit]").click();
  }
  await gp.waitForURL(/\/manage\/inspections\/[0-9a-f-]{36}$/);
  await gp.waitForSelector("form#sheet");
  // Every item passes, but the joint sealing (soap-water test: bubbles), with a photo.
  const items = gp.locator("li.item");
  const n = await items.count();
  assert.equal(n, 12, "the household gas checklist has 12 items");
  for (let i = 0; i < n; i++) {
    const item = items.nth(i);
    const code = await item.getAttribute("data-code");
    if (code === "joint_sealing") continue;
    const pass = item.locator("input[type=radio][value=pass]");
    if (await pass.count()) await pass.check();
    else if (await item.locator("input[type=radio]").count()) await item.locator("input[type=radio]").first().check();
  }
  const joint = gp.locator("li.item[data-code=joint_sealing]");
  await joint.locator("input[type=radio][value=fail]").check();
  await joint.locator("input[name='note.joint_sealing']").fill("表前阀接口肥皂水检漏起泡");
  await joint.locator("input[type=file]").setInputFiles(photo("joint.png"));
  await axe(gp, "the phone checklist");
  await shot(gp, "manage-inspection-phone.png");
  await gp.click("button[name=action][value=finish]");
  await gp.waitForSelector("li.item.failed a.hazard");
  const hazardHref = await gp.getAttribute("li.item[data-code=joint_sealing] a.hazard", "href");
  assert.match(hazardHref, /^\/manage\/hazards\/[0-9a-f-]{36}$/);

  // The major hazard, with its deadlines in Beijing time.
  await gp.goto(`${BASE}${hazardHref}`);
  assert.match(await gp.textContent("h1"), /重大隐患/);
  assert.equal(await gp.getAttribute("#hazard-state", "data-state"), "reported");
  assert.match(await gp.textContent("#fix-due"), /^\d{4}-\d{2}-\d{2} 24:00$/);
  assert.match(await gp.textContent("#plan-due"), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
  assert.match(await gp.textContent("#plan-start"), /尚未记录预案启动/);
  await axe(gp, "a reported major hazard");

  // The community worker records the plan's start: the activation, not a checkbox.
  await w.page.goto(`${BASE}${hazardHref}`);
  const planForm = w.page.locator("form[data-action=record_plan_start]");
  await openAction(w.page, "record_plan_start");
  await planForm.locator("select[name=incident_id]").selectOption(incident.id);
  await planForm.locator("button[type=submit]").click();
  await w.page.waitForURL((u) => u.pathname === hazardHref);
  assert.match(await w.page.textContent("#plan-start"), /燃气泄漏应急预案/);
  await axe(w.page, "the hazard with its plan start");

  // The grid worker remediates and marks it fixed, with a photo.
  await gp.goto(`${BASE}${hazardHref}`);
  await openAction(gp, "start_remediation");
  await gp.locator("form[data-action=start_remediation] button[type=submit]").click();
  await gp.waitForFunction(() => document.querySelector("#hazard-state").dataset.state === "remediating");
  await openAction(gp, "mark_fixed");
  const fix = gp.locator("form[data-action=mark_fixed]");
  await fix.locator("textarea[name=note]").fill("更换表前阀接口密封圈，复测无气泡");
  await fix.locator("input[type=file]").setInputFiles(photo("fixed.png"));
  await fix.locator("button[type=submit]").click();
  await gp.waitForFunction(() => document.querySelector("#hazard-state").dataset.state === "fixed");
  // The grid worker has no acceptance form.
  assert.equal(await gp.locator("form[data-action=accept]").count(), 0);
  assert.deepEqual(g.blocked, [], "no request left loopback");
  assert.deepEqual(g.errors, [], "no page errors");
  await g.context.close();

  // Closing before acceptance is refused.
  await w.page.goto(`${BASE}${hazardHref}`);
  assert.equal(await w.page.locator("form[data-action=close]").count(), 0, "no close before acceptance");

  // The third-party inspector accepts it.
  const i = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(i.page, "inspector");
  await i.page.goto(`${BASE}${hazardHref}`);
  await openAction(i.page, "accept");
  const accept = i.page.locator("form[data-action=accept]");
  await accept.locator("textarea[name=note]").fill("现场复核：接口密封良好，验收合格");
  await accept.locator("input[type=file]").setInputFiles(photo("accepted.png"));
  await axe(i.page, "the inspector's acceptance form");
  await accept.locator("button[type=submit]").click();
  await i.page.waitForFunction(() => document.querySelector("#hazard-state").dataset.state === "accepted");
  assert.notEqual((await i.page.textContent("#accepted-by")).trim(), "—");
  assert.deepEqual(i.blocked, [], "no request left loopback");
  assert.deepEqual(i.errors, [], "no page errors");
  await i.context.close();

  // The community worker closes it; the trail holds every step.
  await w.page.goto(`${BASE}${hazardHref}`);
  await openAction(w.page, "close");
  await w.page.locator("form[data-action=close] button[type=submit]").click();
  await w.page.waitForFunction(() => document.querySelector("#hazard-state").dataset.state === "closed");
  const trail = await w.page.textContent("table.trail");
  for (const step of ["上报", "预案启动", "开始整改", "整改完成", "验收通过", "销号"]) {
    assert.match(trail, new RegExp(step), `the trail shows ${step}`);
  }
  assert.match(await w.page.textContent("main"), /按期销号：是/);
  await shot(w.page, "manage-hazard.png");

  // The ledger lists it; the supervision page counts it closed on time.
  await w.page.goto(`${BASE}/manage/hazards?state=closed`);
  await w.page.locator(`tr[data-id="${hazardHref.split("/").pop()}"]`).waitFor();
  await axe(w.page, "the hazard ledger");
  const after = await figures(w.page);
  assert.equal(after.closedOnTime, before.closedOnTime + 1, `closed on time: ${JSON.stringify({ before, after })}`);
  assert.ok(after.due >= before.due, `due: ${JSON.stringify({ before, after })}`);
  assert.deepEqual(w.blocked, [], "no request left loopback");
  assert.deepEqual(w.errors, [], "no page errors");
  await w.context.close();
});

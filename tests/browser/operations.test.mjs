// Emergency operations in the browser: a red flood warning for 锦官驿街道 starts the street's
// flood plan; the street officer confirms it and sees the tasks and the welfare-check board; the
// demo volunteer accepts the call-out and records three residents of 水井坊社区 safe; the board
// counts down without a reload; the officer stands the plan down and writes the review, whose
// lesson becomes a proposed revision of the plan.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, apiLogin, api, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const STREET_CODE = "510104017"; // 锦官驿街道

async function signIn(page, username) {
  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.endsWith("/login"));
}

/// The street's own flood plan, written and adopted over the API (the plan form has its own
/// story test): red flood warnings start it; three tasks; the street's shelters; every demo
/// volunteer of the street called out; welfare checks for every vulnerable person.
async function streetPlan(name) {
  const street = await apiLogin("street");
  const me = await api(street, "GET", "/api/v1/auth/me");
  const node = await api(street, "GET", `/api/v1/nodes/by-code/${STREET_CODE}`);
  const shelters = await api(street, "GET", `/api/v1/facilities?under=${node.id}&kind=shelter&limit=50`);
  const plan = await api(street, "POST", "/api/v1/plans", { node_id: node.id, name, review_period_days: 365 });
  const version = await api(street, "POST", `/api/v1/plans/${plan.id}/versions`, {
    change_summary: "首版",
    body: {
      risks: ["flood"],
      triggers: [{ kind: "warning", min_level: "red", categories: ["flood"] }],
      roles: [{ key: "commander", name: "指挥长", user_id: me.user.id }],
      tasks: [
        { title: "通知各社区启动防汛响应", role: "commander", due_minutes: 15 },
        { title: "调度抢险队伍和排涝设备", role: "commander", due_minutes: 30 },
        { title: "汇总各社区重点人群核查情况", role: "commander", due_minutes: 60 },
      ],
      shelters: shelters.items.map((s) => s.id),
      volunteers: { count: 50, skills: [] },
      welfare_checks: true,
      welfare_escalate_minutes: 30,
    },
  });
  await api(street, "POST", `/api/v1/plan-versions/${version.id}/adopt`, {});
  return { node, plan };
}

async function remaining(page) {
  return Number(await page.getAttribute("#board p.count", "data-remaining"));
}

test("a red warning starts the street's flood plan; a volunteer's checks count down; close and review", async () => {
  const name = `锦官驿街道防汛应急预案 ${Date.now()}`;
  const { node, plan } = await streetPlan(name);

  const o = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  const page = o.page;
  await signIn(page, "street");

  // The warning, through the pages: red, flood, the whole street.
  await page.goto(`${BASE}/manage/nodes/${node.id}/warnings/new`);
  await page.selectOption("#level", "red");
  await page.selectOption("#category", "flood");
  await page.fill("#headline", "锦官驿街道暴雨洪涝红色预警");
  await page.fill("#description", "锦江水位快速上涨，沿岸低洼地带有严重内涝风险。");
  await page.fill("#instruction", "低洼地带住户立即转移至社区应急避难场所。");
  await page.selectOption("#whole_node", "1");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/warnings\/[0-9a-f-]{36}$/);
  await page.click("div.steps button:has-text('审核通过')");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("已审核"));
  await page.click("div.steps button:has-text('发布')");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("已发布"));

  // The plan waits for a person: confirm it from the plans page.
  await page.goto(`${BASE}/manage/plans`);
  const row = page.locator("section.pending tr", { hasText: name });
  await row.waitFor();
  await axe(page, "plans with a pending activation");
  await row.locator("button:has-text('确认启动')").click();
  await page.waitForURL(/\/manage\/incidents\/[0-9a-f-]{36}$/);
  const incident = page.url().split("/").pop();
  assert.match(await page.textContent("h1"), /响应中/);
  // The plan's tasks, assigned.
  for (const t of ["通知各社区启动防汛响应", "调度抢险队伍和排涝设备", "汇总各社区重点人群核查情况"]) {
    assert.match(await page.textContent("main"), new RegExp(t));
  }
  await axe(page, "active incident");
  await shot(page, "manage-incident.png");

  // The welfare-check board: every vulnerable person of the street, none checked yet.
  await page.goto(`${BASE}/manage/incidents/${incident}/welfare`);
  const before = await remaining(page);
  const total = Number(await page.getAttribute("#board p.count", "data-total"));
  assert.ok(before >= 3 && before === total, `open checks ${before} of ${total}`);
  await axe(page, "welfare board");

  // The volunteer, on a phone: accept, then three residents safe.
  const v = await newPage(browser, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await signIn(v.page, "volunteer");
  await v.page.goto(`${BASE}/resident/callouts`);
  const card = v.page.locator("#callouts div.card", { hasText: name });
  await card.locator("button:has-text('接受召集')").click();
  await v.page.waitForURL(/\/resident\/callouts$/);
  await v.page.locator("#callouts div.card[data-status=accepted]", { hasText: name }).waitFor();
  await axe(v.page, "volunteer call-outs");
  await shot(v.page, "resident-callouts.png");
  for (let i = 0; i < 3; i++) {
    const check = v.page.locator("#checks div.card").first();
    await check.waitFor();
    const id = await check.getAttribute("data-id");
    await check.locator("button[value=safe]").click();
    await v.page.waitForURL(/\/resident\/callouts$/);
    await v.page.waitForFunction((id) => !document.querySelector(`#checks div.card[data-id="${id}"]`), id);
  }
  assert.deepEqual(v.blocked, [], "no request left loopback");
  assert.deepEqual(v.errors, [], "no page errors");
  await v.context.close();

  // The board counts down by itself (it refreshes every few seconds).
  await page.waitForFunction(
    (want) => Number(document.querySelector("#board p.count").dataset.remaining) === want,
    before - 3, { timeout: 20000 });
  assert.equal(Number(await page.textContent("#board dd[data-count=safe]")), 3);
  await shot(page, "manage-welfare.png");

  // Stand down, then the review; its lesson proposes the next version of the plan.
  await page.goto(`${BASE}/manage/incidents/${incident}`);
  await page.click("button:has-text('结束响应')");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("已结束"));
  await page.goto(`${BASE}/manage/incidents/${incident}/review`);
  await page.fill("#went_well", "预警发布后预案一步启动，志愿者及时到岗。");
  await page.fill("#went_badly", "沿江社区的转移通知晚了二十分钟。");
  await page.fill("#lessons", "沿江社区先行转移");
  await page.fill("#revision_lesson", "沿江社区先行转移");
  const tasks = await page.inputValue("#revision_tasks");
  await page.fill("#revision_tasks", `通知沿江社区先行转移 | commander | 10\n${tasks}`);
  await axe(page, "review form");
  await page.click("form.stack button[type=submit]");
  await page.waitForURL(/\/manage\/reviews\/[0-9a-f-]{36}$/);
  await page.goto(`${BASE}/manage/incidents/${incident}`);
  assert.match(await page.textContent("h1"), /已复盘/);

  const street = await apiLogin("street");
  const versions = await api(street, "GET", `/api/v1/plans/${plan.id}/versions`);
  const list = versions.items || versions;
  const proposed = list.find((x) => x.status === "proposed");
  assert.ok(proposed, `a proposed revision: ${JSON.stringify(list)}`);
  assert.match(proposed.change_summary, /沿江社区先行转移/);
  assert.deepEqual(o.blocked, [], "no request left loopback");
  assert.deepEqual(o.errors, [], "no page errors");
  await o.context.close();
});

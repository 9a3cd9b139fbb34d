// A community worker opens the import page, uploads a people CSV with bad rows, reads the report
// (row, column, reason) with nothing written, then chooses "import the valid rows" (仅导入有效行)
// and finds exactly the good rows in the people list.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, axe, shot, BASE, PASSWORD } from "./lib.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/// A GB 11643 number with its check character (computed here, so the data explains itself).
function idNumber(region, birth, seq) {
  const body = `${region}${birth}${String(seq).padStart(3, "0")}`;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * w[i];
  return body + "10X98765432"[sum % 11];
}

function badChecksum(n) {
  const last = n.endsWith("0") ? "1" : "0";
  return n.slice(0, 17) + last;
}

const CSV = [
  "姓名,性别,出生日期,人口类型,证件类型,证件号码,联系电话",
  `导入测试甲,男,,户籍人口,居民身份证,${idNumber("510104", "19610101", 917)},`, // row 2 ok
  `导入测试乙,女,,户籍人口,居民身份证,${badChecksum(idNumber("510104", "19620202", 918))},`, // row 3 checksum
  `导入测试丙,女,,流动人口,居民身份证,${idNumber("510104", "19630303", 919)},`, // row 4 ok
  `,男,,户籍人口,居民身份证,${idNumber("510104", "19640404", 921)},`, // row 5 no name
  `导入测试丁,男,,寄住人口,居民身份证,${idNumber("510104", "19650505", 922)},`, // row 6 ok
].join("\n");

async function peopleNamed(page, q) {
  await page.goto(`${BASE}/manage/people?q=${encodeURIComponent(q)}`);
  await page.waitForSelector("main h1");
  return page.$$eval("table.list tbody tr td:first-child a", (as) => as.map((a) => a.textContent.trim()));
}

test("community worker: import a file with bad rows, read the report, import the valid rows", async () => {
  const { context, page, blocked, errors } = await newPage(browser, { viewport: { width: 1280, height: 900 } });

  await page.goto(`${BASE}/manage/login`);
  await page.fill("#username", "worker");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/manage(\/nodes\/.*)?$/);

  await page.click("nav.main-nav >> text=导入与导出");
  await page.waitForURL(/\/manage\/import/);
  assert.equal((await page.textContent("main h1")).trim(), "导入与导出");
  // The Chinese template is one click away.
  const tpl = await page.getAttribute("p.templates a >> nth=0", "href");
  assert.equal(tpl, "/api/v1/import/people/template.csv");
  const t = await fetch(`${BASE}${tpl}`);
  assert.equal(t.status, 200);
  assert.match(await t.text(), /姓名/);
  await axe(page, "import page");

  // Upload: any error writes nothing; the report names row, column and reason.
  await page.setInputFiles("#file", { name: "people.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
  await page.click("#import-form button[type=submit]");
  await page.waitForSelector("#import-job table.report", { timeout: 30000 });
  const rows = await page.$$eval("#import-job table.report tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())));
  assert.ok(rows.some(([r, c, why]) => r === "3" && c === "证件号码" && /校验/.test(why)), JSON.stringify(rows));
  assert.ok(rows.some(([r, c, why]) => r === "5" && c === "姓名" && why.length > 0), JSON.stringify(rows));
  assert.equal(rows.length, 2, JSON.stringify(rows));
  assert.match(await page.textContent("#import-job"), /未导入任何数据/);
  assert.equal((await page.textContent("#import-job .imported")).trim(), "0");
  await axe(page, "import report");
  await shot(page, "manage-import-report.png");
  const page2 = await context.newPage();
  await page2.goto(`${BASE}/manage/people?q=${encodeURIComponent("导入测试")}`);
  await page2.waitForSelector("main h1");
  assert.equal(await page2.$$eval("table.list tbody tr", (t) => t.length), 0, "nothing was written");
  await page2.close();

  // "仅导入有效行": the three good rows go in.
  await page.check("#valid_only");
  await page.click("#import-form button[type=submit]");
  await page.waitForFunction(() => {
    const el = document.querySelector("#import-job .imported");
    return el && el.textContent.trim() === "3";
  }, null, { timeout: 30000 });
  const names = await peopleNamed(page, "导入测试");
  assert.deepEqual([...names].sort(), ["导入测试丁", "导入测试丙", "导入测试甲"].sort());

  assert.deepEqual(blocked, [], "no request left loopback");
  assert.deepEqual(errors, [], "no page errors");
  await context.close();
});

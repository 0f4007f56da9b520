// status_page.mjs: loads corral's admin status page (GET /) in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and checks that it works, live, against a real corral that tests/e2e/test_status_page.c keeps
// under load while this runs:
//   - GET /v1/stats answers 401 without the token and valid JSON with the expected fields with it;
//   - the page opened without a token shows its token form (it got a 401) and throws nothing;
//   - the page opened as /#token=... goes live, drops the token from the address bar, draws every chart (each canvas
//     has plotted points and pixels of its first series' colour), and the numbers it shows change between two
//     readings taken a few seconds apart (total requests grow, requests per second is above 0);
//   - no page error (an exception in the page's script), console error or failed request happened at any point.
// Writes a screenshot (PNG) to --screenshot. Prints one line "status-page: ok {...}" and exits 0, or prints every
// problem ("status-page: FAIL ...") and exits 1. Bounded: every wait has a timeout and the whole run --deadline-ms.
// Chromium's PID is printed ("status-page: chromium-pid N") and written to --pid-file so that the caller can kill it
// if this script is killed; the script itself closes it and kills it by that PID if it is still there.
//
// Usage: node status_page.mjs --admin http://127.0.0.1:PORT --token TOKEN --screenshot out.png [--pid-file F]
//        [--deadline-ms 120000] [--chromium /usr/bin/chromium] [--watch-ms N: let the page gather N ms more history]
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";

function args() {
  const out = { deadline: 120000, watch: 0, chromium: process.env.CORRAL_CHROMIUM || "/usr/bin/chromium" };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const k = a[i], v = a[i + 1];
    if (v === undefined) throw new Error("missing value for " + k);
    if (k === "--admin") out.admin = v.replace(/\/$/, "");
    else if (k === "--token") out.token = v;
    else if (k === "--screenshot") out.screenshot = v;
    else if (k === "--pid-file") out.pidFile = v;
    else if (k === "--deadline-ms") out.deadline = Number(v);
    else if (k === "--chromium") out.chromium = v;
    else if (k === "--watch-ms") out.watch = Number(v);
    else throw new Error("unknown argument " + k);
  }
  if (!out.admin || !out.token || !out.screenshot) throw new Error("--admin, --token and --screenshot are required");
  return out;
}

const problems = [];
let chromiumPid = 0; // killed by PID at the deadline if still running
const check = (cond, what) => { if (!cond) problems.push(what); return !!cond; };

// Watches a page for anything that says its script or its requests broke.
function watch(page, label) {
  page.on("pageerror", e => problems.push(`${label}: page error: ${e.message}`));
  page.on("console", m => { if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(`${label}: console error: ${m.text()}`); });
  page.on("requestfailed", r => problems.push(`${label}: request failed: ${r.url()} ${r.failure() ? r.failure().errorText : ""}`));
}

// The canvas's data-points, and how many of its pixels have one of the colours (within 40 a channel), in all and
// above the plot's bottom edge (the page leaves 20 px under the plot for the time axis): a line at 0 lies on it.
async function canvasInfo(page, id, colors) {
  return page.evaluate(([id, colors]) => {
    const cv = document.getElementById(id);
    if (!cv || !cv.width || !cv.height) return { points: 0, colored: 0, raised: 0 };
    const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
    const edge = (cv.height / (window.devicePixelRatio || 1) - 20 - 4) * (window.devicePixelRatio || 1);
    let colored = 0, raised = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      if (!colors.some(c => Math.abs(d[i] - c[0]) < 40 && Math.abs(d[i + 1] - c[1]) < 40 && Math.abs(d[i + 2] - c[2]) < 40)) continue;
      ++colored;
      if (Math.floor(i / 4 / cv.width) < edge) ++raised;
    }
    return { points: Number(cv.dataset.points || 0), colored, raised };
  }, [id, colors]);
}

const hex = h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16));
const numberIn = s => { const m = /([\d.]+)([kMG]?)/.exec(s || ""); return m ? Number(m[1]) * ({ k: 1e3, M: 1e6, G: 1e9 }[m[2]] || 1) : NaN; };

async function reading(page) {
  return page.evaluate(() => {
    const t = id => document.getElementById(id).textContent;
    return { conn: t("conn"), rps: t("t-rps"), requests: t("t-requests"), hit: t("t-hit"), upstream: t("t-up-rps"),
             rss: t("t-rss"), objects: t("t-objects"), health: t("t-health"), protect: t("t-protect"), routes: document.querySelectorAll("#routes tr").length };
  });
}

async function run(o) {
  const started = Date.now();
  const left = () => Math.max(1000, o.deadline - (Date.now() - started));
  const server = await chromium.launchServer({
    executablePath: o.chromium, headless: true, timeout: Math.min(60000, left()),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  const pid = server.process().pid;
  chromiumPid = pid;
  console.log(`status-page: chromium-pid ${pid}`);
  if (o.pidFile) writeFileSync(o.pidFile, String(pid) + "\n");
  try {
    const browser = await chromium.connect(server.wsEndpoint(), { timeout: Math.min(60000, left()) });
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1050 }, deviceScaleFactor: 1 });
    ctx.setDefaultTimeout(Math.min(30000, left()));

    // /v1/stats itself: the token rule and the fields
    const anon = await ctx.request.get(o.admin + "/v1/stats");
    check(anon.status() === 401, `/v1/stats without the token: ${anon.status()}, expected 401`);
    const authed = await ctx.request.get(o.admin + "/v1/stats", { headers: { Authorization: "Bearer " + o.token } });
    check(authed.status() === 200, `/v1/stats with the token: ${authed.status()}`);
    let s = null;
    try { s = JSON.parse(await authed.text()); } catch (e) { problems.push("/v1/stats is not JSON: " + e.message); }
    if (s) {
      for (const k of ["version", "timestamp_ms", "uptime_ms", "counters", "upstream", "store", "memory", "routes"])
        check(k in s, `/v1/stats has no "${k}"`);
      for (const k of ["requests", "hits", "misses", "stale", "passes", "coalesced", "coalesce_timeouts", "upstream_requests", "upstream_errors"])
        check(s.counters && typeof s.counters[k] === "number", `/v1/stats counters.${k} is not a number`);
      check(Array.isArray(s.routes) && s.routes.length > 0, "/v1/stats routes is empty");
    }

    // without a token: the page asks for one
    const p0 = await ctx.newPage();
    watch(p0, "no token");
    await p0.goto(o.admin + "/", { waitUntil: "load" });
    await p0.waitForFunction(() => document.getElementById("conn").textContent === "token needed", null, { timeout: Math.min(30000, left()) })
      .catch(() => problems.push("no token: the page never said \"token needed\""));
    check(await p0.isVisible("#auth"), "no token: the token form is not shown");
    await p0.close();

    // with the token in the fragment: live
    const page = await ctx.newPage();
    watch(page, "live");
    await page.goto(o.admin + "/#token=" + encodeURIComponent(o.token), { waitUntil: "load" });
    check(!(await page.evaluate(() => location.href)).includes("token="), "the token stays in the address bar");
    await page.waitForFunction(() => document.getElementById("conn").textContent === "live" &&
                               Number(document.getElementById("c-rps").dataset.points || 0) >= 4, null, { timeout: Math.min(45000, left()) })
      .catch(async () => problems.push(`live: the page did not go live with plotted points (conn "${(await reading(page)).conn}")`));
    if (o.watch > 0) await page.waitForTimeout(Math.min(o.watch, left() - 15000)); // more history, for a screenshot
    const r1 = await reading(page);
    await page.waitForTimeout(Math.min(4000, left()));
    const r2 = await reading(page);
    check(r2.conn === "live", `live: second reading says "${r2.conn}"`);
    check(numberIn(r2.requests) > numberIn(r1.requests), `live: total requests did not grow (${r1.requests} then ${r2.requests})`);
    check(numberIn(r2.rps) > 0, `live: requests per second is ${r2.rps}`);
    check(r1.rps !== r2.rps || r1.requests !== r2.requests, "live: the numbers did not change between two readings");
    check(/%$/.test(r2.hit), `live: hit ratio is "${r2.hit}"`);
    check(r2.routes > 0, "live: the routes table is empty");
    check(r2.health === "healthy", `live: upstream health is "${r2.health}"`);
    check(/[\d.]+[kMG]? shed, [\d.]+[kMG]? failed fast$/.test(r2.protect), `live: the protection line is "${r2.protect}"`);

    const colors = await page.evaluate(() => { const c = getComputedStyle(document.documentElement); return [1, 2, 3, 4].map(i => c.getPropertyValue("--c" + i).trim()); });
    const info = {};
    for (const id of ["c-rps", "c-hit", "c-coal", "c-up", "c-mem"]) {
      info[id] = await canvasInfo(page, id, (id === "c-rps" ? [colors[0]] : colors).map(hex));
      check(info[id].points >= 2, `${id}: ${info[id].points} points plotted`);
      check(info[id].colored >= 20, `${id}: ${info[id].colored} pixels of its series' colours: no line was drawn`);
    }
    // the requests line shows the load: above zero, not lying on the axis
    check(info["c-rps"].raised >= 20, `c-rps: ${info["c-rps"].raised} pixels of the requests line above the axis`);
    check(info["c-hit"].raised >= 20, `c-hit: ${info["c-hit"].raised} pixels of the hit ratio line above the axis`);
    await page.screenshot({ path: o.screenshot, fullPage: true });
    await browser.close();
    return { r1, r2, charts: info };
  } finally {
    await server.close().catch(() => {});
    try { process.kill(pid, 0); process.kill(pid, "SIGKILL"); } catch (e) { /* gone already */ }
  }
}

let o;
try {
  o = args();
} catch (e) {
  console.log("status-page: FAIL " + e.message);
  process.exit(2);
}
const timer = setTimeout(() => {
  console.log("status-page: FAIL deadline passed");
  try { if (chromiumPid) process.kill(chromiumPid, "SIGKILL"); } catch (e) { /* gone already */ }
  process.exit(1);
}, o.deadline + 5000);
try {
  const result = await run(o);
  clearTimeout(timer);
  if (problems.length) {
    for (const p of problems) console.log("status-page: FAIL " + p);
    process.exit(1);
  }
  console.log("status-page: ok " + JSON.stringify(result));
  process.exit(0);
} catch (e) {
  clearTimeout(timer);
  for (const p of problems) console.log("status-page: FAIL " + p);
  console.log("status-page: FAIL " + (e && e.stack ? e.stack : e));
  process.exit(1);
}

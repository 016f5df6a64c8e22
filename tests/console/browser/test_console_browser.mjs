// test_console_browser.mjs: the web console in a real browser against a real `airlock up`.
//
// Debian's chromium, headless, driven by playwright-core (pinned in package-lock.json,
// installed by scripts/install-deps); axe-core injected into each page. A fresh state
// directory (airlock init, an approver key, the demo service, the soak 1000x faster) runs
// under `airlock up`, which also starts `airlock console` because airlock.yaml asks for
// it (console: listen: 127.0.0.1:0, a port from the kernel, read from run/console.port).
// Shown, each by an assertion that can fail:
//   - every page loads with no CSP violation, no script error, no dialog, and no serious
//     or critical axe-core violation;
//   - the agents page lists the five agents, connected;
//   - a release followed from submit to DONE on the releases page, without a reload
//     (the page's navigation count stays 1), through APPROVE;
//   - the approvals page shows the pending request with its facts, the exact
//     `airlock approve ID` command, no approve button, and the hostile summary (HTML and
//     script) as literal text in the agent-written box: nothing executes; a hostile
//     version (free text on the bus) is text on the releases and soak pages too;
//   - the soak chart draws the signals and marks the breach and rollback of a release
//     whose canary fails (ROLLED_BACK);
//   - a production deploy attempted by the qa agent is denied and appears in the audit
//     view with the "denied only" filter; its row's detail shows the hash and a chain
//     link that holds; the log verifies; the history table lists the deployments;
//   - audit.html?limit=5 pages back by sequence: "older rows" shows the 5 rows just
//     below the page shown, "newest rows" comes back.
// Screenshots go to the build tree (AIRLOCK_BINARY_DIR/console-screenshots).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const BIN = process.env.AIRLOCK_BINARY_DIR;
let chromium, AXE_SOURCE;
try {
  ({ chromium } = await import('playwright-core'));
  AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
} catch (e) {
  console.error('FAIL: playwright-core or axe-core is not installed in tests/console/browser ' +
                '(scripts/install-deps runs npm ci there): ' + e.message);
  process.exit(1);
}
if (!BIN || !fs.existsSync(path.join(BIN, 'airlock'))) {
  console.error('FAIL: AIRLOCK_BINARY_DIR must name the build tree (run through ctest)');
  process.exit(1);
}
const AIRLOCK = path.join(BIN, 'airlock');
const DEMO_SERVICE = path.join(BIN, 'demo-service');
const CHROMIUM = process.env.AIRLOCK_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  console.error(`FAIL: ${CHROMIUM} not found (scripts/install-deps installs Debian's chromium)`);
  process.exit(1);
}
const SHOTS = path.join(BIN, 'console-screenshots');
const DEADLINE_MS = 120000;     // a generous bound for each wait on a busy machine

let failures = 0;
const children = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-console-'));
const state = path.join(work, 'state');
const config = path.join(state, 'airlock.yaml');

function fail (what) {
  failures++;
  console.error('FAIL: ' + what);
}
function check (condition, what) {
  if (!condition) fail(what);
  else console.log('ok: ' + what);
}

function run (args, options = {}) {
  const result = spawnSync(AIRLOCK, args, { cwd: work, encoding: 'utf8', ...options });
  if (result.status !== 0 && !options.allowFail)
    throw new Error(`airlock ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

function start (args, log) {
  const out = fs.openSync(path.join(work, log), 'w');
  const child = spawn(AIRLOCK, args, { cwd: work, stdio: ['ignore', out, out], detached: true });
  children.push(child);
  return child;
}

async function until (what, fn, ms = DEADLINE_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function releaseState (id) {
  const result = run(['status', id, '--config', config, '--json'], { allowFail: true });
  try { return JSON.parse(result.stdout).release.state; } catch (e) { return ''; }
}

function artifact (id, version, ...faults) {
  const file = path.join(work, `demo-${id}.sh`);
  fs.writeFileSync(file, `#!/bin/sh\nexec "${DEMO_SERVICE}" --version '${version}' ${faults.join(' ')} "$@"\n`, { mode: 0o755 });
  const digest = spawnSync('sha256sum', [file], { encoding: 'utf8' }).stdout.slice(0, 64);
  return { file, digest };
}

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
// A version is free text on the bus (the codec refuses control characters only): it
// reaches the releases page, the soak legend and the approval facts.
const HOSTILE_VERSION = 'v1<svg/onload=window.__pwned=3>';

function submit (id, version, summary, ...faults) {
  const { file, digest } = artifact(id, version, ...faults);
  const changes = path.join(work, `changes-${id}.txt`);
  fs.writeFileSync(changes, `${HOSTILE} change list of ${version}\n`);
  run(['submit', '--service', 'demo', '--version', version, '--artifact', file, '--digest', 'sha256:' + digest,
       '--changes', changes, '--summary', summary, '--id', id, '--config', config]);
}

function approve (id) {
  run(['approve', id + '-prod', '--key', path.join(work, 'alice.key'), '--yes', '--config', config]);
}

function setup () {
  run(['init', state]);
  const keygen = run(['keygen', '--name', 'alice', '--role', 'manager', '--out', path.join(work, 'alice.key'), '--state', state]);
  const entry = keygen.stdout.slice(keygen.stdout.indexOf('  - name:'));
  fs.writeFileSync(path.join(state, 'policy', 'approvers.yaml'), 'approvers:\n' + entry);
  const rules = path.join(state, 'policy', 'quality_rules.yaml');
  // The soak 1000x faster; health probes that a loaded machine (the ASan suite runs the
  // demo service under ASan too) answers late must not roll the good release back: the
  // test's rollback is the failing canary's error rate.
  fs.writeFileSync(rules, fs.readFileSync(rules, 'utf8').replace(/^  time_scale: 1\.0$/m, '  time_scale: 0.001')
    .replace(/^  health_check_failures_more_than: 3$/m, '  health_check_failures_more_than: 1000'));
  fs.writeFileSync(path.join(state, 'services.yaml'), `version: 1
services:
  demo:
    driver: process
    instances: { staging: 2, production: 3 }
    strategy: rolling
    soak_ms: 3000
    probe_interval_ms: 100
    ready_timeout_ms: 10000
    stop_timeout_ms: 2000
    command: ["{{artifact}}"]
    qa:
      smoke:
        - { name: health, path: /healthz, status: 200, body_contains: ok }
`);
  // `airlock up` starts the console itself when airlock.yaml asks (port from the kernel).
  fs.appendFileSync(config, '\nconsole:\n  listen: "127.0.0.1:0"\n');
  run(['check', '--state', state]);
}

async function axeCheck (page, name) {
  //  Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an
  //  injected <script>, and the test must not weaken it (no bypassCSP).
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined')))
    await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of serious)
    console.error(`  axe ${name}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  check(serious.length === 0, `${name}: no serious or critical accessibility violations (axe-core)`);
}

function watchPage (page, name, problems) {
  page.on('pageerror', (error) => problems.push(`${name}: script error: ${error.message}`));
  page.on('dialog', (dialog) => { problems.push(`${name}: a dialog opened: ${dialog.message()}`); dialog.dismiss(); });
  page.on('console', (message) => {
    if (message.type() === 'error' && !/ERR_INCOMPLETE_CHUNKED_ENCODING|net::ERR_ABORTED/.test(message.text()))
      problems.push(`${name}: console error: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(base)) problems.push(`${name}: request outside the console: ${request.url()}`);
  });
}

let base = '';

async function main () {
  setup();
  start(['up', '--state', state, '--interval-ms', '250'], 'up.log');
  await until('five agents alive', () => {
    const status = run(['status', '--config', config, '--json'], { allowFail: true });
    const agents = JSON.parse(status.stdout).agents.filter((a) => a.alive).map((a) => a.role);
    return ['orchestrator', 'qa', 'deploy-manager', 'monitor', 'notifier'].every((r) => agents.includes(r));
  });
  const portFile = path.join(state, 'run', 'console.port');
  const port = await until('the console port', () => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim());
  base = `http://127.0.0.1:${port}`;
  fs.mkdirSync(SHOTS, { recursive: true });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    });

    // Agents.
    const agents = await context.newPage();
    watchPage(agents, 'agents', problems);
    const response = await agents.goto(base + '/');
    const headers = response.headers();
    check(/frame-ancestors 'none'/.test(headers['content-security-policy'] || '')
          && !/unsafe-inline/.test(headers['content-security-policy']), 'the page has a CSP with frame-ancestors none and no unsafe-inline');
    check(headers['x-content-type-options'] === 'nosniff' && headers['referrer-policy'] === 'no-referrer', 'nosniff and no-referrer');
    await until('the agents table', () => agents.locator('tr[data-identity="deploy-manager"]').count());
    for (const role of ['orchestrator', 'qa', 'deploy-manager', 'monitor', 'notifier'])
      check(await agents.locator(`tr[data-identity="${role}"] td:nth-child(3)`).innerText() === 'yes', `agents page: ${role} connected`);
    check((await agents.locator('tr[data-process="broker"]').count()) === 1, 'agents page: the processes of airlock up');
    check(await agents.locator('tr[data-process="orchestrator"] td:nth-child(3)').innerText() === '0',
          'agents page: restarts counted from up\'s log (orchestrator: 0)');
    check(/ready/.test(await agents.locator('tr[data-process="orchestrator"] td:nth-child(4)').innerText()),
          'agents page: the last line that matters of the orchestrator\'s log');
    check((await agents.locator('tr[data-identity="console"]').count()) === 1, 'agents page: the console itself is a bus client (started by airlock up)');
    await agents.screenshot({ path: path.join(SHOTS, 'agents.png'), fullPage: true });
    await axeCheck(agents, 'agents');

    // Releases: one page kept open from submit to DONE.
    const releases = await context.newPage();
    watchPage(releases, 'releases', problems);
    let navigations = 0;
    releases.on('framenavigated', (frame) => { if (frame === releases.mainFrame()) navigations++; });
    await releases.goto(base + '/releases.html');
    const soak = await context.newPage();
    watchPage(soak, 'soak', problems);
    await soak.goto(base + '/soak.html');

    submit('rel-v1', HOSTILE_VERSION, HOSTILE);
    const seen = new Set();
    const card = releases.locator('article[data-release="rel-v1"]');
    await until('rel-v1 at APPROVE on the page', async () => {
      const s = await card.getAttribute('data-state', { timeout: 1000 });
      seen.add(s);
      return s === 'APPROVE';
    });

    // Approvals.
    const approvals = await context.newPage();
    watchPage(approvals, 'approvals', problems);
    await approvals.goto(base + '/approvals.html');
    const request = approvals.locator('article[data-request="rel-v1-prod"]');
    await until('the pending request', () => request.count());
    check(await request.locator('.approve-command').innerText() === 'airlock approve rel-v1-prod', 'approvals: the exact approve command');
    const summary = await request.locator('.agent-text pre[data-key="summary"]').innerText();
    check(summary === HOSTILE, 'approvals: the hostile summary is shown as literal text in the agent box');
    check((await approvals.locator('img, script:not([src])').count()) === 0, 'approvals: the hostile HTML made no element');
    check(/quorum/.test(await request.locator('table.facts').innerText()), 'approvals: facts with window, freeze, quorum');
    check(/artifact_sha256/.test(await request.locator('table.facts').innerText()), 'approvals: the artifact digest');
    check((await approvals.locator('button', { hasText: /approve/i }).count()) === 0, 'approvals: no approve button');
    check(await approvals.evaluate(() => window.__pwned === undefined), 'approvals: nothing executed');
    await approvals.screenshot({ path: path.join(SHOTS, 'approvals.png'), fullPage: true });
    await axeCheck(approvals, 'approvals');

    approve('rel-v1');
    await until('rel-v1 DONE on the page', async () => {
      const s = await card.getAttribute('data-state', { timeout: 1000 });
      seen.add(s);
      return s === 'DONE';
    });
    check(seen.has('APPROVE') && seen.has('DONE'), `releases: the page followed rel-v1 (${[...seen].join(' -> ')})`);
    check(navigations === 1, `releases: updated without a reload (navigations: ${navigations})`);
    check(/production deployment journal/.test(await card.innerText()), 'releases: the production journal is shown');
    await releases.screenshot({ path: path.join(SHOTS, 'releases.png'), fullPage: true });
    await axeCheck(releases, 'releases');
    check(await releases.evaluate(() => window.__pwned === undefined), 'releases: nothing executed');
    check((await card.innerText()).includes('demo ' + HOSTILE_VERSION), 'releases: the hostile version is shown as text');

    // A release whose instances fail half their requests: breach, rollback.
    start(['demo', 'load', '--config', config, '--service', 'demo', '--env', 'production', '--rps', '40', '--seconds', '240'], 'load.log');
    submit('rel-v2', 'v2', 'v2: a canary that fails', '--error-rate', '0.5');
    await until('rel-v2 at APPROVE', () => releaseState('rel-v2') === 'APPROVE');
    approve('rel-v2');
    await until('rel-v2 ROLLED_BACK on the page', async () =>
      (await releases.locator('article[data-release="rel-v2"]').getAttribute('data-state', { timeout: 1000 })) === 'ROLLED_BACK');
    await until('the rollback marked on the soak chart', () => soak.locator('svg[data-signal="error_percent"] .marker-rollback').count());
    const points = await soak.locator('svg[data-signal="error_percent"] path.series').evaluateAll(
      (paths) => paths.reduce((sum, p) => sum + Number(p.getAttribute('data-points')), 0));
    check(points >= 5, `soak: the error rate chart draws the samples (${points} points)`);
    check((await soak.locator('svg[data-signal="error_percent"] path.limit-line').count()) === 1, 'soak: the rule limit is drawn');
    check((await soak.locator('svg[data-signal="error_percent"] .marker-breach').count()) >= 1, 'soak: the breach is marked');
    check((await soak.locator('li[data-marker="rollback"]').count()) >= 1, 'soak: the rollback is listed');
    check(await soak.locator('#pick').inputValue() === 'production/demo', 'soak: the production soak of demo is shown');
    check((await soak.locator('#legend').innerText()).includes('version ' + HOSTILE_VERSION), 'soak: the hostile version is a legend text');
    check(await soak.evaluate(() => window.__pwned === undefined), 'soak: nothing executed');
    await soak.screenshot({ path: path.join(SHOTS, 'soak.png'), fullPage: true });
    await axeCheck(soak, 'soak');

    // A denial in the audit view.
    run(['demo', 'agent-deploy', '--config', config], { allowFail: true });
    const audit = await context.newPage();
    watchPage(audit, 'audit', problems);
    await audit.goto(base + '/audit.html');
    await audit.check('#f-denied');
    await audit.click('button[type="submit"]');
    const denied = audit.locator('#events tr[data-decision="denied"][data-type="DeployRequest"]');
    await until('the denied DeployRequest in the audit view, and only denials', async () =>
      (await denied.count()) > 0 && (await audit.locator('#events tr[data-decision="accepted"]').count()) === 0);
    check((await denied.count()) > 0 && (await audit.locator('#events tr[data-decision="accepted"]').count()) === 0,
          'audit: denied only shows the denied DeployRequest and no accepted row (and stays so)');
    await denied.first().click();
    await until('the row detail', () => audit.locator('#detail table').count());
    const detail = await audit.locator('#detail').innerText();
    check(/holds/.test(detail) && /[0-9a-f]{64}/.test(detail), 'audit: the row detail shows its hash and a chain link that holds');
    check((await audit.locator('[data-verify="ok"]').count()) === 1, 'audit: the log verifies');
    await until('the history table', () => audit.locator('#history table').count());
    const history = await audit.locator('#history').innerText();
    check(/rel-v1-prod/.test(history) && /Rolled back/i.test(history), 'audit: the deployment history lists rel-v1 and the rollback of rel-v2');
    await audit.screenshot({ path: path.join(SHOTS, 'audit.png'), fullPage: true });
    await axeCheck(audit, 'audit');

    // Paging back by sequence: pages of 5 rows, the next one older than the last shown.
    const paged = await context.newPage();
    watchPage(paged, 'audit paged', problems);
    await paged.goto(base + '/audit.html?limit=5');
    const shown = () => paged.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-sequence'))));
    await until('the first page of 5 rows', async () => (await shown()).length === 5);
    const first = await shown();
    check(await paged.locator('#newest').isHidden() && await paged.locator('#older').isVisible(),
          'audit: the newest page offers older rows, not the newest');
    const last = (await shown())[4];    // the page refreshes every 3 s: the one clicked from
    await paged.click('#older');
    await until('the older page', async () => { const s = await shown(); return s.length > 0 && s[0] < last; });
    const second = await shown();
    check(second.length === 5 && second.every((sequence, i) => sequence === last - 1 - i),
          `audit: the older page continues where the first stopped (${last} then ${second})`);
    check(await paged.locator('#newest').isVisible(), 'audit: an older page offers the newest rows');
    await paged.click('#newest');
    await until('the newest page again', async () => (await shown())[0] >= first[0]);
    check(await paged.locator('#newest').isHidden(), 'audit: back on the newest page');

    for (const page of [agents, releases, approvals, soak, audit, paged]) {
      const csp = await page.evaluate(() => window.__csp);
      for (const v of csp) problems.push('CSP violation: ' + v);
    }
  } finally {
    await browser.close();
  }
  for (const p of problems) fail(p);
  check(problems.length === 0, 'no script error, dialog, CSP violation or outside request on any page');
}

function stopAll () {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch (e) { /* gone */ }
    }
  }
}

const watchdog = setTimeout(() => { fail('the test took longer than 400 s'); stopAll(); process.exit(1); }, 400000);
try {
  await main();
} catch (e) {
  fail(e.stack || String(e));
  for (const log of ['up.log', 'state/logs/console.log'])
    if (fs.existsSync(path.join(work, log))) console.error(`--- ${log}\n` + fs.readFileSync(path.join(work, log), 'utf8').slice(-3000));
} finally {
  stopAll();
  const deadline = Date.now() + 30000;
  while (children.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 200));
  clearTimeout(watchdog);
}
if (failures === 0) fs.rmSync(work, { recursive: true, force: true });
else console.error('state kept in ' + work);
console.log(failures === 0 ? 'PASS' : `${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);

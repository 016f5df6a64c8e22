// test_mcp_sdk.mjs: `airlock mcp` against the official MCP TypeScript SDK (pinned in
// package.json / package-lock.json; `scripts/install-deps` runs `npm ci` here).
//
// `airlock init` makes a state directory and `airlock broker` runs on it. Shown here:
//  - the SDK's Client over StdioClientTransport initializes with `airlock mcp`, which
//    answers the SDK's newest revision (2025-11-25);
//  - tools/list: the five tools, read-only ones annotated readOnlyHint true, the others
//    false, each with an object outputSchema (the SDK validates results against it);
//  - calling a read-only tool (list_approvals) succeeds, its structuredContent equals
//    the JSON of its text item;
//  - raw initialize: 2025-06-18 and 2025-03-26 are answered as asked (2025-03-26:
//    annotations, no outputSchema), 2024-11-05 too (neither), an unknown revision gets
//    the newest.
// Exit code 0 when every check passed, 1 otherwise.
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const airlock = join(process.env.AIRLOCK_BINARY_DIR || '.', 'airlock');
const dir = mkdtempSync(join(tmpdir(), 'al-mcp-sdk-'));
const config = join(dir, 'airlock.yaml');
const readOnly = { get_status: true, list_approvals: true, recent_signals: true,
                   submit_release: false, request_rollback: false };
let broker = null;

function startBroker () {
    return new Promise((resolve, reject) => {
        broker = spawn(airlock, ['broker', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
        let seen = '';
        const timer = setTimeout(() => reject(new Error('broker did not start: ' + seen)), 60000);
        broker.stderr.on('data', (chunk) => {
            seen += chunk;
            if (seen.includes('listening on')) {
                clearTimeout(timer);
                resolve();
            }
        });
        broker.on('exit', (code) => reject(new Error('broker exited ' + code + ': ' + seen)));
    });
}

//  initialize (+ tools/list) as raw JSON-RPC lines with a given revision.
function rawSession (version) {
    const input = [
        { jsonrpc: '2.0', id: 1, method: 'initialize',
          params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ].map((m) => JSON.stringify(m)).join('\n') + '\n';
    const run = spawnSync(airlock, ['mcp', '--config', config], { input, encoding: 'utf8', timeout: 60000 });
    assert.equal(run.status, 0, run.stderr);
    const answers = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(answers.length, 2);
    return { negotiated: answers[0].result.protocolVersion, tools: answers[1].result.tools };
}

async function main () {
    execFileSync(airlock, ['init', dir], { stdio: 'ignore' });
    await startBroker();

    const transport = new StdioClientTransport({ command: airlock, args: ['mcp', '--config', config], stderr: 'pipe' });
    //  Watch what the server sends, to see the revision it answered.
    const received = [];
    let handler = null;
    Object.defineProperty(transport, 'onmessage', {
        configurable: true,
        get () { return handler; },
        set (fn) { handler = fn && ((message, extra) => { received.push(message); return fn(message, extra); }); },
    });
    const client = new Client({ name: 'airlock-sdk-test', version: '1.0.0' });
    await client.connect(transport);
    assert.equal(client.getServerVersion().name, 'airlock');
    assert.ok(client.getServerCapabilities().tools);
    const initialized = received.find((m) => m.result && m.result.protocolVersion);
    assert.equal(initialized.result.protocolVersion, '2025-11-25');

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), Object.keys(readOnly).sort());
    for (const tool of tools) {
        assert.equal(tool.annotations.readOnlyHint, readOnly[tool.name], tool.name);
        assert.equal(tool.annotations.destructiveHint, false, tool.name);
        assert.equal(tool.outputSchema.type, 'object', tool.name);
        assert.equal(tool.inputSchema.type, 'object', tool.name);
        assert.ok(tool.title, tool.name);
    }

    const result = await client.callTool({ name: 'list_approvals', arguments: {} });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.equal(typeof result.structuredContent, 'object');
    assert.deepEqual(result.structuredContent, JSON.parse(result.content[0].text));
    await client.close();

    let session = rawSession('2025-06-18');
    assert.equal(session.negotiated, '2025-06-18');
    assert.ok(session.tools.every((t) => t.outputSchema && t.annotations));
    session = rawSession('2025-03-26');
    assert.equal(session.negotiated, '2025-03-26');
    assert.ok(session.tools.every((t) => t.annotations && !t.outputSchema));
    session = rawSession('2024-11-05');
    assert.equal(session.negotiated, '2024-11-05');
    assert.ok(session.tools.every((t) => !t.annotations && !t.outputSchema));
    session = rawSession('2099-01-01');
    assert.equal(session.negotiated, '2025-11-25');
}

let failed = false;
try {
    await main();
    console.log('test_mcp_sdk: ok');
} catch (error) {
    failed = true;
    console.error('test_mcp_sdk: FAILED:', error);
} finally {
    if (broker && broker.exitCode === null) {
        broker.removeAllListeners('exit');
        broker.kill('SIGTERM');
        await new Promise((resolve) => { broker.on('exit', resolve); setTimeout(resolve, 20000); });
    }
    rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

// PouchDB comparison for Ferry's upload benchmark: upload N queued ~300-byte
// records from a local durable database to a server over real HTTP on
// loopback.
//
//   1. start server.mjs (express-pouchdb + leveldb) as a child process on a
//      free 127.0.0.1 port and wait until it answers;
//   2. write N docs of 300 bytes of JSON each into a local on-disk PouchDB
//      (leveldb adapter) with bulkDocs in chunks of 10 000   -- not timed;
//   3. time one-way PouchDB.replicate(local, http://127.0.0.1:PORT/bench)
//      with PouchDB's default options                          -- timed;
//   4. check the remote doc_count equals N, print one line, clean up.
//
// usage: node replicate.mjs [N]      (default N = 100000)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import PouchDB from 'pouchdb';

const RECORD_BYTES = 300;
const CHUNK = 10_000;
const here = path.dirname(fileURLToPath(import.meta.url));

const n = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(n) || n <= 0) {
  console.error(`usage: node replicate.mjs [N]   (N must be a positive integer, got ${process.argv[2]})`);
  process.exit(2);
}

// One record: exactly RECORD_BYTES bytes of JSON (JSON.stringify, _id included).
function makeDoc(i) {
  const doc = { _id: `rec-${String(i).padStart(9, '0')}`, title: `record ${i}`, n: i, note: '' };
  const pad = RECORD_BYTES - Buffer.byteLength(JSON.stringify(doc));
  if (pad < 0) throw new Error(`record ${i} is already over ${RECORD_BYTES} bytes`);
  doc.note = 'x'.repeat(pad);
  return doc;
}

async function startServer(dataDir) {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs'), dataDir, '0'], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not report a port within 30 s')), 30_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${sig})`));
    });
  });
  child.stdout.resume(); // keep draining in case it prints more
  // Wait until it actually answers HTTP.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      if (res.ok) { await res.json(); break; }
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('server did not answer GET / within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port };
}

async function stopServer(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function main() {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-bench-pouchdb-'));
  const clientDir = path.join(root, 'client');
  const serverDir = path.join(root, 'server');
  await fs.mkdir(clientDir);
  await fs.mkdir(serverDir);

  let server;
  let local;
  let remote;
  try {
    server = await startServer(serverDir);
    const url = `http://127.0.0.1:${server.port}/bench`;

    // Local durable queue: on-disk PouchDB, leveldb adapter (Node default).
    local = new PouchDB(path.join(clientDir, 'local'));
    const prep0 = performance.now();
    for (let start = 0; start < n; start += CHUNK) {
      const docs = [];
      for (let i = start; i < Math.min(start + CHUNK, n); i++) docs.push(makeDoc(i));
      const res = await local.bulkDocs(docs);
      const bad = res.filter((r) => r.error || !r.ok);
      if (bad.length) throw new Error(`local bulkDocs failed for ${bad.length} docs, first: ${JSON.stringify(bad[0])}`);
    }
    const localInfo = await local.info();
    if (localInfo.doc_count !== n) throw new Error(`local doc_count ${localInfo.doc_count} != ${n}`);
    console.error(`prepared ${n} local docs (${RECORD_BYTES} B JSON each, adapter ${local.adapter}) in ` +
      `${((performance.now() - prep0) / 1000).toFixed(2)} s; server on 127.0.0.1:${server.port}`);

    // Create the remote database before timing (the HTTP adapter does so on first use).
    remote = new PouchDB(url);
    await remote.info();

    const t0 = performance.now();
    const result = await PouchDB.replicate(local, remote);
    const secs = (performance.now() - t0) / 1000;

    if (!result.ok || (result.errors && result.errors.length)) {
      throw new Error(`replication reported errors: ${JSON.stringify(result.errors)}`);
    }
    const remoteInfo = await remote.info();
    if (remoteInfo.doc_count !== n) {
      throw new Error(`remote doc_count ${remoteInfo.doc_count} != ${n} (docs_written ${result.docs_written})`);
    }
    if (result.docs_written !== n) {
      throw new Error(`docs_written ${result.docs_written} != ${n}`);
    }

    console.log(`pouchdb replicate: ${n} docs in ${secs.toFixed(3)} s = ${Math.round(n / secs)} docs/s`);
  } finally {
    if (remote) await remote.close().catch(() => {});
    if (local) await local.close().catch(() => {});
    await stopServer(server?.child).catch(() => {});
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`pouchdb replicate: FAILED: ${err?.stack ?? err}`);
  process.exit(1);
});

// Minimal CouchDB-compatible server for the PouchDB comparison benchmark:
// express-pouchdb (the HTTP layer of pouchdb-server) in its
// "minimumForPouchDB" mode, storing every database with PouchDB's default
// Node adapter (leveldb, via leveldown) under DATA_DIR.
//
// usage: node server.mjs DATA_DIR [PORT]
// PORT 0 (the default) lets the OS pick a free port; the chosen port is
// printed on stdout as "listening <port>".
import path from 'node:path';
import express from 'express';
import expressPouchDB from 'express-pouchdb';
import PouchDB from 'pouchdb';

const dataDir = process.argv[2];
const port = Number(process.argv[3] ?? 0);
if (!dataDir) {
  console.error('usage: node server.mjs DATA_DIR [PORT]');
  process.exit(2);
}

const ServerPouchDB = PouchDB.defaults({ prefix: dataDir + path.sep });
const app = express();
app.use('/', expressPouchDB(ServerPouchDB, { mode: 'minimumForPouchDB' }));

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

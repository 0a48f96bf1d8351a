// node-postgres (pg) client-compatibility check for nowdb (also passes against PostgreSQL 15).
//
//   npm ci --prefix tests/clients/node
//   node tests/clients/node/check.js <host> <port>
//
// Connects as user nowdb to database nowdb. Stops at the first failing check and exits 1.
// With CLIENTS_CHECK_ALL=1 it runs every check, lists all failures and exits 1 if any failed.
'use strict';

const util = require('util');
const pg = require('pg');

// Assertions with one-line messages: "<what>: got <actual>, expected <expected>".
const show = (v) => util.inspect(v, { depth: 4, breakLength: Infinity, compact: true });
const assert = {
  ok(cond, what) { if (!cond) throw new Error(what); },
  fail(what) { throw new Error(what); },
  strictEqual(a, b, what) { if (!Object.is(a, b)) throw new Error(`${what}: got ${show(a)}, expected ${show(b)}`); },
  deepStrictEqual(a, b, what) {
    if (!util.isDeepStrictEqual(a, b)) throw new Error(`${what}: got ${show(a)}, expected ${show(b)}`);
  },
};

const [host, portArg] = process.argv.slice(2);
if (!host || !portArg) {
  console.error('usage: node check.js <host> <port>');
  process.exit(2);
}
const config = { host, port: Number(portArg), user: 'nowdb', database: 'nowdb' };
const ALL = process.env.CLIENTS_CHECK_ALL === '1';
const TABLE = 'node_check';

const failures = [];
let passed = 0;
let client = null;

function describe(e) {
  if (e && e.code) return `error ${e.code}: ${e.message}`;
  return e && e.message ? e.message : String(e);
}

async function newClient() {
  const c = new pg.Client(config);
  // A lost connection fails the running check, not the process; the next check reconnects.
  c.on('error', () => { c.dead = true; });
  c.on('end', () => { c.dead = true; });
  await c.connect();
  return c;
}

async function check(name, fn) {
  try {
    if (!client || client.dead) {
      client = await newClient();
    }
  } catch (e) {
    return record(name, `cannot (re)connect: ${describe(e)}`);
  }
  try {
    await fn();
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    record(name, describe(e));
  }
}

// A known gap (docs/COMPATIBILITY.md, "Clients"): fn must still fail; once it passes, the check
// fails so that the gap gets removed from this file and the docs.
async function gap(name, reason, fn) {
  await check(`${name} [known gap: ${reason}]`, async () => {
    let failed = false;
    try {
      await fn();
    } catch (e) {
      failed = true;
    }
    if (!failed) throw new Error('known gap now passes: turn it back into a check');
  });
}

function record(name, msg) {
  failures.push(`${name}: ${msg}`);
  console.log(`FAIL ${name}: ${msg}`);
  if (!ALL) {
    console.log('check.js FAILED (set CLIENTS_CHECK_ALL=1 to run every check)');
    process.exit(1);
  }
}

async function expectError(code, promise, what) {
  try {
    await promise;
  } catch (e) {
    assert.strictEqual(e.code, code, `${what}: SQLSTATE ${e.code} (${e.message}), expected ${code}`);
    return e;
  }
  assert.fail(`${what}: no error, expected SQLSTATE ${code}`);
}

async function expectUsable(c = client) {
  const r = await c.query("SELECT 'ok' AS ok");
  assert.deepStrictEqual(r.rows, [{ ok: 'ok' }], 'a query after the error');
}

function close(a, b, what, eps = 1e-6) {
  assert.ok(typeof a === 'number' && Math.abs(a - b) <= eps, `${what}: ${a} (${typeof a}), expected ${b}`);
}

// Row n's values (JS side).
const ts = (n) => new Date(Date.UTC(2026, 0, 1, 9, n, 0, 0));
const row = (n) => ({
  id: n,
  n: n * 10,
  d: n + 0.25,
  r: n + 0.5,
  t: `name-${n}${n % 2 ? '' : ' é'}`,
  b: n % 2 === 0,
  ts: ts(n),
  emb: [n + 0.5, -n - 0.25],
  vec: [n + 0.125, 1e10, -2.5],
});
// Timestamps without time zone are parsed by pg as local time; compare wall-clock fields.
const wall = (d) => d instanceof Date
  ? [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()].join(',')
  : `not a Date: ${JSON.stringify(d)}`;

const COLS = 'id, n, d, r, t, b, ts, emb, vec';
const INSERT = `INSERT INTO ${TABLE} (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
const SELECT_BY_ID = `SELECT ${COLS} FROM ${TABLE} WHERE id = $1`;
const insertValues = (v) => [v.id, v.n, v.d, v.r, v.t, v.b, v.ts, v.emb, v.vec];

function checkRow(got, n, ctx) {
  const v = row(n);
  assert.ok(got, `${ctx}: no row`);
  assert.strictEqual(got.id, String(n), `${ctx} id (BIGINT comes back as a string)`);
  assert.strictEqual(got.n, v.n, `${ctx} n (INTEGER)`);
  close(got.d, v.d, `${ctx} d (DOUBLE PRECISION)`);
  close(got.r, v.r, `${ctx} r (REAL)`);
  assert.strictEqual(got.t, v.t, `${ctx} t (TEXT)`);
  assert.strictEqual(got.b, v.b, `${ctx} b (BOOLEAN)`);
  // pg sends a Date as local time with offset and parses timestamp as local time.
  assert.strictEqual(wall(got.ts), wall(v.ts), `${ctx} ts (TIMESTAMP) ${got.ts}`);
  assert.ok(Array.isArray(got.emb), `${ctx} emb (REAL[]) not an array: ${JSON.stringify(got.emb)}`);
  assert.strictEqual(got.emb.length, 2, `${ctx} emb length`);
  got.emb.forEach((x, i) => close(x, v.emb[i], `${ctx} emb[${i}]`));
  assert.ok(Array.isArray(got.vec), `${ctx} vec (DOUBLE PRECISION[]) not an array: ${JSON.stringify(got.vec)}`);
  assert.deepStrictEqual(got.vec, v.vec, `${ctx} vec`);
}

async function main() {
  console.log(`check.js: ${host}:${config.port} (pg ${require('pg/package.json').version}, node ${process.version})`);

  await check('connect (pg.Client) and version()', async () => {
    const r = await client.query('SELECT version() AS v');
    assert.ok(r.rows[0].v.startsWith('PostgreSQL 15'), `version(): ${r.rows[0].v}`);
  });

  await check('CREATE TABLE (keyed; bigint, integer, double, real, text, boolean, timestamp, real[], float8[])', async () => {
    await client.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await client.query(`CREATE TABLE ${TABLE} (id BIGINT PRIMARY KEY, n INTEGER, d DOUBLE PRECISION, r REAL, `
      + 't TEXT, b BOOLEAN, ts TIMESTAMP, emb REAL[], vec DOUBLE PRECISION[])');
  });

  await check('parameterized INSERT ($1..$9, JS number/string/boolean/Date/array values) x10', async () => {
    for (let n = 1; n <= 10; n++) {
      const r = await client.query(INSERT, insertValues(row(n)));
      assert.strictEqual(r.rowCount, 1, `rowCount of insert ${n}`);
      assert.strictEqual(r.command, 'INSERT', `command of insert ${n}`);
    }
    const c = await client.query(`SELECT count(*) AS c FROM ${TABLE}`);
    assert.strictEqual(c.rows[0].c, '10', 'count(*) (bigint, a string)');
  });

  await check('parameterized SELECT ... WHERE id = $1 (values and JS types)', async () => {
    for (let n = 1; n <= 10; n++) {
      const r = await client.query(SELECT_BY_ID, [n]);
      assert.strictEqual(r.rowCount, 1, `rowCount for id ${n}`);
      checkRow(r.rows[0], n, `id ${n}`);
    }
    const r = await client.query(`SELECT id, t FROM ${TABLE} WHERE t = $1 AND b = $2`, ['name-2 é', true]);
    assert.deepStrictEqual(r.rows, [{ id: '2', t: 'name-2 é' }], 'WHERE t = $1 AND b = $2');
  });

  await check('result field types (dataTypeID)', async () => {
    const r = await client.query(SELECT_BY_ID, [1]);
    const got = r.fields.map((f) => `${f.name}:${f.dataTypeID}`);
    assert.deepStrictEqual(got, ['id:20', 'n:23', 'd:701', 'r:700', 't:25', 'b:16', 'ts:1114', 'emb:1021', 'vec:1022'],
      'fields name:oid');
  });

  await check('result field tableID/columnID (RowDescription table OID and column number)', async () => {
    const r = await client.query(SELECT_BY_ID, [1]);
    const oid = await client.query("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
      + "ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = 'public'", [TABLE]);
    assert.strictEqual(oid.rowCount, 1, 'pg_class row of the table');
    const got = r.fields.map((f) => `${f.name}:${f.tableID}/${f.columnID}`);
    const want = r.fields.map((f, i) => `${f.name}:${Number(oid.rows[0].oid)}/${i + 1}`);
    assert.deepStrictEqual(got, want, 'fields name:tableID/columnID');
  });

  await check('named prepared statement ({name, text, values}) x12', async () => {
    for (let k = 1; k <= 12; k++) {
      const n = ((k - 1) % 10) + 1;
      const r = await client.query({ name: 'node_check_by_id', text: SELECT_BY_ID, values: [n] });
      checkRow(r.rows[0], n, `execution ${k}`);
    }
    for (let k = 1; k <= 5; k++) {
      const r = await client.query({
        name: 'node_check_count_gt', text: `SELECT count(*) AS c FROM ${TABLE} WHERE d > $1 AND b = $2`,
        values: [k, true],
      });
      const want = [2, 4, 6, 8, 10].filter((n) => n + 0.25 > k).length;
      assert.strictEqual(r.rows[0].c, String(want), `count execution ${k}`);
    }
  });

  await check('named prepared INSERT x5', async () => {
    for (let n = 11; n <= 15; n++) {
      const r = await client.query({ name: 'node_check_insert', text: INSERT, values: insertValues(row(n)) });
      assert.strictEqual(r.rowCount, 1, `rowCount of insert ${n}`);
    }
    const r = await client.query({ name: 'node_check_by_id', text: SELECT_BY_ID, values: [15] });
    checkRow(r.rows[0], 15, 'id 15');
  });

  await check('binary results (query config binary: true)', async () => {
    const r = await client.query({ text: `SELECT id, n, d, r, t, b, ts FROM ${TABLE} WHERE id = $1`, values: [2], binary: true });
    const got = r.rows[0];
    assert.ok(got, 'no row');
    assert.strictEqual(String(got.id), '2', `id ${got.id}`);
    assert.strictEqual(got.n, 20, 'n');
    close(got.d, 2.25, 'd');
    close(got.r, 2.5, 'r');
    assert.strictEqual(String(got.t), 'name-2 é', 't');
    assert.strictEqual(got.b, true, 'b');
    // Not ts: pg-types' binary timestamp parser gives a wrong Date against PostgreSQL 15 too.
  });

  await check('pg.Pool: 8 concurrent INSERTs then 8 concurrent SELECTs', async () => {
    const pool = new pg.Pool({ ...config, max: 8 });
    try {
      const ids = Array.from({ length: 8 }, (_, i) => 101 + i);
      const ins = await Promise.all(ids.map((n) => pool.query(INSERT, insertValues(row(n)))));
      ins.forEach((r, i) => assert.strictEqual(r.rowCount, 1, `rowCount of insert ${ids[i]}`));
      const sel = await Promise.all(ids.map((n) => pool.query(SELECT_BY_ID, [n])));
      sel.forEach((r, i) => checkRow(r.rows[0], ids[i], `pool id ${ids[i]}`));
      assert.ok(pool.totalCount > 1, `pool opened ${pool.totalCount} connection(s)`);
      const named = await Promise.all(ids.map((n) => pool.query({ name: 'pool_by_id', text: SELECT_BY_ID, values: [n] })));
      named.forEach((r, i) => checkRow(r.rows[0], ids[i], `pool named id ${ids[i]}`));
    } finally {
      await pool.end();
    }
  });

  await check('NULLs (null/undefined parameters, NULL results)', async () => {
    const r = await client.query(INSERT, [200, null, null, undefined, null, null, null, null, null]);
    assert.strictEqual(r.rowCount, 1, 'rowCount');
    const s = await client.query(SELECT_BY_ID, [200]);
    const got = s.rows[0];
    assert.ok(got, 'no row 200');
    for (const c of ['n', 'd', 'r', 't', 'b', 'ts', 'emb', 'vec']) assert.strictEqual(got[c], null, `column ${c}`);
    const c = await client.query(`SELECT count(*) AS c FROM ${TABLE} WHERE n IS NULL AND ($1::int IS NULL)`, [null]);
    assert.strictEqual(c.rows[0].c, '1', 'WHERE n IS NULL AND $1::int IS NULL');
    const e = await client.query('SELECT NULL::text AS x, NULL::double precision AS y');
    assert.deepStrictEqual(e.rows, [{ x: null, y: null }], 'NULL literals');
  });

  await check('parameter in LIMIT (unnamed x3, named x5)', async () => {
    for (const k of [1, 3, 7]) {
      const r = await client.query(`SELECT id FROM ${TABLE} ORDER BY id LIMIT $1`, [k]);
      assert.deepStrictEqual(r.rows.map((x) => x.id), Array.from({ length: k }, (_, i) => String(i + 1)), `LIMIT ${k}`);
    }
    for (let k = 1; k <= 5; k++) {
      const r = await client.query({ name: 'node_check_limit', text: `SELECT id FROM ${TABLE} WHERE id > $1 ORDER BY id LIMIT $2`, values: [2, k] });
      assert.deepStrictEqual(r.rows.map((x) => x.id), Array.from({ length: k }, (_, i) => String(i + 3)), `named LIMIT ${k}`);
    }
  });

  await check('error 23505 (duplicate key) leaves the client usable', async () => {
    const e = await expectError('23505', client.query(INSERT, insertValues(row(1))), 'duplicate INSERT');
    assert.ok(/already exists/.test(e.detail || e.message), `detail: ${e.detail}`);
    await expectUsable();
    await expectError('23505', client.query({ name: 'node_check_insert', text: INSERT, values: insertValues(row(2)) }),
      'duplicate named INSERT');
    await expectUsable();
    const r = await client.query({ name: 'node_check_by_id', text: SELECT_BY_ID, values: [3] });
    checkRow(r.rows[0], 3, 'named statement after the error');
  });

  await check('error 42P01 (missing table) / 42601 (syntax) / 42703 (missing column) leave the client usable', async () => {
    await expectError('42P01', client.query('SELECT * FROM node_check_no_such_table'), 'missing table (simple)');
    await expectUsable();
    await expectError('42P01', client.query('SELECT * FROM node_check_no_such_table WHERE id = $1', [1]), 'missing table (extended)');
    await expectUsable();
    await expectError('42P01', client.query({ name: 'node_check_missing', text: 'SELECT * FROM node_check_no_such_table WHERE id = $1', values: [1] }),
      'missing table (named)');
    await expectUsable();
    await expectError('42601', client.query('SELEC 1'), 'syntax error');
    await expectUsable();
    await expectError('42703', client.query(`SELECT no_such_column FROM ${TABLE}`), 'missing column');
    await expectUsable();
  });

  await check('error inside a pg.Pool query leaves the pool usable', async () => {
    const pool = new pg.Pool({ ...config, max: 2 });
    try {
      await expectError('23505', pool.query(INSERT, insertValues(row(1))), 'duplicate INSERT via pool');
      const r = await Promise.all([1, 2, 3, 4].map((n) => pool.query(SELECT_BY_ID, [n])));
      r.forEach((x, i) => checkRow(x.rows[0], i + 1, `pool id ${i + 1}`));
    } finally {
      await pool.end();
    }
  });

  await check('types: timestamp parameters (string, Date, +05:30 offset as pg sends from a non-UTC zone)', async () => {
    const q = `SELECT id FROM ${TABLE} WHERE ts = $1`;
    let r = await client.query(q, ['2026-01-01 09:03:00']);
    assert.deepStrictEqual(r.rows, [{ id: '3' }], 'ts = string');
    r = await client.query(q, [ts(4)]);
    assert.deepStrictEqual(r.rows, [{ id: '4' }], 'ts = Date');
    // pg serializes a Date as local time with the zone's offset; for a timestamp without time
    // zone PostgreSQL ignores the offset.
    r = await client.query(q, ['2026-01-01T09:05:00.000+05:30']);
    assert.deepStrictEqual(r.rows, [{ id: '5' }], "ts = '2026-01-01T09:05:00.000+05:30'");
    const ins = await client.query(`INSERT INTO ${TABLE} (id, ts) VALUES ($1, $2)`, [201, '2026-03-04T05:06:07.123+05:30']);
    assert.strictEqual(ins.rowCount, 1, 'rowCount');
    r = await client.query(`SELECT ts, CAST(ts AS TEXT) AS txt FROM ${TABLE} WHERE id = $1`, [201]);
    assert.strictEqual(wall(r.rows[0].ts), '2026,2,4,5,6,7,123', `stored ts ${r.rows[0].txt}`);
  });

  await check('types: timestamp/boolean/double/real literals and arithmetic', async () => {
    const r = await client.query("SELECT TIMESTAMP '2026-01-02 03:04:05.678' AS ts, true AS t, false AS f, "
      + 'CAST(1.5 AS DOUBLE PRECISION) * 2 AS d, CAST(0.25 AS REAL) AS r, CAST(1e300 AS DOUBLE PRECISION) AS big');
    const got = r.rows[0];
    assert.strictEqual(wall(got.ts), '2026,0,2,3,4,5,678', `ts ${got.ts}`);
    assert.strictEqual(got.t, true, 't');
    assert.strictEqual(got.f, false, 'f');
    assert.strictEqual(got.d, 3, 'd');
    assert.strictEqual(got.r, 0.25, 'r');
    assert.strictEqual(got.big, 1e300, 'big');
    assert.deepStrictEqual(r.fields.map((f) => f.dataTypeID), [1114, 16, 16, 701, 700, 701], 'field oids');
  });

  await gap('types: numeric literal types (SELECT 1 is integer, 1.5 numeric)', 'integer literals are bigint, decimal literals double precision', async () => {
    const r = await client.query('SELECT 1 AS a, 3000000000 AS b, 1.5 AS c, 1 + 1 AS d');
    const got = r.fields.map((f) => `${f.name}:${f.dataTypeID}`);
    assert.deepStrictEqual(got, ['a:23', 'b:20', 'c:1700', 'd:23'], 'fields name:oid (23 int4, 20 int8, 1700 numeric)');
    assert.deepStrictEqual(r.rows[0], { a: 1, b: '3000000000', c: '1.5', d: 2 }, 'JS values');
  });

  await check('types: real[] / float8[] arrays (parameters and results)', async () => {
    let r = await client.query(`SELECT emb, vec FROM ${TABLE} WHERE id = $1`, [7]);
    assert.deepStrictEqual(r.rows[0].emb, [7.5, -7.25], 'emb');
    assert.deepStrictEqual(r.rows[0].vec, [7.125, 1e10, -2.5], 'vec');
    r = await client.query('SELECT CAST($1 AS REAL[]) AS a, CAST($2 AS DOUBLE PRECISION[]) AS b', [[1.5, 2.5], [0.1, -3]]);
    assert.deepStrictEqual(r.rows[0], { a: [1.5, 2.5], b: [0.1, -3] }, 'CAST($n AS ...[])');
    assert.deepStrictEqual(r.fields.map((f) => f.dataTypeID), [1021, 1022], 'field oids');
    r = await client.query(`SELECT count(*) AS c FROM ${TABLE} WHERE vec = $1`, [[7.125, 1e10, -2.5]]);
    assert.strictEqual(r.rows[0].c, '1', 'WHERE vec = $1 (array parameter)');
    const e = await client.query(`INSERT INTO ${TABLE} (id, emb, vec) VALUES ($1, $2, $3)`, [202, [], [null, 1]]);
    assert.strictEqual(e.rowCount, 1, 'insert empty array / array with NULL');
    r = await client.query(`SELECT emb, vec FROM ${TABLE} WHERE id = $1`, [202]);
    assert.deepStrictEqual(r.rows[0], { emb: [], vec: [null, 1] }, 'empty array / array with NULL');
  });

  await check('several statements in one simple query', async () => {
    const r = await client.query("SELECT 'x' AS a; SELECT 'y' AS b");
    assert.ok(Array.isArray(r) && r.length === 2, `results: ${JSON.stringify(r && r.map ? r.map((x) => x.rows) : r)}`);
    assert.deepStrictEqual([r[0].rows, r[1].rows], [[{ a: 'x' }], [{ b: 'y' }]], 'rows');
  });

  await check('BEGIN ... COMMIT', async () => {
    await client.query('BEGIN');
    await client.query(INSERT, insertValues(row(300)));
    await client.query('COMMIT');
    const r = await client.query(SELECT_BY_ID, [300]);
    checkRow(r.rows[0], 300, 'row 300 after COMMIT');
  });

  await check('DROP TABLE', async () => {
    await client.query(`DROP TABLE ${TABLE}`);
  });

  if (client) await client.end().catch(() => {});
  console.log(`\n${passed} passed, ${failures.length} failed`);
  if (failures.length) {
    console.log('check.js FAILED:');
    for (const f of failures) console.log(`  - ${f}`);
    process.exit(1);
  }
  console.log('check.js OK');
}

main().catch((e) => {
  console.error('check.js crashed:', e);
  process.exit(1);
});

// pgjdbc client-compatibility check for nowdb (also passes against PostgreSQL 15).
//
//   java -cp /usr/share/java/postgresql.jar tests/clients/jdbc/JdbcCheck.java <host> <port>
//
// Connects as user nowdb to database nowdb with the plain URL (driver defaults: extended
// protocol, prepareThreshold=5 then named server-side statements and binary results).
// Stops at the first failing check and exits 1. With CLIENTS_CHECK_ALL=1 it runs every check,
// lists all failures and exits 1 if any failed. JDBC_URL_EXTRA=key=value&... is appended to
// the URL (e.g. prepareThreshold=1). To see the protocol messages, run java with
// -Djava.util.logging.config.file=tests/clients/jdbc/logging.properties (pgjdbc 42.5 ignores
// loggerLevel=TRACE in the URL). JDBC_CHECK_STACK=1 prints stack traces of failures.

import java.sql.*;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.*;

public class JdbcCheck {
    static final String TABLE = "jdbc_check";
    static final String TABLE2 = "jdbc_check_tx";
    static final boolean ALL = "1".equals(System.getenv("CLIENTS_CHECK_ALL"));
    static String url;
    static Connection conn;
    static final List<String> failures = new ArrayList<>();
    static int passed = 0;

    interface Body { void run() throws Exception; }

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String m) { super(m); }
    }

    static void fail(String msg) { throw new CheckFailed(msg); }

    static void expect(boolean cond, String msg) { if (!cond) fail(msg); }

    static void expectEq(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            fail(what + ": expected " + show(expected) + ", got " + show(actual));
        }
    }

    static String show(Object o) {
        return o == null ? "null" : o + " (" + o.getClass().getSimpleName() + ")";
    }

    static String describe(Throwable e) {
        if (e instanceof SQLException) {
            SQLException s = (SQLException) e;
            return "SQLException SQLState=" + s.getSQLState() + ": " + s.getMessage();
        }
        if (e instanceof CheckFailed) return e.getMessage();
        return e.toString();
    }

    /** A known gap (docs/COMPATIBILITY.md, "Clients"): the body must still fail; once it
     *  passes, the check fails so that the gap gets removed from this file and the docs. */
    static void gap(String name, String reason, Body body) {
        check(name + " [known gap: " + reason + "]", () -> {
            boolean failed = false;
            try {
                body.run();
            } catch (Throwable e) {
                failed = true;
                try {
                    if (!conn.isClosed() && !conn.getAutoCommit()) conn.rollback();
                } catch (SQLException ignored) { }
            }
            if (!failed) throw new CheckFailed("known gap now passes: turn it back into a check");
        });
    }

    static void check(String name, Body body) {
        try {
            if (conn == null || conn.isClosed()) conn = DriverManager.getConnection(url);
        } catch (SQLException e) {
            record(name, "cannot (re)connect: " + describe(e), e);
            return;
        }
        try {
            body.run();
            passed++;
            System.out.println("PASS " + name);
        } catch (Throwable e) {
            record(name, describe(e), e);
            try {
                // Leave a clean connection for the next check.
                if (!conn.isClosed() && !conn.getAutoCommit()) conn.rollback();
                if (!conn.isClosed()) conn.setAutoCommit(true);
            } catch (SQLException ignored) {
                try { conn.close(); } catch (SQLException ignored2) { }
            }
        }
    }

    static void record(String name, String msg, Throwable e) {
        failures.add(name + ": " + msg);
        System.out.println("FAIL " + name + ": " + msg);
        if (System.getenv("JDBC_CHECK_STACK") != null) e.printStackTrace(System.out);
        if (!ALL) {
            System.out.println("JdbcCheck FAILED (set CLIENTS_CHECK_ALL=1 to run every check)");
            System.exit(1);
        }
    }

    // Expected row content for id n (1 <= n <= 20, inserted by the batch).
    static int iOf(long n) { return (int) n * 10; }
    static double dOf(long n) { return n + 0.25; }
    static float rOf(long n) { return n + 0.5f; }
    static String tOf(long n) { return "name-" + n + (n % 2 == 0 ? " é" : ""); }
    static boolean bOf(long n) { return n % 2 == 0; }
    static LocalDateTime tsOf(long n) { return LocalDateTime.of(2026, 1, 1, 9, 0, 0).plusMinutes(n).plusNanos(n * 1000); }
    static LocalDate dtOf(long n) { return LocalDate.of(2026, 2, 1).plusDays(n); }

    static final String COLS = "id, i, d, r, t, b, ts, dt";

    static void checkRow(ResultSet rs, long n, String ctx) throws SQLException {
        expectEq(n, rs.getLong("id"), ctx + " id");
        expectEq(iOf(n), rs.getInt("i"), ctx + " i (INTEGER)");
        expectEq(dOf(n), rs.getDouble("d"), ctx + " d (DOUBLE PRECISION)");
        expectEq(rOf(n), rs.getFloat("r"), ctx + " r (REAL)");
        expectEq(tOf(n), rs.getString("t"), ctx + " t (TEXT)");
        expectEq(bOf(n), rs.getBoolean("b"), ctx + " b (BOOLEAN)");
        expectEq(Timestamp.valueOf(tsOf(n)), rs.getTimestamp("ts"), ctx + " ts (TIMESTAMP)");
        expectEq(java.sql.Date.valueOf(dtOf(n)), rs.getDate("dt"), ctx + " dt (DATE)");
        // getObject: the Java classes pgjdbc maps the column types to.
        expectEq(n, rs.getObject("id"), ctx + " getObject(id)");
        expectEq(iOf(n), rs.getObject("i"), ctx + " getObject(i)");
        expectEq(dOf(n), rs.getObject("d"), ctx + " getObject(d)");
        expectEq(rOf(n), rs.getObject("r"), ctx + " getObject(r)");
        expectEq(bOf(n), rs.getObject("b"), ctx + " getObject(b)");
        expectEq(tsOf(n), rs.getObject("ts", LocalDateTime.class), ctx + " getObject(ts, LocalDateTime)");
        expectEq(dtOf(n), rs.getObject("dt", LocalDate.class), ctx + " getObject(dt, LocalDate)");
    }

    static void execute(String sql) throws SQLException {
        try (Statement st = conn.createStatement()) { st.execute(sql); }
    }

    static long count(String sql) throws SQLException {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            expect(rs.next(), "no row from " + sql);
            return rs.getLong(1);
        }
    }

    static void expectSqlState(String sqlState, Body body, String what) throws Exception {
        try {
            body.run();
        } catch (SQLException e) {
            expectEq(sqlState, e.getSQLState(), what + " SQLState (message: " + e.getMessage() + ")");
            return;
        }
        fail(what + ": no error, expected SQLState " + sqlState);
    }

    static void expectUsable() throws SQLException {
        expect(!conn.isClosed(), "connection closed after the error");
        expectEq(1L, count("SELECT 1"), "SELECT 1 after the error");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: java -cp postgresql.jar JdbcCheck.java <host> <port>");
            System.exit(2);
        }
        String extra = System.getenv("JDBC_URL_EXTRA");
        url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/nowdb?user=nowdb"
            + (extra == null || extra.isEmpty() ? "" : "&" + extra);
        System.out.println("JdbcCheck: " + url + " (pgjdbc " + org.postgresql.util.DriverInfo.DRIVER_FULL_NAME + ")");

        check("connect (plain URL)", () -> {
            expect(conn.isValid(5), "isValid(5) false");
            expect(conn.getAutoCommit(), "autocommit is not on by default");
        });

        check("DatabaseMetaData product name/version", () -> {
            DatabaseMetaData md = conn.getMetaData();
            expectEq("PostgreSQL", md.getDatabaseProductName(), "getDatabaseProductName");
            String v = md.getDatabaseProductVersion();
            expect(v != null && v.startsWith("15"), "getDatabaseProductVersion: " + v);
            expectEq(15, md.getDatabaseMajorVersion(), "getDatabaseMajorVersion");
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT version()")) {
                expect(rs.next(), "no row");
                String ver = rs.getString(1);
                expect(ver.startsWith("PostgreSQL 15"), "version(): " + ver);
            }
        });

        check("CREATE TABLE (keyed, 8 types)", () -> {
            execute("DROP TABLE IF EXISTS " + TABLE);
            execute("CREATE TABLE " + TABLE + " (id BIGINT PRIMARY KEY, i INTEGER, d DOUBLE PRECISION, "
                + "r REAL, t TEXT, b BOOLEAN, ts TIMESTAMP, dt DATE)");
        });

        check("PreparedStatement addBatch/executeBatch insert (20 rows, setLong/setInt/...)", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO " + TABLE + " (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
                for (long n = 1; n <= 20; n++) {
                    ps.setLong(1, n);
                    ps.setInt(2, iOf(n));
                    ps.setDouble(3, dOf(n));
                    ps.setFloat(4, rOf(n));
                    ps.setString(5, tOf(n));
                    ps.setBoolean(6, bOf(n));
                    ps.setTimestamp(7, Timestamp.valueOf(tsOf(n)));
                    ps.setDate(8, java.sql.Date.valueOf(dtOf(n)));
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                expectEq(20, counts.length, "executeBatch result length");
                for (int c : counts) {
                    expect(c == 1 || c == Statement.SUCCESS_NO_INFO, "executeBatch counts " + Arrays.toString(counts));
                }
            }
            expectEq(20L, count("SELECT count(*) FROM " + TABLE), "count(*) after batch");
        });

        check("PreparedStatement executeUpdate with setObject (LocalDateTime/LocalDate)", () -> {
            // Own SQL text: pgjdbc caches server-side statements per connection by SQL text.
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO " + TABLE + " (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ? /* setObject */)")) {
                long n = 21;
                ps.setObject(1, n);
                ps.setObject(2, iOf(n));
                ps.setObject(3, dOf(n));
                ps.setObject(4, rOf(n));
                ps.setObject(5, tOf(n));
                ps.setObject(6, bOf(n));
                ps.setObject(7, tsOf(n));
                ps.setObject(8, dtOf(n));
                expectEq(1, ps.executeUpdate(), "executeUpdate count");
            }
            try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLS + " FROM " + TABLE + " WHERE id = ?")) {
                ps.setLong(1, 21);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "row 21 not found");
                    checkRow(rs, 21, "row 21");
                }
            }
        });

        check("PreparedStatement executeUpdate with setNull", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO " + TABLE + " (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ? /* setNull */)")) {
                ps.setLong(1, 22);
                ps.setNull(2, Types.INTEGER);
                ps.setNull(3, Types.DOUBLE);
                ps.setNull(4, Types.REAL);
                ps.setNull(5, Types.VARCHAR);
                ps.setNull(6, Types.BOOLEAN);
                ps.setNull(7, Types.TIMESTAMP);
                ps.setNull(8, Types.DATE);
                expectEq(1, ps.executeUpdate(), "executeUpdate count");
            }
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT " + COLS + " FROM " + TABLE + " WHERE id = 22")) {
                expect(rs.next(), "row 22 not found");
                for (int c = 2; c <= 8; c++) {
                    expectEq(null, rs.getObject(c), "column " + c + " of row 22");
                }
                rs.getInt(2);
                expect(rs.wasNull(), "wasNull after getInt");
            }
        });

        check("PreparedStatement executeUpdate x3 with the SQL text executeBatch used (cached statement)", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO " + TABLE + " (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
                for (long n = 23; n <= 25; n++) {
                    ps.setLong(1, n);
                    ps.setInt(2, iOf(n));
                    ps.setDouble(3, dOf(n));
                    ps.setFloat(4, rOf(n));
                    ps.setString(5, tOf(n));
                    ps.setBoolean(6, bOf(n));
                    ps.setTimestamp(7, Timestamp.valueOf(tsOf(n)));
                    ps.setDate(8, java.sql.Date.valueOf(dtOf(n)));
                    expectEq(1, ps.executeUpdate(), "executeUpdate count for id " + n);
                }
            }
            expectEq(3L, count("SELECT count(*) FROM " + TABLE + " WHERE id BETWEEN 23 AND 25"), "rows 23..25");
        });

        check("PreparedStatement UPDATE addBatch/executeBatch (update counts)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("UPDATE " + TABLE + " SET t = ? WHERE id = ?")) {
                for (long n = 23; n <= 26; n++) {
                    ps.setString(1, "updated-" + n);
                    ps.setLong(2, n);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                // ids 23..25 may be missing if the previous check failed; 26 never exists.
                expectEq(4, counts.length, "executeBatch result length");
                expectEq(0, counts[3], "update count of the missing id 26");
                long present = count("SELECT count(*) FROM " + TABLE + " WHERE id BETWEEN 23 AND 25");
                int sum = counts[0] + counts[1] + counts[2];
                expectEq((int) present, sum, "sum of update counts " + Arrays.toString(counts));
            }
        });

        check("PreparedStatement SELECT ... WHERE id = ? x15 (setLong; named statement + binary after 5)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLS + " FROM " + TABLE + " WHERE id = ?")) {
                for (int k = 1; k <= 15; k++) {
                    ps.setLong(1, k);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "execution " + k + ": no row");
                        checkRow(rs, k, "execution " + k);
                        expect(!rs.next(), "execution " + k + ": more than one row");
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                }
            }
        });

        check("PreparedStatement SELECT ... WHERE id = ? x15 (setObject Long)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLS + " FROM " + TABLE + " WHERE id = ?")) {
                for (int k = 1; k <= 15; k++) {
                    long n = 16 - k;
                    ps.setObject(1, n);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "execution " + k + ": no row");
                        checkRow(rs, n, "execution " + k);
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                }
            }
        });

        check("PreparedStatement SELECT ... WHERE t = ? x15 (setString)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, t FROM " + TABLE + " WHERE t = ?")) {
                for (int k = 1; k <= 15; k++) {
                    ps.setString(1, tOf(k));
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "execution " + k + ": no row");
                        expectEq((long) k, rs.getLong(1), "execution " + k + " id");
                        expectEq(tOf(k), rs.getString(2), "execution " + k + " t");
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                }
            }
        });

        check("PreparedStatement SELECT ... WHERE ts = ? x15 (setTimestamp)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, ts FROM " + TABLE + " WHERE ts = ?")) {
                for (int k = 1; k <= 15; k++) {
                    ps.setTimestamp(1, Timestamp.valueOf(tsOf(k)));
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "execution " + k + ": no row");
                        expectEq((long) k, rs.getLong(1), "execution " + k + " id");
                        expectEq(Timestamp.valueOf(tsOf(k)), rs.getTimestamp(2), "execution " + k + " ts");
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                }
            }
        });

        check("PreparedStatement SELECT ... WHERE dt = ? x15 (setDate)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, dt FROM " + TABLE + " WHERE dt = ?")) {
                for (int k = 1; k <= 15; k++) {
                    ps.setDate(1, java.sql.Date.valueOf(dtOf(k)));
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "execution " + k + ": no row");
                        expectEq((long) k, rs.getLong(1), "execution " + k + " id");
                        expectEq(java.sql.Date.valueOf(dtOf(k)), rs.getDate(2), "execution " + k + " dt");
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                }
            }
        });

        check("PreparedStatement SELECT with typed NULL parameter x8 (setNull)", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count(*) FROM " + TABLE + " WHERE i = ? OR (CAST(? AS INTEGER) IS NULL AND i IS NULL)")) {
                for (int k = 1; k <= 8; k++) {
                    ps.setNull(1, Types.INTEGER);
                    ps.setNull(2, Types.INTEGER);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "no row");
                        expectEq(1L, rs.getLong(1), "execution " + k + " count (only row 22 has i NULL)");
                    }
                }
            }
        });

        check("PreparedStatement SELECT ... LIMIT ? x15", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id FROM " + TABLE + " ORDER BY id LIMIT ?")) {
                for (int k = 1; k <= 15; k++) {
                    ps.setInt(1, k);
                    int rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            rows++;
                            expectEq((long) rows, rs.getLong(1), "execution " + k + " row " + rows);
                        }
                    } catch (SQLException e) {
                        throw new SQLException("execution " + k + ": " + e.getMessage(), e.getSQLState(), e);
                    }
                    expectEq(k, rows, "execution " + k + " row count");
                }
            }
        });

        check("ResultSetMetaData column types", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT " + COLS + " FROM " + TABLE + " WHERE id = ?")) {
                ps.setLong(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    expectEq(8, md.getColumnCount(), "getColumnCount");
                    String[] names = COLS.split(", ");
                    int[] types = {Types.BIGINT, Types.INTEGER, Types.DOUBLE, Types.REAL, Types.VARCHAR,
                                   Types.BIT, Types.TIMESTAMP, Types.DATE};
                    String[] typeNames = {"int8", "int4", "float8", "float4", "text", "bool", "timestamp", "date"};
                    String[] classes = {"java.lang.Long", "java.lang.Integer", "java.lang.Double", "java.lang.Float",
                                        "java.lang.String", "java.lang.Boolean", "java.sql.Timestamp", "java.sql.Date"};
                    for (int c = 1; c <= 8; c++) {
                        expectEq(names[c - 1], md.getColumnName(c), "getColumnName(" + c + ")");
                        expectEq(types[c - 1], md.getColumnType(c), "getColumnType(" + c + ") " + names[c - 1]);
                        expectEq(typeNames[c - 1], md.getColumnTypeName(c), "getColumnTypeName(" + c + ")");
                        expectEq(classes[c - 1], md.getColumnClassName(c), "getColumnClassName(" + c + ")");
                    }
                }
            }
        });

        check("ResultSetMetaData getTableName/isNullable (RowDescription table OID + pg_attribute)", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT id, i FROM " + TABLE + " WHERE id = ?")) {
                ps.setLong(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    // pgjdbc looks these up in pg_class / pg_attribute by the table OID and column
                    // number of each RowDescription field; with 0 it answers "" / columnNullableUnknown.
                    expectEq(ResultSetMetaData.columnNoNulls, md.isNullable(1), "isNullable(id)");
                    expectEq(ResultSetMetaData.columnNullable, md.isNullable(2), "isNullable(i)");
                    expectEq(TABLE, md.getTableName(1), "getTableName(1)");
                }
            }
        });

        check("DatabaseMetaData.getTables(null, public, %, {TABLE})", () -> {
            boolean found = false;
            try (ResultSet rs = conn.getMetaData().getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    if (TABLE.equals(rs.getString("TABLE_NAME"))) {
                        found = true;
                        expectEq("public", rs.getString("TABLE_SCHEM"), "TABLE_SCHEM");
                        expectEq("TABLE", rs.getString("TABLE_TYPE"), "TABLE_TYPE");
                    }
                }
            }
            expect(found, TABLE + " not listed by getTables");
        });

        check("DatabaseMetaData.getColumns(null, public, table, %)", () -> {
            String[] names = COLS.split(", ");
            int[] types = {Types.BIGINT, Types.INTEGER, Types.DOUBLE, Types.REAL, Types.VARCHAR,
                           Types.BIT, Types.TIMESTAMP, Types.DATE};
            String[] typeNames = {"int8", "int4", "float8", "float4", "text", "bool", "timestamp", "date"};
            int c = 0;
            try (ResultSet rs = conn.getMetaData().getColumns(null, "public", TABLE, "%")) {
                while (rs.next()) {
                    expect(c < 8, "more than 8 columns: " + rs.getString("COLUMN_NAME"));
                    String n = names[c];
                    expectEq(n, rs.getString("COLUMN_NAME"), "COLUMN_NAME " + (c + 1));
                    expectEq(types[c], rs.getInt("DATA_TYPE"), "DATA_TYPE of " + n);
                    expectEq(typeNames[c], rs.getString("TYPE_NAME"), "TYPE_NAME of " + n);
                    expectEq(c + 1, rs.getInt("ORDINAL_POSITION"), "ORDINAL_POSITION of " + n);
                    int nullable = c == 0 ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable;
                    expectEq(nullable, rs.getInt("NULLABLE"), "NULLABLE of " + n);
                    expectEq(c == 0 ? "NO" : "YES", rs.getString("IS_NULLABLE"), "IS_NULLABLE of " + n);
                    c++;
                }
            }
            expectEq(8, c, "number of columns");
        });

        check("DatabaseMetaData.getPrimaryKeys", () -> {
            try (ResultSet rs = conn.getMetaData().getPrimaryKeys(null, "public", TABLE)) {
                expect(rs.next(), "no primary key row");
                expectEq("id", rs.getString("COLUMN_NAME"), "COLUMN_NAME");
                expectEq(1, rs.getInt("KEY_SEQ"), "KEY_SEQ");
                expectEq(TABLE, rs.getString("TABLE_NAME"), "TABLE_NAME");
                expect(!rs.next(), "more than one primary key column");
            }
        });

        check("DatabaseMetaData.getSchemas", () -> {
            Set<String> schemas = new TreeSet<>();
            try (ResultSet rs = conn.getMetaData().getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            expect(schemas.contains("public"), "public not in getSchemas: " + schemas);
        });

        check("error 23505 (duplicate key, Statement) leaves the connection usable", () -> {
            expectSqlState("23505", () -> execute("INSERT INTO " + TABLE + " (" + COLS
                + ") VALUES (1, 0, 0, 0, 'dup', false, '2026-01-01 00:00:00', '2026-01-01')"), "duplicate INSERT");
            expectUsable();
        });

        check("error 23505 (duplicate key, PreparedStatement x8) leaves the connection usable", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO " + TABLE + " (id, i) VALUES (?, ?)")) {
                for (int k = 1; k <= 8; k++) {
                    ps.setLong(1, k);
                    ps.setInt(2, 0);
                    expectSqlState("23505", ps::executeUpdate, "duplicate INSERT execution " + k);
                    expectUsable();
                }
            }
        });

        check("error 42P01 (missing table) leaves the connection usable", () -> {
            expectSqlState("42P01", () -> count("SELECT count(*) FROM jdbc_check_no_such_table"), "SELECT from missing table");
            expectUsable();
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM jdbc_check_no_such_table WHERE id = ?")) {
                ps.setLong(1, 1);
                expectSqlState("42P01", ps::executeQuery, "prepared SELECT from missing table");
            }
            expectUsable();
        });

        check("setAutoCommit(false) ... commit()", () -> {
            execute("DROP TABLE IF EXISTS " + TABLE2);
            execute("CREATE TABLE " + TABLE2 + " (id BIGINT PRIMARY KEY, v TEXT)");
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + TABLE2 + " (id, v) VALUES (?, ?)")) {
                for (long n = 1; n <= 3; n++) {
                    ps.setLong(1, n);
                    ps.setString(2, "v" + n);
                    expectEq(1, ps.executeUpdate(), "executeUpdate count");
                }
            }
            expectEq(3L, count("SELECT count(*) FROM " + TABLE2), "count inside the transaction");
            conn.commit();
            conn.setAutoCommit(true);
            expectEq(3L, count("SELECT count(*) FROM " + TABLE2), "count after commit");
            execute("DROP TABLE " + TABLE2);
        });

        check("setTimestamp round trip with a non-UTC JVM time zone (Asia/Kolkata)", () -> {
            TimeZone saved = TimeZone.getDefault();
            TimeZone.setDefault(TimeZone.getTimeZone("Asia/Kolkata"));
            try (Connection c = DriverManager.getConnection(url)) {
                try (PreparedStatement ps = c.prepareStatement(
                        "INSERT INTO " + TABLE + " (id, ts, dt) VALUES (?, ?, ?)")) {
                    ps.setLong(1, 30);
                    ps.setTimestamp(2, Timestamp.valueOf(tsOf(30)));
                    ps.setDate(3, java.sql.Date.valueOf(dtOf(30)));
                    expectEq(1, ps.executeUpdate(), "executeUpdate count");
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT ts, dt, CAST(ts AS TEXT) AS ts_text FROM " + TABLE + " WHERE id = ?")) {
                    for (int k = 1; k <= 7; k++) {
                        ps.setLong(1, 30);
                        try (ResultSet rs = ps.executeQuery()) {
                            expect(rs.next(), "no row");
                            expectEq(Timestamp.valueOf(tsOf(30)), rs.getTimestamp(1),
                                "execution " + k + " ts (stored text " + rs.getString(3) + ")");
                            expectEq(java.sql.Date.valueOf(dtOf(30)), rs.getDate(2), "execution " + k + " dt");
                        }
                    }
                }
            } finally {
                TimeZone.setDefault(saved);
            }
        });

        check("DROP TABLE", () -> execute("DROP TABLE " + TABLE));

        try { if (conn != null) conn.close(); } catch (SQLException ignored) { }
        System.out.println();
        System.out.println(passed + " passed, " + failures.size() + " failed");
        if (!failures.isEmpty()) {
            System.out.println("JdbcCheck FAILED:");
            for (String f : failures) System.out.println("  - " + f);
            System.exit(1);
        }
        System.out.println("JdbcCheck OK");
    }
}

-- Grafana PostgreSQL data source: the SQL it sends to list schemas, tables and columns,
-- its health check, and a panel query as its macro engine expands it.
--
-- Sources (read with the code-search tools; Grafana 12.2.0-pre, grafana-postgresql-datasource):
--   https://github.com/grafana/grafana/blob/12f912ab8d010f4d95a4043a0efaa20fc4ca0100/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
--     getVersion(), getTimescaleDBVersion(), showSchemas(), showTables(), showTables(schema), getSchema(table)
--   https://github.com/grafana/grafana/blob/043dd88a47944c35205994c4da317e100dc9b12e/pkg/tsdb/grafana-postgresql-datasource/schema.go
--     querySchemas(), queryTables(schema), queryColumns(schema, table), ColumnValues() (pgx, $n parameters)
--   https://github.com/grafana/grafana/blob/02ab314b81e2adc656bd7d08cc0533304a0037ff/pkg/tsdb/grafana-postgresql-datasource/macros.go
--     $__timeGroupAlias / $__timeFilter / $__timeFrom expansions
--   pgx v5 Conn.Ping (used by Grafana's CheckHealth): Exec(ctx, "-- ping"), a simple-protocol query
--   datafusion-postgres datafusion-postgres/tests/grafana.rs @ 4c18f5ad6334effead3b56c787f9b47899959acd
--     (same two queries as postgresMetaQuery.ts, older indentation)
-- Placeholders replaced for the test schema: Grafana's table name ('public.games' in
-- datafusion-postgres) is 'users' / 'public.users'; schema 'public'; the time range
-- 2026-01-01T00:00:00Z .. 2026-01-02T00:00:00Z.
--
-- Format: entries are separated by a line holding only ';'. Comment lines starting with
-- '-- @' before an entry are directives for tests/python/bi_replay.py:
--   @name: label        @params: JSON list bound to $1..$n
--   @expect: a, b       each value must appear in some result cell
--   @expect-row: a | b  some result row must contain all these values
-- Everything else in an entry is the statement, sent verbatim.

-- @name: health check (pgx Ping)
-- ping
;
-- @name: getVersion
SELECT current_setting('server_version_num')::int/100 as version
;
-- @name: getTimescaleDBVersion
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'
;
-- @name: showSchemas
-- @expect: public
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name
;
-- @name: showTables() (table list of the query editor)
-- @expect: users, events
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1
;
-- @name: showTables('public')
-- @expect: users, events
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1
;
-- @name: getSchema('users') (column list, unqualified table)
-- @expect: user_id, country, score
-- @expect-row: user_id | bigint
-- @expect-row: score | real
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('users'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('users'))[1]
          AND quote_ident(table_name) = (parse_ident('users'))[2]
        ELSE quote_ident(table_name) = 'users'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
;
-- @name: getSchema('public.events') (column list, qualified table)
-- @expect: user_id, amount, ts
-- @expect-row: ts | timestamp without time zone
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('public.events'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('public.events'))[1]
          AND quote_ident(table_name) = (parse_ident('public.events'))[2]
        ELSE quote_ident(table_name) = 'public.events'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
;
-- @name: schema.go querySchemas
-- @expect: public
SELECT schema_name FROM information_schema.schemata
		 WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema'
		 ORDER BY schema_name
;
-- @name: schema.go queryTables($1 = 'public')
-- @params: ["public"]
-- @expect: users, events
SELECT table_name FROM information_schema.tables
		 WHERE table_schema = $1 AND table_type IN ('BASE TABLE', 'VIEW')
		 ORDER BY table_name
;
-- @name: schema.go queryColumns($1 = 'public', $2 = 'users')
-- @params: ["public", "users"]
-- @expect: user_id, country, score
-- @expect-row: user_id | bigint | int8
SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = $1 AND table_name = $2
		 ORDER BY ordinal_position
;
-- @name: schema.go ColumnValues(users: country)
-- @expect: FR, US
SELECT 'country' AS col_name, "country"::text AS val FROM (SELECT DISTINCT "country" FROM "public"."users" WHERE "country" IS NOT NULL ORDER BY "country" LIMIT 100) sub_0
;
-- @name: panel query (time series): SELECT $__timeGroupAlias(ts,5m), sum(amount) ... WHERE $__timeFilter(ts)
-- @expect: 12.5
SELECT floor(extract(epoch from ts)/300)*300 AS "time", sum(amount) AS "amount" FROM events WHERE ts BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T00:00:00Z' GROUP BY 1 ORDER BY 1
;
-- @name: panel query (table): $__time(ts), $__timeFrom(), $__timeTo()
SELECT ts AS "time", user_id, amount FROM events WHERE ts >= '2026-01-01T00:00:00Z' AND ts <= '2026-01-02T00:00:00Z' ORDER BY 1
;

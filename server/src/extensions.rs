//! nowdb's SQL extensions that the Postgres parser does not know, turned into SQL it does
//! before parsing:
//! - `SHOW MATERIALIZED VIEWS` becomes a query of `nowdb_catalog.views`, `SHOW MODELS` one of
//!   `nowdb_catalog.models`, `SHOW SOURCES` and `SHOW SINKS` of `nowdb_catalog.sources` and
//!   `nowdb_catalog.sinks` (Kafka);
//! - `WATERMARK FOR col AS expr` inside `CREATE TABLE (...)` (RisingWave's syntax) is lifted
//!   out of the column list into the table option `WITH (watermark = 'col AS expr')`, which
//!   [`crate::ddl`] reads.
//!
//! The rewrite skips quoted strings, quoted identifiers and comments, so the words only count
//! as keywords.

use std::borrow::Cow;

/// Where the words of `sql` are, outside quotes and comments: (start, end) byte offsets of
/// each word and single punctuation character.
pub(crate) fn tokens(sql: &str) -> Vec<(usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            let q = c;
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == q {
                    if i + 1 < b.len() && b[i + 1] == q {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push((start, i.min(b.len())));
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push((start, i));
        } else {
            out.push((i, i + 1));
            i += 1;
        }
    }
    out
}

fn word(sql: &str, t: (usize, usize)) -> &str {
    &sql[t.0..t.1]
}

fn is(sql: &str, t: Option<&(usize, usize)>, w: &str) -> bool {
    t.is_some_and(|t| word(sql, *t).eq_ignore_ascii_case(w))
}

/// Rewrites nowdb's extensions in `sql`; borrows it unchanged when there are none.
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    let toks = tokens(sql);
    let mut out = sql.to_string();
    let mut changed = false;
    // Work from the end so earlier offsets stay valid.
    for i in (0..toks.len()).rev() {
        let starts_statement = i == 0 || word(sql, toks[i - 1]) == ";";
        if starts_statement && (is(sql, toks.get(i), "create") || is(sql, toks.get(i), "alter") || is(sql, toks.get(i), "drop")) && is(sql, toks.get(i + 1), "user") {
            // PostgreSQL: CREATE USER is CREATE ROLE with LOGIN; ALTER/DROP USER are ALTER/DROP ROLE.
            if is(sql, toks.get(i), "create") {
                let end = toks[i..].iter().position(|t| word(sql, *t) == ";").map(|p| i + p);
                let stmt = &toks[i..end.unwrap_or(toks.len())];
                if !stmt.iter().any(|t| word(sql, *t).eq_ignore_ascii_case("login") || word(sql, *t).eq_ignore_ascii_case("nologin")) {
                    let at = match end {
                        Some(e) => toks[e].0,
                        None => stmt.last().map_or(sql.len(), |t| t.1),
                    };
                    out.insert_str(at, " LOGIN");
                }
            }
            out.replace_range(toks[i + 1].0..toks[i + 1].1, "ROLE");
            changed = true;
            continue;
        }
        if is(sql, toks.get(i), "show") && is(sql, toks.get(i + 1), "materialized") && is(sql, toks.get(i + 2), "views") {
            let (start, end) = (toks[i].0, toks[i + 2].1);
            out.replace_range(start..end, "SELECT name, definition FROM nowdb_catalog.views ORDER BY name");
            changed = true;
        }
        let show = |what: &str| is(sql, toks.get(i), "show") && is(sql, toks.get(i + 1), what) && toks.get(i + 2).is_none_or(|t| word(sql, *t) == ";");
        if show("sources") || show("sinks") {
            let query = match show("sources") {
                true => "SELECT source, topic, mode, partition, owned, next_offset, lag, messages_per_sec, errors, state FROM nowdb_catalog.sources ORDER BY source, partition",
                false => "SELECT name, view, topic, messages_sent, state FROM nowdb_catalog.sinks ORDER BY name",
            };
            out.replace_range(toks[i].0..toks[i + 1].1, query);
            changed = true;
        }
        if is(sql, toks.get(i), "show") && is(sql, toks.get(i + 1), "models") {
            let (start, end) = (toks[i].0, toks[i + 1].1);
            out.replace_range(
                start..end,
                "SELECT name, version, inputs, return_type, output, device FROM nowdb_catalog.models ORDER BY name",
            );
            changed = true;
        }
        if is(sql, toks.get(i), "watermark") && is(sql, toks.get(i + 1), "for") && i > 0 && word(sql, toks[i - 1]) == "," {
            // The clause runs to the next top-level ',' or ')' of the column list.
            let mut depth = 0i32;
            let mut j = i;
            while j < toks.len() {
                match word(sql, toks[j]) {
                    "(" => depth += 1,
                    ")" if depth == 0 => break,
                    ")" => depth -= 1,
                    "," if depth == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            let Some(close) = toks.get(j).filter(|t| word(sql, **t) == ")") else { continue };
            let clause_start = toks[i + 2].0;
            let clause_end = toks[j - 1].1;
            let clause = &sql[clause_start..clause_end];
            let option = format!("watermark = '{}'", clause.replace('\'', "''"));
            // Insert into an existing WITH (...) after the column list, or add one.
            let after = &toks[j + 1..];
            let insert = if is(sql, after.first(), "with") && after.get(1).is_some_and(|t| word(sql, *t) == "(") {
                (after[1].1, format!("{option}, "))
            } else {
                (close.1, format!(" WITH ({option})"))
            };
            out.insert_str(insert.0, &insert.1);
            out.replace_range(toks[i - 1].0..clause_end, "");
            changed = true;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_materialized_views_becomes_a_query() {
        assert_eq!(rewrite("show materialized views"), "SELECT name, definition FROM nowdb_catalog.views ORDER BY name");
        assert_eq!(rewrite("SELECT 'show materialized views'"), "SELECT 'show materialized views'");
    }

    #[test]
    fn show_sources_and_sinks_become_queries() {
        assert!(rewrite("SHOW SOURCES").ends_with("FROM nowdb_catalog.sources ORDER BY source, partition"));
        assert!(rewrite("show sinks;").starts_with("SELECT name, view, topic, messages_sent, state FROM nowdb_catalog.sinks"));
        assert_eq!(rewrite("SELECT 1 AS show, 2 AS sources"), "SELECT 1 AS show, 2 AS sources");
        assert_eq!(rewrite("SHOW sinks_setting"), "SHOW sinks_setting");
    }

    #[test]
    fn create_user_is_create_role_with_login() {
        assert_eq!(rewrite("CREATE USER alice WITH PASSWORD 'x;y'"), "CREATE ROLE alice WITH PASSWORD 'x;y' LOGIN");
        assert_eq!(rewrite("create user bob nologin; drop user bob"), "create ROLE bob nologin; drop ROLE bob");
        assert_eq!(rewrite("ALTER USER alice PASSWORD 'p'"), "ALTER ROLE alice PASSWORD 'p'");
        assert_eq!(rewrite("SELECT user FROM t"), "SELECT user FROM t");
    }

    #[test]
    fn watermark_moves_into_with() {
        let sql = "CREATE TABLE e (ts timestamp, v int, WATERMARK FOR ts AS ts - INTERVAL '5 seconds')";
        assert_eq!(rewrite(sql), "CREATE TABLE e (ts timestamp, v int) WITH (watermark = 'ts AS ts - INTERVAL ''5 seconds''')");
        let sql = "CREATE TABLE e (ts timestamp, WATERMARK FOR ts AS ts) WITH (retention = '7 days')";
        assert_eq!(rewrite(sql), "CREATE TABLE e (ts timestamp) WITH (watermark = 'ts AS ts', retention = '7 days')");
        let untouched = "CREATE TABLE watermark (for_x int)";
        assert_eq!(rewrite(untouched), untouched);
    }
}

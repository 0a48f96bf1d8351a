//! Textual rewrites of specific tools' catalog queries that DataFusion cannot run as sent
//! and that no general rewrite covers. Each keeps the query's meaning for nowdb's catalog;
//! each is exercised by the replayed tool queries in `tests/clients`.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// pgjdbc's `getPrimaryKeys` expands `indkey` with `information_schema._pg_expandarray`, a
/// set-returning function of a composite type that DataFusion cannot express; the same
/// answer, key columns in key order, is `array_position` / `array_has` on the array.
const PGJDBC_PRIMARY_KEYS: [(&str, &str); 3] = [
    ("(information_schema._pg_expandarray(i.indkey)).n", "array_position(i.indkey, a.attnum)"),
    ("information_schema._pg_expandarray(i.indkey)", "i.indkey"),
    ("result.A_ATTNUM = (result.KEYS).x", "array_has(result.KEYS, result.A_ATTNUM)"),
];

/// Grafana's "schemas on the search_path" subquery (its table list and column list): a
/// `generate_series` over array bounds joined with `string_to_array(...) s` as a table, which
/// DataFusion cannot plan; the same schemas come from `unnest`. (datafusion-pg-catalog
/// replaces it with `''`, which matches no schema.)
const GRAFANA_SEARCH_PATH: &str = r#"SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s"#;
const SEARCH_PATH_SCHEMAS: &str = "SELECT trim(schema_name) FROM unnest(string_to_array(current_setting('search_path'), ',')) AS path(schema_name)";

/// `sql` with the known tool queries rewritten.
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(sql);
    if out.contains("information_schema._pg_expandarray(i.indkey)") {
        let mut s = out.into_owned();
        for (from, to) in PGJDBC_PRIMARY_KEYS {
            s = s.replace(from, to);
        }
        out = Cow::Owned(s);
    }
    if out.contains("string_to_array(current_setting('search_path')") {
        if let Some(s) = replace_tokens(&out, GRAFANA_SEARCH_PATH, SEARCH_PATH_SCHEMAS) {
            out = Cow::Owned(s);
        }
    }
    if out.contains("'::regproc") {
        out = Cow::Owned(regproc_literals(&out));
    }
    out
}

/// `'pg_catalog.array_in'::regproc` as the function's name, `'array_in'`: what DBeaver (via
/// pgjdbc's type cache) compares `pg_type.typinput` with, which the catalog holds as a name.
fn regproc_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(cast) = rest.find("'::regproc") {
        let (before, after) = rest.split_at(cast);
        match before.rfind('\'') {
            Some(open) => {
                let name = &before[open + 1..];
                out.push_str(&before[..open]);
                out.push('\'');
                out.push_str(name.rsplit('.').next().unwrap_or(name));
                out.push('\'');
            }
            None => out.push_str(before),
        }
        rest = &after["'::regproc".len()..];
    }
    out.push_str(rest);
    out
}

/// `sql` with the first occurrence of `from` replaced by `to`, comparing tokens (whitespace
/// ignored), as sent by tools that indent differently across versions.
fn replace_tokens(sql: &str, from: &str, to: &str) -> Option<String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().ok()?;
    let pattern: Vec<Token> =
        Tokenizer::new(&dialect, from).tokenize().ok()?.into_iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let significant: Vec<usize> = (0..tokens.len()).filter(|&i| !matches!(tokens[i], Token::Whitespace(_))).collect();
    let start = (0..significant.len()).find(|&s| {
        significant.len() - s >= pattern.len() && pattern.iter().enumerate().all(|(k, p)| &tokens[significant[s + k]] == p)
    })?;
    let (first, last) = (significant[start], significant[start + pattern.len() - 1]);
    let mut out: String = tokens[..first].iter().map(Token::to_string).collect();
    out.push_str(to);
    out.extend(tokens[last + 1..].iter().map(Token::to_string));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regproc_literal_becomes_the_name() {
        assert_eq!(regproc_literals("SELECT typinput='pg_catalog.array_in'::regproc AS a"), "SELECT typinput='array_in' AS a");
    }

    #[test]
    fn token_replacement_ignores_whitespace() {
        let sql = "SELECT x FROM t WHERE a IN (SELECT\n  1   FROM u) ORDER BY 1";
        assert_eq!(replace_tokens(sql, "SELECT 1 FROM u", "SELECT 2").as_deref(), Some("SELECT x FROM t WHERE a IN (SELECT 2) ORDER BY 1"));
        assert_eq!(replace_tokens(sql, "SELECT 3", "x"), None);
    }
}

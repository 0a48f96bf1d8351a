//! The SQL front-door harness, shared by the `sql_front_door` fuzz target and the corpus
//! replay: nowdb's text rewrites (SHOW MODELS, WATERMARK FOR, CREATE USER), the
//! model-statement split and parser, and the PostgreSQL parser with nowdb's rewrites.

use nowdb_server::dialect::SqlFrontEnd;
use nowdb_server::{extensions, model_sql};

/// Runs `data` (if UTF-8) through the front door.
pub fn run(data: &[u8]) {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    static FRONT: std::sync::OnceLock<SqlFrontEnd> = std::sync::OnceLock::new();
    let front = FRONT.get_or_init(SqlFrontEnd::new);
    let sql = extensions::rewrite(sql);
    match model_sql::split(&sql) {
        Some(pieces) => {
            for piece in pieces {
                match piece {
                    model_sql::Piece::Model(text) => drop(model_sql::parse(text)),
                    model_sql::Piece::Sink(text) => drop(nowdb_server::sink_sql::parse(text)),
                    model_sql::Piece::Sql(text) => drop(front.parse(text)),
                }
            }
        }
        None => drop(front.parse(&sql)),
    }
}

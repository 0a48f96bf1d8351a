//! The SQL front door: nowdb's text rewrites (SHOW MODELS, WATERMARK FOR, CREATE USER), the
//! model-statement split and parser, and the PostgreSQL parser with nowdb's rewrites.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nowdb_server::dialect::SqlFrontEnd;
use nowdb_server::{extensions, model_sql};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let sql = extensions::rewrite(sql);
    let front = SqlFrontEnd::new();
    match model_sql::split(&sql) {
        Some(pieces) => {
            for piece in pieces {
                match piece {
                    model_sql::Piece::Model(text) => {
                        let _ = model_sql::parse(text);
                    }
                    model_sql::Piece::Sql(text) => {
                        let _ = front.parse(text);
                    }
                }
            }
        }
        None => {
            let _ = front.parse(&sql);
        }
    }
});

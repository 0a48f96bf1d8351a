//! # nowdb-server
//!
//! The `nowdb` binary's library: configuration, the Postgres wire protocol (pgwire handlers),
//! sessions with `SET`/`SHOW`, statement dispatch (DDL, DML, COPY, queries), Kafka sources and
//! sinks ([`kafka`], [`sink_sql`]: more ways in and out, like COPY), and the single place where
//! errors become SQLSTATEs ([`error`]).
//!
//! It owns no storage format and no table semantics: those live in the catalog and storage
//! crates, which it drives.

pub mod auth;
pub mod backup;
pub mod config;
pub mod conn;
pub mod copy;
pub mod ddl;
pub mod dialect;
pub mod dml;
pub mod encode;
pub mod engine;
pub mod error;
pub mod extensions;
pub mod framing;
pub mod kafka;
pub mod limits;
pub mod metrics;
pub mod model_sql;
pub mod naming;
pub mod paths;
pub mod privileges;
pub mod pgtext;
pub mod roles_sql;
pub mod server;
pub mod session;
pub mod session_sql;
pub mod settings;
pub mod sink_sql;
pub mod statement;
pub mod system;
pub mod temporal;
pub mod tool_queries;
pub mod wire;

pub use config::Config;
pub use engine::Engine;

/// The PostgreSQL version nowdb reports (`server_version`).
pub const SERVER_VERSION: &str = nowdb_catalog::pg::PG_VERSION;

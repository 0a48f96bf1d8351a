//! End-to-end tests: every test talks to a real `nowdb` process over the Postgres protocol.

mod abuse;
mod clients;
mod compat;
mod crash;
mod durability;
mod errors;
mod fuzz_replay;
mod history;
mod kafka;
mod models;
mod operations;
mod protocol;
mod security;
mod slt;
mod sqlsmith;
mod views;

//! Per-session run-time parameters: `SET`, `SHOW`, `RESET`, and what the startup reports.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{NowError, NowResult};

/// Parameters Postgres reports to the client (ParameterStatus) whenever they change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "search_path",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// Known parameters and their defaults: `(canonical name, default, description)`.
const DEFAULTS: &[(&str, &str, &str)] = &[
    ("application_name", "", "Sets the application name to be reported in statistics and logs."),
    ("bytea_output", "hex", "Sets the output format for bytea."),
    ("client_encoding", "UTF8", "Sets the client's character set encoding."),
    ("client_min_messages", "notice", "Sets the message levels that are sent to the client."),
    ("DateStyle", "ISO, MDY", "Sets the display format for date and time values."),
    ("default_table_access_method", "heap", "Sets the default table access method for new tables."),
    ("default_transaction_isolation", "read committed", "Sets the transaction isolation level of each new transaction."),
    ("default_transaction_read_only", "off", "Sets the default read-only status of new transactions."),
    ("extra_float_digits", "1", "Sets the number of digits displayed for floating-point values."),
    ("in_hot_standby", "off", "Shows whether hot standby is currently active."),
    ("integer_datetimes", "on", "Shows whether datetimes are integer based."),
    ("IntervalStyle", "postgres", "Sets the display format for interval values."),
    ("is_superuser", "on", "Shows whether the current user is a superuser."),
    ("lc_messages", "C", "Sets the language in which messages are displayed."),
    ("lock_timeout", "0", "Sets the maximum allowed duration of any wait for a lock."),
    ("max_identifier_length", "63", "Shows the maximum identifier length."),
    ("search_path", "\"$user\", public", "Sets the schema search order for names that are not schema-qualified."),
    ("server_encoding", "UTF8", "Shows the server (database) character set encoding."),
    ("server_version", crate::SERVER_VERSION, "Shows the server version."),
    ("server_version_num", "150000", "Shows the server version as an integer."),
    ("session_authorization", "nowdb", "Sets the session user name."),
    ("standard_conforming_strings", "on", "Causes '...' strings to treat backslashes literally."),
    ("statement_timeout", "0", "Sets the maximum allowed duration of any statement."),
    ("idle_in_transaction_session_timeout", "0", "Sets the maximum allowed idle time between queries, when in a transaction."),
    ("TimeZone", "UTC", "Sets the time zone for displaying and interpreting time stamps."),
    ("transaction_isolation", "read committed", "Sets the current transaction's isolation level."),
    ("transaction_read_only", "off", "Sets the current transaction's read-only status."),
    ("synchronous_commit", "on", "Sets the current transaction's synchronization level."),
    ("jit", "off", "Allow JIT compilation."),
    ("row_security", "on", "Enable row security."),
];

/// The parameters of one session.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            values: DEFAULTS.iter().map(|(k, v, _)| (k.to_ascii_lowercase(), v.to_string())).collect(),
        }
    }
}

/// The canonical spelling of a parameter name (`timezone` -> `TimeZone`), if known.
pub fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    DEFAULTS.iter().find(|(k, _, _)| k.to_ascii_lowercase() == lower).map(|(k, _, _)| *k)
}

impl Settings {
    /// Applies `SET name = value`; returns the canonical name.
    pub fn set(&mut self, name: &str, value: &str) -> NowResult<&'static str> {
        let Some(canon) = canonical(name) else {
            return Err(unrecognized(name));
        };
        if matches!(canon, "server_version" | "server_version_num" | "server_encoding" | "integer_datetimes" | "max_identifier_length" | "in_hot_standby" | "is_superuser") {
            return Err(NowError::coded("55P02", format!("parameter \"{canon}\" cannot be changed")));
        }
        let value = match canon {
            "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
                parse_duration_ms(value)?.to_string()
            }
            "client_encoding" => {
                let v = value.to_ascii_uppercase().replace(['-', '_'], "");
                if v != "UTF8" && v != "UNICODE" {
                    return Err(NowError::coded("0A000", format!("encoding \"{value}\" is not supported: nowdb speaks UTF8")));
                }
                "UTF8".to_string()
            }
            _ => value.to_string(),
        };
        self.values.insert(canon.to_ascii_lowercase(), value);
        Ok(canon)
    }

    /// Restores a parameter's default (`RESET name`).
    pub fn reset(&mut self, name: &str) -> NowResult<&'static str> {
        let canon = canonical(name).ok_or_else(|| unrecognized(name))?;
        let default = DEFAULTS.iter().find(|(k, _, _)| *k == canon).map(|(_, v, _)| *v).unwrap_or("");
        self.values.insert(canon.to_ascii_lowercase(), default.to_string());
        Ok(canon)
    }

    /// Restores every default (`RESET ALL`).
    pub fn reset_all(&mut self) {
        *self = Settings::default();
    }

    /// `SHOW name`.
    pub fn get(&self, name: &str) -> NowResult<String> {
        let canon = canonical(name).ok_or_else(|| unrecognized(name))?;
        let raw = self.values.get(&canon.to_ascii_lowercase()).cloned().unwrap_or_default();
        Ok(match canon {
            "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
                match raw.parse::<u64>() {
                    Ok(0) | Err(_) => "0".into(),
                    Ok(ms) => format!("{ms}ms"),
                }
            }
            _ => raw,
        })
    }

    /// `SHOW ALL`: (name, setting, description).
    pub fn all(&self) -> Vec<(String, String, String)> {
        DEFAULTS
            .iter()
            .map(|(k, _, d)| (k.to_string(), self.get(k).unwrap_or_default(), d.to_string()))
            .collect()
    }

    /// The statement timeout, if set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let ms: u64 = self.values.get("statement_timeout")?.parse().ok()?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

fn unrecognized(name: &str) -> NowError {
    NowError::coded("42704", format!("unrecognized configuration parameter \"{name}\""))
}

/// Parses a Postgres duration setting (`5000`, `'5s'`, `'100ms'`, `'1min'`) into milliseconds.
fn parse_duration_ms(value: &str) -> NowResult<u64> {
    let v = value.trim().trim_matches('\'').trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| invalid_duration(value))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid_duration(value)),
    };
    n.checked_mul(factor).ok_or_else(|| invalid_duration(value))
}

fn invalid_duration(value: &str) -> NowError {
    NowError::InvalidValue {
        code: "22023",
        message: format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
        detail: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_reset() {
        let mut s = Settings::default();
        assert_eq!(s.set("TIMEZONE", "Europe/Paris").unwrap(), "TimeZone");
        assert_eq!(s.get("timezone").unwrap(), "Europe/Paris");
        s.set("statement_timeout", "5s").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "5000ms");
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        s.reset("statement_timeout").unwrap();
        assert_eq!(s.statement_timeout(), None);
        assert!(s.set("no_such_thing", "1").is_err());
        assert!(s.get("no_such_thing").is_err());
    }
}

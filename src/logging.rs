//! A small `log` backend: one JSON object per line when `LOG_JSON` is true
//! (`{"timestamp","level","logger","message"}`, like the reference), readable
//! lines otherwise. `LOG_LEVEL` (or `DEBUG=1`) sets the level. Lines go to
//! standard error.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    json: bool,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = crate::util::time::now_utc();
        let line = if self.json {
            serde_json::json!({
                "timestamp": ts,
                "level": record.level().as_str(),
                "logger": record.target(),
                "message": record.args().to_string(),
            })
            .to_string()
        } else {
            format!(
                "{ts} {:5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn env_true(name: &str) -> bool {
    std::env::var(name)
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Installs the logger from the environment (`LOG_JSON`, `LOG_LEVEL`, `DEBUG`).
/// Calling it twice is harmless.
pub fn init_from_env() {
    let level = if env_true("DEBUG") {
        LevelFilter::Debug
    } else {
        std::env::var("LOG_LEVEL")
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or(LevelFilter::Info)
    };
    init(env_true("LOG_JSON"), level);
}

/// Installs the logger with explicit settings.
pub fn init(json: bool, level: LevelFilter) {
    if log::set_boxed_logger(Box::new(Logger { json, level })).is_ok() {
        log::set_max_level(level);
    }
}

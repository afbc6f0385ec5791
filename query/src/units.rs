//! How numbers and times are written for people, on the terminal and on
//! the dashboard alike.

use std::time::{Duration, UNIX_EPOCH};

pub fn time(wall_ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(wall_ns)).to_string()
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}K", n as f64 / 1024.0),
        n => n.to_string(),
    }
}

pub fn duration(ns: u64) -> String {
    match ns {
        0 => "-".into(),
        ns if ns >= 1_000_000_000 => format!("{:.2}s", ns as f64 / 1e9),
        ns if ns >= 1_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        ns => format!("{:.0}us", ns as f64 / 1e3),
    }
}

/// Milliseconds with one decimal; "-" when not measured.
pub fn millis(ns: u64) -> String {
    if ns == 0 {
        "-".into()
    } else {
        format!("{:.1}", ns as f64 / 1e6)
    }
}

pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

//! A consumer group's retry policy: how long a message whose consumption failed waits before
//! it is delivered again. The 5.x clients receive it in their settings (Telemetry) and hold
//! the message invisible that long; `max_attempts` of the group bounds the attempts.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Apache RocketMQ's delay levels from 1 s on: what a group gets by default.
pub const DELAY_LEVELS_SECS: [u64; 17] = [
    1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600,
];

/// Longest wait one retry may have: 2 hours, Apache's longest delay level.
const MAX_DELAY_MS: i64 = 2 * 3_600_000;

/// Most steps a customized policy may list (Apache's delay levels are 18).
const MAX_STEPS: usize = 64;

/// Persisted as its text form (`consumer_groups.retry_policy`, empty for the default).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RetryPolicy {
    /// [`DELAY_LEVELS_SECS`]: 1 s, 5 s, 10 s, 30 s, 1 m … 2 h, the last repeating.
    #[default]
    Levels,
    /// Attempt n + 1 waits `min(initial × multiplier^(n-1), max)`.
    Exponential {
        initial_ms: i64,
        max_ms: i64,
        multiplier: f64,
    },
    /// These waits in order, the last repeating.
    Customized(Vec<i64>),
}

impl RetryPolicy {
    /// Parses `levels`, `exponential:INITIAL,MAX,MULTIPLIER` (e.g. `exponential:1s,5m,2`) or
    /// `customized:D1,D2,…` (e.g. `customized:1s,10s,1m`); durations as `500ms`, `10s`, `2m`.
    /// The empty string is the default (`levels`).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::invalid("retry policy", reason);
        let text = text.trim();
        let (kind, args) = text.split_once(':').unwrap_or((text, ""));
        let durations = |args: &str| -> Result<Vec<i64>> {
            args.split(',')
                .map(|d| {
                    let d = d.trim();
                    humantime::parse_duration(d)
                        .map(|d| d.as_millis() as i64)
                        .map_err(|e| invalid(format!("{d:?} is not a duration: {e}")))
                })
                .collect()
        };
        let policy = match kind {
            "" | "levels" | "default" if args.is_empty() => RetryPolicy::Levels,
            "exponential" => {
                let parts: Vec<&str> = args.split(',').collect();
                let [initial, max, multiplier] = parts[..] else {
                    return Err(invalid(format!(
                        "{text:?}: exponential takes INITIAL,MAX,MULTIPLIER (e.g. exponential:1s,5m,2)"
                    )));
                };
                let waits = durations(&format!("{initial},{max}"))?;
                let multiplier: f64 = multiplier
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("multiplier {multiplier:?} is not a number")))?;
                RetryPolicy::Exponential {
                    initial_ms: waits[0],
                    max_ms: waits[1],
                    multiplier,
                }
            }
            "customized" => RetryPolicy::Customized(durations(args)?),
            _ => {
                return Err(invalid(format!(
                    "{text:?}: expected levels, exponential:INITIAL,MAX,MULTIPLIER or customized:D1,D2,…"
                )));
            }
        };
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::invalid("retry policy", reason);
        let in_range = |ms: i64| (1..=MAX_DELAY_MS).contains(&ms);
        match self {
            RetryPolicy::Levels => Ok(()),
            RetryPolicy::Exponential {
                initial_ms,
                max_ms,
                multiplier,
            } => {
                if !in_range(*initial_ms) || !in_range(*max_ms) || initial_ms > max_ms {
                    return Err(invalid(format!(
                        "waits must satisfy 1 ms ≤ initial ({initial_ms} ms) ≤ max ({max_ms} ms) ≤ 2 h"
                    )));
                }
                if !(1.0..=10.0).contains(multiplier) {
                    return Err(invalid(format!("multiplier {multiplier} is not within 1..=10")));
                }
                Ok(())
            }
            RetryPolicy::Customized(waits) => {
                if waits.is_empty() || waits.len() > MAX_STEPS || !waits.iter().all(|w| in_range(*w)) {
                    return Err(invalid(format!(
                        "a customized policy lists 1 to {MAX_STEPS} waits, each within 1 ms..=2 h"
                    )));
                }
                Ok(())
            }
        }
    }

    /// The stored form: empty for the default.
    pub fn stored(&self) -> String {
        match self {
            RetryPolicy::Levels => String::new(),
            other => other.to_string(),
        }
    }

    /// From the stored form.
    pub fn from_stored(text: &str) -> Result<Self> {
        Self::parse(text).map_err(|e| Error::Inconsistent(format!("stored retry policy {text:?}: {e}")))
    }
}

impl fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ms: &i64| humantime::format_duration(Duration::from_millis(*ms as u64)).to_string();
        match self {
            RetryPolicy::Levels => f.write_str("levels"),
            RetryPolicy::Exponential {
                initial_ms,
                max_ms,
                multiplier,
            } => write!(f, "exponential:{},{},{multiplier}", d(initial_ms), d(max_ms)),
            RetryPolicy::Customized(waits) => {
                let waits: Vec<String> = waits.iter().map(d).collect();
                write!(f, "customized:{}", waits.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for text in [
            "levels",
            "exponential:1s,5m,2",
            "exponential:500ms,1m,1.5",
            "customized:1s,10s,1m",
        ] {
            let policy = RetryPolicy::parse(text).unwrap();
            assert_eq!(policy.to_string(), text);
            assert_eq!(RetryPolicy::from_stored(&policy.stored()).unwrap(), policy);
        }
        assert_eq!(RetryPolicy::parse("").unwrap(), RetryPolicy::Levels);
        assert_eq!(RetryPolicy::Levels.stored(), "");
    }

    #[test]
    fn bad_policies_are_refused() {
        for text in [
            "exponential:1s,5m",
            "exponential:5m,1s,2",
            "exponential:1s,5m,0.5",
            "exponential:1s,3h,2",
            "customized:",
            "customized:1s,soon",
            "linear:1s",
            "levels:1s",
        ] {
            assert!(RetryPolicy::parse(text).is_err(), "{text}");
        }
    }
}

//! Grayscale lanes of a consumer group (docs/semantics.md, "Grayscale lanes"): consumers join
//! lane `L` of group `G` by naming the group `G%L`; a message joins lane `L` with the user
//! property `x-lane: L`. Each lane has progress of its own, keyed by the name `G%L` where a
//! group name stands in cursors and in-flight rows.

use std::time::Duration;

/// The user property that puts a message in a lane.
pub const PROPERTY: &str = "x-lane";

/// Separates a group from its lane in the name consumers give (`G%L`).
pub const SEPARATOR: char = '%';

/// A consumer group name as clients write it, split into the group and the lane: `G%L` is
/// lane `L` of `G`. A name starting with `%` (the broker's own) never splits.
pub fn split(name: &str) -> (&str, Option<&str>) {
    if name.starts_with(SEPARATOR) {
        return (name, None);
    }
    match name.split_once(SEPARATOR) {
        Some((group, lane)) => (group, Some(lane)),
        None => (name, None),
    }
}

/// The group a name written by clients belongs to (itself, or the group of its lane).
pub fn group_of(name: &str) -> &str {
    split(name).0
}

/// The progress key (and the consumers' group name) of lane `lane` of `group`.
pub fn progress(group: &str, lane: &str) -> String {
    format!("{group}{SEPARATOR}{lane}")
}

/// A lane whose consumers have received from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub topic: String,
    pub name: String,
    /// When a consumer of the lane last received from the topic (a long poll counts until
    /// it ends), to within [`SEEN_REFRESH`].
    pub last_seen_ms: i64,
}

/// Most lanes a consumer group has (a lane counts once, on however many topics). Each lane
/// is a row per topic and progress of its own, and every receive of the group's own
/// consumers looks at each lane it has taken over: 32 keeps that one index read of 32 rows.
/// Canary releases use a handful.
pub const MAX_PER_GROUP: usize = 32;

/// A lane no consumer has received from for this long is forgotten with its progress (the
/// compactor's maintenance): its name is free again, and a group's lane count does not grow
/// with every canary ever released. Its messages were the group's own consumers' since the
/// group's fallback time (unless it waits), so nothing is stranded.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a node tells the coordinator a lane's consumers are still receiving: a lane is
/// online while heard of within its group's fallback time, which should be a few times this.
pub const SEEN_REFRESH: Duration = Duration::from_secs(5);

/// What a group's own consumers do with the messages of a lane nobody consumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Once no consumer of the lane was heard of for this long, the group's consumers take
    /// its messages.
    After(Duration),
    /// The lane's messages wait for its consumers.
    Wait,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback::After(Duration::from_secs(30))
    }
}

impl Fallback {
    /// Stored as milliseconds, −1 for [`Fallback::Wait`].
    pub fn stored(self) -> i64 {
        match self {
            Fallback::After(d) => d.as_millis().min(i64::MAX as u128) as i64,
            Fallback::Wait => -1,
        }
    }

    pub fn from_stored(ms: i64) -> Self {
        match u64::try_from(ms) {
            Ok(ms) => Fallback::After(Duration::from_millis(ms)),
            Err(_) => Fallback::Wait,
        }
    }

    /// Whether the group's consumers take over `lane` at `now_ms`.
    pub fn taken_over(self, lane: &Lane, now_ms: i64) -> bool {
        match self {
            Fallback::After(d) => now_ms.saturating_sub(lane.last_seen_ms) >= d.as_millis() as i64,
            Fallback::Wait => false,
        }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fallback::After(d) if d.subsec_millis() == 0 => write!(f, "{}s", d.as_secs()),
            Fallback::After(d) => write!(f, "{}ms", d.as_millis()),
            Fallback::Wait => f.write_str("wait"),
        }
    }
}

impl Fallback {
    /// A setting as the admin API and export files write it: empty is the default.
    pub fn parse_setting(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Ok(Fallback::default()),
            text => text.parse(),
        }
    }
}

impl std::str::FromStr for Fallback {
    type Err = String;

    /// `wait`, or a duration in seconds (`30s`, `30`) or milliseconds (`500ms`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("wait") {
            return Ok(Fallback::Wait);
        }
        let (digits, scale) = match s.strip_suffix("ms") {
            Some(d) => (d, 1),
            None => (s.strip_suffix('s').unwrap_or(s), 1000),
        };
        digits
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .map(|ms| Fallback::After(Duration::from_millis(ms)))
            .ok_or_else(|| format!("{s:?} is neither `wait` nor a duration such as 30s or 500ms"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_first_inner_separator() {
        assert_eq!(split("billing%canary"), ("billing", Some("canary")));
        assert_eq!(split("billing"), ("billing", None));
        assert_eq!(split("%RETRY%billing"), ("%RETRY%billing", None));
        assert_eq!(split("%billing"), ("%billing", None));
        assert_eq!(split("a%b%c"), ("a", Some("b%c")));
        assert_eq!(group_of("billing%canary"), "billing");
        assert_eq!(progress("billing", "canary"), "billing%canary");
    }

    #[test]
    fn fallback_parses_stores_and_decides() {
        assert_eq!("wait".parse(), Ok(Fallback::Wait));
        assert_eq!("30s".parse(), Ok(Fallback::After(Duration::from_secs(30))));
        assert_eq!("45".parse(), Ok(Fallback::After(Duration::from_secs(45))));
        assert_eq!("500ms".parse(), Ok(Fallback::After(Duration::from_millis(500))));
        assert!("soon".parse::<Fallback>().is_err());
        assert_eq!(Fallback::parse_setting(" "), Ok(Fallback::default()));
        assert!("99999999999999999999s".parse::<Fallback>().is_err());
        for f in [
            Fallback::Wait,
            Fallback::default(),
            Fallback::After(Duration::from_millis(1500)),
        ] {
            assert_eq!(Fallback::from_stored(f.stored()), f);
            assert_eq!(f.to_string().parse(), Ok(f), "{f}");
        }
        assert_eq!(Fallback::default().to_string(), "30s");
        let lane = Lane {
            topic: "orders".into(),
            name: "canary".into(),
            last_seen_ms: 1_000,
        };
        assert!(!Fallback::default().taken_over(&lane, 30_999));
        assert!(Fallback::default().taken_over(&lane, 31_000));
        assert!(!Fallback::Wait.taken_over(&lane, i64::MAX));
    }
}

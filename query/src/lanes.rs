//! Grayscale lanes on the consume path: which messages each progress of a group takes by
//! their lane (`x-lane`), and which lanes the group's own consumers take over.

use strata_meta::lane::{self, Fallback, Lane};
use strata_meta::model::Subscription;
use strata_proto::wal::WalRecord;

use crate::filter::Filter;

/// Which messages of a topic one progress takes, by lane.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// A group with no lane on the topic: every message.
    All,
    /// The group's own progress: messages of none of these lanes (those with consumers on
    /// the topic).
    Base(Vec<String>),
    /// A lane's progress: its messages only.
    Lane(String),
}

impl Route {
    /// The group's own route on `topic`, given the group's lanes.
    pub(crate) fn base(lanes: &[Lane], topic: &str) -> Self {
        let names: Vec<String> = lanes
            .iter()
            .filter(|l| l.topic == topic)
            .map(|l| l.name.clone())
            .collect();
        if names.is_empty() {
            Route::All
        } else {
            Route::Base(names)
        }
    }

    fn admits(&self, record: &WalRecord) -> bool {
        let lane = || record.user_properties.get(lane::PROPERTY);
        match self {
            Route::All => true,
            Route::Base(names) => lane().is_none_or(|name| !names.contains(name)),
            Route::Lane(name) => lane() == Some(name),
        }
    }
}

/// What a pop of one progress takes: the messages its filter matches on its route.
pub(crate) struct Select<'a> {
    pub filter: &'a Filter,
    pub route: Route,
}

impl<'a> Select<'a> {
    /// Every message the filter matches (no lanes: lite topics).
    pub(crate) fn every_lane(filter: &'a Filter) -> Self {
        Self {
            filter,
            route: Route::All,
        }
    }

    pub(crate) fn matches(&self, record: &WalRecord) -> bool {
        self.filter.matches(record) && self.route.admits(record)
    }

    /// Whether every message is taken (so the first offsets are the answer: read no further).
    pub(crate) fn takes_all(&self) -> bool {
        matches!((self.filter, &self.route), (Filter::All, Route::All))
    }
}

/// The lanes of the group `base` names that its consumers take over on its topic at `now_ms`
/// (no receive from the lane for the fallback time): each lane's progress with its route.
pub(crate) fn taken_over(
    base: &Subscription,
    lanes: &[Lane],
    fallback: Fallback,
    now_ms: i64,
) -> Vec<(Subscription, Route)> {
    lanes
        .iter()
        .filter(|l| l.topic == base.topic && fallback.taken_over(l, now_ms))
        .map(|l| {
            let sub = Subscription {
                group: lane::progress(&base.group, &l.name),
                ..base.clone()
            };
            (sub, Route::Lane(l.name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(lane: Option<&str>) -> WalRecord {
        let mut r = WalRecord::default();
        if let Some(l) = lane {
            r.user_properties.insert(lane::PROPERTY.into(), l.into());
        }
        r
    }

    fn lane(topic: &str, name: &str, last_seen_ms: i64) -> Lane {
        Lane {
            topic: topic.into(),
            name: name.into(),
            last_seen_ms,
        }
    }

    #[test]
    fn each_progress_takes_its_lane() {
        let lanes = [lane("orders", "canary", 0)];
        let base = Route::base(&lanes, "orders");
        let canary = Route::Lane("canary".into());
        for (message, to_base, to_canary) in [
            (None, true, false),
            (Some("canary"), false, true),
            (Some("blue"), true, false),
        ] {
            let r = record(message);
            assert_eq!(base.admits(&r), to_base, "{message:?} to the group");
            assert_eq!(canary.admits(&r), to_canary, "{message:?} to the canary");
        }
        // On a topic where the lane has no consumers its messages go to the group.
        assert!(matches!(Route::base(&lanes, "payments"), Route::All));
        let all = Filter::All;
        assert!(Select::every_lane(&all).takes_all());
        assert!(
            !Select {
                filter: &all,
                route: canary
            }
            .takes_all()
        );
    }

    #[test]
    fn lanes_unheard_of_for_the_fallback_time_are_taken_over() {
        let base = Subscription {
            tenant: "t".into(),
            group: "billing".into(),
            topic: "orders".into(),
        };
        let lanes = [
            lane("orders", "canary", 1_000),
            lane("orders", "blue", 20_000),
            lane("payments", "canary", 0),
        ];
        let after = Fallback::After(Duration::from_secs(10));
        let subs: Vec<String> = taken_over(&base, &lanes, after, 15_000)
            .into_iter()
            .map(|(s, _)| s.group)
            .collect();
        assert_eq!(subs, ["billing%canary"]);
        assert!(taken_over(&base, &lanes, Fallback::Wait, i64::MAX).is_empty());
    }
}

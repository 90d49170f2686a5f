//! What happened to the accounts, kept in memory by whoever runs the session (the tray agent,
//! `astran-creds daemon`): logins, renewals, keep-alives, failures with their reason in words,
//! logouts, permanent-key changes, notices sent. A bounded ring, never a file: the status
//! window and `astran-creds events` read it over the control socket.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use time::OffsetDateTime;

/// How many events are kept (all accounts together); the oldest go first.
pub const CAPACITY: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Login,
    Renewal,
    KeepAlive,
    Logout,
    /// A login, renewal, keep-alive or key change that failed.
    Failure,
    /// A notification sent to the user.
    Notice,
    /// A permanent key created, rotated or deleted.
    Key,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub account: String,
    pub kind: EventKind,
    /// What happened, in words (a failure's reason included).
    pub words: String,
}

/// The ring.
#[derive(Debug, Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
}

impl EventLog {
    pub fn push(&self, e: Event) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(e);
    }

    /// The last `limit` events (of `account`, or of all), newest first.
    pub fn recent(&self, account: Option<&str>, limit: usize) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .rev()
            .filter(|e| account.is_none_or(|a| e.account == a))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded_and_reads_newest_first_by_account() {
        let log = EventLog::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..(CAPACITY + 10) {
            log.push(Event {
                at: t0 + time::Duration::seconds(i as i64),
                account: if i % 2 == 0 { "a" } else { "b" }.into(),
                kind: EventKind::Renewal,
                words: format!("{i}"),
            });
        }
        assert_eq!(log.len(), CAPACITY);
        let all = log.recent(None, 3);
        assert_eq!(
            all.iter().map(|e| e.words.as_str()).collect::<Vec<_>>(),
            [
                (CAPACITY + 9).to_string(),
                (CAPACITY + 8).to_string(),
                (CAPACITY + 7).to_string()
            ]
        );
        let a = log.recent(Some("a"), 1000);
        assert_eq!(a.len(), CAPACITY / 2);
        assert!(a.iter().all(|e| e.account == "a"));
        assert!(a.windows(2).all(|w| w[0].at > w[1].at));
        // the oldest went first
        assert_eq!(log.recent(None, CAPACITY).last().unwrap().words, "10");
    }
}

//! Time source. The scheduler reads the wall clock through [`Clock`] so tests can jump it
//! (laptop sleep, clock changes) and sleeps by wall-clock deadline, re-checking after each
//! wake: a monotonic timer does not advance while the machine is suspended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Longest single monotonic sleep where no wall-clock timer is available (not Linux, or
/// `timerfd` refused): after a suspend the process notices the new time at most this late.
pub const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
    /// Resolves once the wall clock has reached `deadline` (or a little later).
    fn wait_until(&self, deadline: OffsetDateTime) -> BoxFuture<'_>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn wait_until(&self, deadline: OffsetDateTime) -> BoxFuture<'_> {
        Box::pin(async move {
            loop {
                let left = deadline - OffsetDateTime::now_utc();
                if left <= time::Duration::ZERO {
                    return;
                }
                // One wall-clock timer to the deadline (fires after a suspend, and early when
                // the clock is set); the loop re-checks the time either way.
                #[cfg(target_os = "linux")]
                if realtime::wait(deadline).await.is_ok() {
                    continue;
                }
                let left = Duration::try_from(left).unwrap_or(MAX_SLEEP_SLICE);
                tokio::time::sleep(left.min(MAX_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock for tests: starts at a given time, moves only when told to.
/// A `timerfd` on `CLOCK_REALTIME` armed for an absolute deadline with
/// `TFD_TIMER_CANCEL_ON_SET`: no wakeup before the deadline, it fires on time after a
/// suspend (the realtime clock counts the time asleep), and it is cancelled when someone
/// sets the clock, so the caller re-plans at once.
#[cfg(target_os = "linux")]
mod realtime {
    use rustix::io::Errno;
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    use time::OffsetDateTime;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// Ok when the deadline passed or the clock was set; Err when no timerfd can be used.
    pub async fn wait(deadline: OffsetDateTime) -> std::io::Result<()> {
        let fd = timerfd_create(
            TimerfdClockId::Realtime,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        let ns = deadline.unix_timestamp_nanos();
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: ns.div_euclid(1_000_000_000) as _,
                tv_nsec: ns.rem_euclid(1_000_000_000) as _,
            },
        };
        timerfd_settime(
            &fd,
            TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            &spec,
        )?;
        // SAFETY: the OwnedFd moves into the AsyncFd and keeps this one fd open for as long
        // as the AsyncFd holds it (tokio asks that of the caller).
        let afd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        loop {
            let mut ready = afd.readable().await?;
            let mut expirations = [0u8; 8];
            match rustix::io::read(afd.get_ref(), &mut expirations) {
                Ok(8) => return Ok(()),
                Ok(_) => ready.clear_ready(),
                Err(Errno::CANCELED) => return Ok(()), // the clock was set
                Err(Errno::AGAIN) | Err(Errno::INTR) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
    moved: Notify,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
            moved: Notify::new(),
        }
    }

    /// Move the clock (forwards or backwards) and wake every waiter to re-check.
    pub fn advance(&self, by: time::Duration) {
        *self.now.lock().unwrap() += by;
        self.moved.notify_waiters();
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap() = to;
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }

    fn wait_until(&self, deadline: OffsetDateTime) -> BoxFuture<'_> {
        Box::pin(async move {
            loop {
                let notified = self.moved.notified();
                if self.now() >= deadline {
                    return;
                }
                notified.await;
            }
        })
    }
}

/// RFC 3339 in UTC with whole seconds, as STS writes it: `2026-11-29T10:33:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_roundtrip_whole_and_fractional_seconds() {
        let t = parse_rfc3339("2024-08-22T08:32:56+00:00").unwrap();
        assert_eq!(rfc3339(t), "2024-08-22T08:32:56Z");
        let f = parse_rfc3339("2024-08-22T08:32:56.123456Z").unwrap();
        assert_eq!(rfc3339(f), "2024-08-22T08:32:56Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[tokio::test]
    async fn system_clock_wakes_at_the_wall_clock_deadline() {
        for ms in [-50i64, 0, 120, 400] {
            let start = std::time::Instant::now();
            let deadline = OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
            SystemClock.wait_until(deadline).await;
            assert!(OffsetDateTime::now_utc() >= deadline, "{ms}");
            let took = start.elapsed().as_millis() as i64;
            assert!(
                took >= ms.max(0) - 5 && took < ms.max(0) + 150,
                "{ms} ms took {took}"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn realtime_timer_fires_at_the_deadline() {
        let deadline = OffsetDateTime::now_utc() + time::Duration::milliseconds(200);
        realtime::wait(deadline).await.unwrap();
        assert!(OffsetDateTime::now_utc() >= deadline);
    }

    #[tokio::test]
    async fn manual_clock_wakes_waiters_on_jump() {
        let start = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let c2 = clock.clone();
        let waiter = tokio::spawn(async move {
            c2.wait_until(start + time::Duration::hours(1)).await;
        });
        tokio::task::yield_now().await;
        clock.advance(time::Duration::minutes(30));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance(time::Duration::hours(2));
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("waiter woke")
            .unwrap();
    }
}

//! The tray's status line in the user's language ("3 waiting · 1 conflict ·
//! last sync 2 min ago" / "3 venter · 1 konflikt · sist synkronisert for
//! 2 min siden"). The same rules as the engine's English `Status::summary`
//! (which the CLI keeps using): it says synced only when that is the whole
//! truth — idle, not paused, nothing waiting, failed or in conflict.

use fluent_bundle::FluentValue;

use crate::engine_bridge::{Problem, Status, SyncState};
use crate::i18n::{tr, tr_args, Locale};

const SEPARATOR: &str = " · ";

pub fn status_line(s: &Status, now_ms: i64, locale: Locale) -> String {
    let count = |id: &str, n: u64| tr_args(locale, id, &[("count", FluentValue::from(n))]);
    let mut parts = Vec::new();
    let state = match s.state {
        SyncState::NeedsSignIn => Some("tray-state-sign-in-needed"),
        SyncState::Offline => Some("tray-state-offline"),
        SyncState::Paused => Some("tray-state-paused"),
        SyncState::Stalled => Some("tray-state-stalled"),
        SyncState::Error => Some("tray-state-error"),
        SyncState::Syncing => Some("tray-state-syncing"),
        SyncState::Idle => None,
    };
    // What went wrong, in plain words (the error's own text is for the
    // window's details): instead of "error", after "stalled" or "offline"
    // unless it only repeats them.
    let problem = match (s.state, s.problem) {
        (SyncState::Error | SyncState::Stalled | SyncState::Offline, Some(p))
            if !(s.state == SyncState::Offline && p == Problem::Unreachable) =>
        {
            Some(p)
        }
        _ => None,
    };
    match (s.state, problem) {
        (SyncState::Error, Some(_)) => {}
        _ => {
            if let Some(id) = state {
                parts.push(tr(locale, id));
            }
        }
    }
    if let Some(p) = problem {
        parts.push(tr(locale, &format!("tray-problem-{}", p.as_str())));
    }
    // After a failure: when the engine tries again, as a clock time.
    if matches!(s.state, SyncState::Offline | SyncState::Error | SyncState::Stalled) {
        if let Some(at) = s.next_retry_at.filter(|at| *at > now_ms) {
            parts.push(tr_args(locale, "tray-next-try", &[("time", FluentValue::from(clock(at, locale)))]));
        }
    }
    let waiting = s.pending + s.in_flight;
    if waiting > 0 {
        parts.push(count("tray-waiting", waiting));
    }
    if s.failed > 0 {
        parts.push(count("tray-failed", s.failed));
    }
    if s.conflicts > 0 {
        parts.push(count("tray-conflicts", s.conflicts));
    }
    let settled = s.state == SyncState::Idle && !s.paused && parts.is_empty();
    match s.last_sync_at {
        Some(at) => {
            let id = if settled { "tray-synced" } else { "tray-last-sync" };
            parts.push(tr_args(locale, id, &[("ago", FluentValue::from(ago(now_ms - at, locale)))]));
        }
        None => parts.push(tr(locale, "tray-never-synced")),
    }
    parts.join(SEPARATOR)
}

/// "just now", "5 s ago", "2 min ago", "3 h ago", "2 d ago" (English);
/// "akkurat nå", "for 2 min siden", "for 3 timer siden" (Norwegian).
pub fn ago(ms: i64, locale: Locale) -> String {
    let s = ms.max(0) / 1000;
    let (id, n) = if s < 5 {
        return tr(locale, "tray-ago-now");
    } else if s < 60 {
        ("tray-ago-seconds", s)
    } else if s < 3600 {
        ("tray-ago-minutes", s / 60)
    } else if s < 86_400 {
        ("tray-ago-hours", s / 3600)
    } else {
        ("tray-ago-days", s / 86_400)
    };
    tr_args(locale, id, &[("n", FluentValue::from(n))])
}

/// A moment (ms since the epoch) as a local clock time: "14:05" in
/// Norwegian (24-hour), "2:05 PM" in English.
pub fn clock(at_ms: i64, locale: Locale) -> String {
    use chrono::{Local, TimeZone, Timelike};
    match Local.timestamp_millis_opt(at_ms).single() {
        Some(t) => clock_text(t.hour(), t.minute(), locale),
        None => String::from("?"),
    }
}

fn clock_text(hour: u32, minute: u32, locale: Locale) -> String {
    match locale {
        Locale::Nb => format!("{hour:02}:{minute:02}"),
        Locale::En => {
            let h12 = if hour.is_multiple_of(12) { 12 } else { hour % 12 };
            let am_pm = if hour < 12 { "AM" } else { "PM" };
            format!("{h12}:{minute:02} {am_pm}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tray::tests::status;

    #[test]
    fn english_says_what_the_engine_says() {
        let mut s = status(SyncState::Idle);
        s.pending = 3;
        s.conflicts = 1;
        s.last_sync_at = Some(0);
        // The engine's own line is the reference for English.
        assert_eq!(status_line(&s, 120_000, Locale::En), s.summary(120_000));
        assert_eq!(status_line(&s, 120_000, Locale::En), "3 waiting · 1 conflict · last sync 2 min ago");
        for state in [SyncState::Idle, SyncState::Syncing, SyncState::Paused, SyncState::NeedsSignIn] {
            for (pending, failed, conflicts, paused, last) in
                [(0, 0, 0, false, Some(9_000)), (2, 1, 3, true, None), (0, 0, 2, false, Some(0))]
            {
                let mut s = status(state);
                (s.pending, s.failed, s.conflicts, s.paused, s.last_sync_at) =
                    (pending, failed, conflicts, paused, last);
                for now in [10_000, 70_000, 4_000_000, 200_000_000] {
                    assert_eq!(status_line(&s, now, Locale::En), s.summary(now), "{s:?} at {now}");
                }
            }
        }
    }

    #[test]
    fn norwegian_status_line() {
        let mut s = status(SyncState::Idle);
        s.pending = 3;
        s.conflicts = 1;
        s.last_sync_at = Some(0);
        assert_eq!(status_line(&s, 120_000, Locale::Nb), "3 venter · 1 konflikt · sist synkronisert for 2 min siden");
        s.conflicts = 2;
        s.failed = 1;
        s.state = SyncState::Syncing;
        assert_eq!(
            status_line(&s, 120_000, Locale::Nb),
            "synkroniserer · 3 venter · 1 avvist · 2 konflikter · sist synkronisert for 2 min siden"
        );
        let mut idle = status(SyncState::Idle);
        idle.last_sync_at = Some(0);
        assert_eq!(status_line(&idle, 1_000, Locale::Nb), "synkronisert akkurat nå");
        idle.paused = true;
        idle.state = SyncState::Paused;
        assert_eq!(status_line(&idle, 7_300_000, Locale::Nb), "satt på pause · sist synkronisert for 2 timer siden");
        assert_eq!(status_line(&status(SyncState::Offline), 0, Locale::Nb), "frakoblet · aldri synkronisert");
    }

    #[test]
    fn a_problem_is_said_in_plain_words_not_the_error_text() {
        let mut s = status(SyncState::Error);
        s.last_error = Some("HTTP 503 from https://sync.example.org/v1/push: upstream connect error".into());
        s.problem = Some(Problem::ServerError);
        s.pending = 2;
        assert_eq!(status_line(&s, 0, Locale::En), "the server has a problem · 2 waiting · never synced");
        assert_eq!(status_line(&s, 0, Locale::Nb), "serveren har et problem · 2 venter · aldri synkronisert");
        s.state = SyncState::Stalled;
        s.problem = Some(Problem::UntrustedCertificate);
        assert_eq!(
            status_line(&s, 0, Locale::Nb),
            "står fast · serverens sertifikat er ikke til å stole på · 2 venter · aldri synkronisert"
        );
        // Offline because the server cannot be reached says it once.
        s.state = SyncState::Offline;
        s.problem = Some(Problem::Unreachable);
        assert_eq!(status_line(&s, 0, Locale::En), "offline · 2 waiting · never synced");
        // An error without a kind keeps the word "error"; the text never shows.
        s.state = SyncState::Error;
        s.problem = None;
        let line = status_line(&s, 0, Locale::En);
        assert_eq!(line, "error · 2 waiting · never synced");
        // Every kind has words in both languages.
        for p in [
            Problem::Unreachable,
            Problem::ServerError,
            Problem::RateLimited,
            Problem::UntrustedCertificate,
            Problem::SignInNeeded,
            Problem::BadAnswer,
            Problem::Refused,
            Problem::LocalData,
            Problem::Other,
        ] {
            s.problem = Some(p);
            for locale in Locale::ALL {
                let line = status_line(&s, 0, locale);
                assert!(!line.contains("tray-problem"), "{p:?} in {locale:?}: {line}");
                assert!(!line.contains("503"), "{line}");
            }
        }
    }

    #[test]
    fn relative_times_in_both_languages() {
        assert_eq!(ago(2_000, Locale::En), "just now");
        assert_eq!(ago(30_000, Locale::Nb), "for 30 s siden");
        assert_eq!(ago(3_600_000, Locale::Nb), "for 1 time siden");
        assert_eq!(ago(86_400_000, Locale::Nb), "for 1 dag siden");
        assert_eq!(ago(3 * 86_400_000, Locale::Nb), "for 3 dager siden");
        assert_eq!(ago(3 * 86_400_000, Locale::En), "3 d ago");
        assert_eq!(ago(-5, Locale::En), "just now", "a clock step back is not the future");
    }

    #[test]
    fn clock_times_are_24_hour_in_norwegian() {
        assert_eq!(clock_text(14, 5, Locale::Nb), "14:05");
        assert_eq!(clock_text(0, 30, Locale::Nb), "00:30");
        assert_eq!(clock_text(14, 5, Locale::En), "2:05 PM");
        assert_eq!(clock_text(0, 30, Locale::En), "12:30 AM");
        assert_eq!(clock_text(12, 0, Locale::En), "12:00 PM");
    }

    #[test]
    fn the_next_try_is_said_after_a_failure_only() {
        let mut s = status(SyncState::Offline);
        s.next_retry_at = Some(100_000);
        let line = status_line(&s, 40_000, Locale::Nb);
        assert!(line.starts_with("frakoblet · nytt forsøk kl. "), "{line}");
        let hhmm = line.split("kl. ").nth(1).unwrap().split(' ').next().unwrap();
        assert!(hhmm.len() == 5 && hhmm.as_bytes()[2] == b':', "{line}");
        // Past retry times and calm states say nothing about it.
        assert!(!status_line(&s, 200_000, Locale::Nb).contains("forsøk"));
        s.state = SyncState::Idle;
        assert!(!status_line(&s, 40_000, Locale::Nb).contains("forsøk"));
    }
}

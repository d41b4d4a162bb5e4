//! Conflict resolution: what each policy decides, the three-way merge, and
//! building the record a user picked field by field. Pure functions: the
//! engine feeds them the base, local and remote values and stores the result.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::{ConflictPolicy, Fields, Resolution, Side};

/// One side of a conflict: its value (`None` = deleted) and when it was edited
/// (server clock, ms).
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub value: Option<&'a Fields>,
    /// The side's latest edit.
    pub edited_at: i64,
    /// Per field, when it was last edited, where that is known and differs
    /// from `edited_at` (the local side: the latest queued mutation that
    /// touched the field). Merge judges fields both sides changed by these.
    pub field_edited_at: Option<&'a BTreeMap<String, i64>>,
}

impl<'a> Version<'a> {
    /// A side known only as a whole: every field edited at `edited_at`.
    pub fn whole(value: Option<&'a Fields>, edited_at: i64) -> Self {
        Version { value, edited_at, field_edited_at: None }
    }

    /// When `field` was last edited on this side.
    pub fn field_time(&self, field: &str) -> i64 {
        self.field_edited_at.and_then(|m| m.get(field)).copied().unwrap_or(self.edited_at)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Take the server's version; local edits are superseded.
    Remote,
    /// Upload the local version on top of the server's.
    Local,
    /// Upload this merged value (`None`: deleted).
    Merged(Option<Fields>),
    /// Park the conflict for the user.
    Park,
}

impl Decision {
    pub fn winner(&self) -> &'static str {
        match self {
            Decision::Remote => "remote",
            Decision::Local => "local",
            Decision::Merged(_) => "merged",
            Decision::Park => "user",
        }
    }
}

/// The local edit wins last-write-wins only if it was made strictly later;
/// ties go to the server (every client then agrees on the outcome).
pub fn local_is_later(local: Version<'_>, remote: Version<'_>) -> bool {
    local.edited_at > remote.edited_at
}

/// What `policy` decides, and why (for the history).
pub fn decide(
    policy: ConflictPolicy,
    base: Option<&Fields>,
    local: Version<'_>,
    remote: Version<'_>,
) -> (Decision, String) {
    let lww_reason = |local_wins: bool| {
        format!(
            "{} edit made later ({} vs {})",
            if local_wins { "local" } else { "remote" },
            fmt_time(if local_wins { local.edited_at } else { remote.edited_at }),
            fmt_time(if local_wins { remote.edited_at } else { local.edited_at }),
        )
    };
    match policy {
        ConflictPolicy::ServerWins => (Decision::Remote, "policy server-wins".into()),
        ConflictPolicy::ClientWins => (Decision::Local, "policy client-wins".into()),
        ConflictPolicy::Manual => (Decision::Park, "policy manual: waiting for the user".into()),
        ConflictPolicy::Lww => {
            let l = local_is_later(local, remote);
            (if l { Decision::Local } else { Decision::Remote }, lww_reason(l))
        }
        ConflictPolicy::Merge => match (local.value, remote.value) {
            (Some(l), Some(r)) => {
                let merged = merge3_by(base, l, r, |k| local.field_time(k) > remote.field_time(k));
                let reason =
                    "three-way merge of fields; fields changed on both sides went to the later edit".to_string();
                if &merged == r {
                    (Decision::Remote, reason)
                } else if &merged == l {
                    (Decision::Local, reason)
                } else {
                    (Decision::Merged(Some(merged)), reason)
                }
            }
            // Delete versus edit has no fields to merge: whole-record lww.
            _ => {
                let l = local_is_later(local, remote);
                (
                    if l { Decision::Local } else { Decision::Remote },
                    format!("delete versus edit, merged as lww: {}", lww_reason(l)),
                )
            }
        },
    }
}

/// Three-way merge by top-level field: a field changed on one side only takes
/// that side's value; a field changed on both sides to different values takes
/// the later edit's (`local_later`). An absent field is a value too (removed).
pub fn merge3(base: Option<&Fields>, local: &Fields, remote: &Fields, local_later: bool) -> Fields {
    merge3_by(base, local, remote, |_| local_later)
}

/// [`merge3`] with the tie-break per field: `local_later(field)` says whether
/// the local side's edit of that field was made later.
pub fn merge3_by(base: Option<&Fields>, local: &Fields, remote: &Fields, local_later: impl Fn(&str) -> bool) -> Fields {
    let empty = Fields::new();
    let base = base.unwrap_or(&empty);
    let keys: BTreeSet<&String> = base.keys().chain(local.keys()).chain(remote.keys()).collect();
    let mut out = Fields::new();
    for k in keys {
        let (b, l, r) = (base.get(k), local.get(k), remote.get(k));
        let pick: Option<&Value> = if l == r {
            l
        } else if l == b {
            r
        } else if r == b || local_later(k) {
            // Only local changed it, or both did and local was later.
            l
        } else {
            r
        };
        if let Some(v) = pick {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Top-level fields whose values differ between the two sides, sorted.
pub fn differing_fields(local: Option<&Fields>, remote: Option<&Fields>) -> Vec<String> {
    let empty = Fields::new();
    let (l, r) = (local.unwrap_or(&empty), remote.unwrap_or(&empty));
    let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
    keys.into_iter().filter(|k| l.get(*k) != r.get(*k)).cloned().collect()
}

/// Builds the record the user chose: `keep` for everything, then each
/// per-field pick. Without `keep`, every field the two sides disagree on
/// must be picked: nothing is decided for the user. `None` = the record is
/// deleted.
pub fn apply_choice(
    local: Option<&Fields>,
    remote: Option<&Fields>,
    choice: &Resolution,
) -> Result<Option<Fields>, String> {
    let side = |s: Side| match s {
        Side::Local => local,
        Side::Remote => remote,
    };
    if (local.is_none() || remote.is_none()) && !choice.fields.is_empty() {
        return Err("one side deleted the record, so it is kept or deleted whole: --keep local|remote, \
                    without --field"
            .into());
    }
    if choice.keep.is_none() {
        let unpicked: Vec<String> =
            differing_fields(local, remote).into_iter().filter(|f| !choice.fields.contains_key(f)).collect();
        if choice.fields.is_empty() || !unpicked.is_empty() {
            let which =
                if unpicked.is_empty() { String::new() } else { format!(" ({} not picked)", unpicked.join(", ")) };
            return Err(format!(
                "say which side to keep{which}: --keep local|remote, and --field NAME=local|remote for exceptions"
            ));
        }
    }
    // Every differing field is picked; the rest is the same on both sides.
    let keep = choice.keep.unwrap_or(Side::Remote);
    if choice.fields.is_empty() {
        return Ok(side(keep).cloned());
    }
    let mut out = side(keep).cloned().unwrap_or_default();
    for (field, pick) in &choice.fields {
        let in_either = local.is_some_and(|l| l.contains_key(field)) || remote.is_some_and(|r| r.contains_key(field));
        if !in_either {
            return Err(format!("field {field:?} is in neither version; see `ferry conflicts` for the fields"));
        }
        match side(*pick).and_then(|f| f.get(field)) {
            Some(v) => {
                out.insert(field.clone(), v.clone());
            }
            None => {
                out.remove(field);
            }
        }
    }
    Ok(Some(out))
}

fn fmt_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn format_time(ms: i64) -> String {
    fmt_time(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn f(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_format() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn merge_keeps_disjoint_changes() {
        let base = f(json!({"a": 1, "b": 1}));
        let local = f(json!({"a": 2, "b": 1}));
        let remote = f(json!({"a": 1, "b": 3, "c": 4}));
        assert_eq!(merge3(Some(&base), &local, &remote, false), f(json!({"a": 2, "b": 3, "c": 4})));
    }

    #[test]
    fn merge_overlap_goes_to_later_edit() {
        let base = f(json!({"a": 1}));
        let local = f(json!({"a": 2}));
        let remote = f(json!({"a": 3}));
        assert_eq!(merge3(Some(&base), &local, &remote, true), f(json!({"a": 2})));
        assert_eq!(merge3(Some(&base), &local, &remote, false), f(json!({"a": 3})));
    }

    #[test]
    fn merge_respects_removed_fields() {
        let base = f(json!({"a": 1, "b": 2}));
        let local = f(json!({"a": 1}));
        let remote = f(json!({"a": 5, "b": 2}));
        assert_eq!(merge3(Some(&base), &local, &remote, false), f(json!({"a": 5})));
    }

    #[test]
    fn lww_ties_go_to_server() {
        let l = f(json!({"x": 1}));
        let r = f(json!({"x": 2}));
        let (d, _) = decide(ConflictPolicy::Lww, None, Version::whole(Some(&l), 10), Version::whole(Some(&r), 10));
        assert_eq!(d, Decision::Remote);
    }

    #[test]
    fn choice_per_field() {
        let l = f(json!({"a": 1, "b": 1, "only_local": true}));
        let r = f(json!({"a": 2, "b": 2}));
        let mut c = Resolution { keep: Some(Side::Remote), ..Default::default() };
        c.fields.insert("a".into(), Side::Local);
        c.fields.insert("only_local".into(), Side::Local);
        assert_eq!(apply_choice(Some(&l), Some(&r), &c).unwrap(), Some(f(json!({"a": 1, "b": 2, "only_local": true}))));
        c.fields.insert("nope".into(), Side::Local);
        assert!(apply_choice(Some(&l), Some(&r), &c).is_err());
        let keep_local = Resolution { keep: Some(Side::Local), ..Default::default() };
        assert_eq!(apply_choice(None, Some(&r), &keep_local).unwrap(), None);
        // Against a delete, a record is kept or deleted whole: field picks
        // would build one neither side had.
        let mut picks = Resolution::default();
        picks.fields.insert("a".into(), Side::Remote);
        picks.fields.insert("b".into(), Side::Remote);
        assert!(apply_choice(None, Some(&r), &picks).is_err());
        assert!(apply_choice(Some(&l), None, &Resolution { keep: Some(Side::Local), ..picks.clone() }).is_err());

        // No side kept: every differing field must be picked.
        let mut c = Resolution::default();
        assert!(apply_choice(Some(&l), Some(&r), &c).is_err(), "nothing chosen");
        c.fields.insert("a".into(), Side::Local);
        let err = apply_choice(Some(&l), Some(&r), &c).unwrap_err();
        assert!(err.contains("b, only_local not picked"), "{err}");
        c.fields.insert("b".into(), Side::Remote);
        c.fields.insert("only_local".into(), Side::Remote);
        assert_eq!(apply_choice(Some(&l), Some(&r), &c).unwrap(), Some(f(json!({"a": 1, "b": 2}))));
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Local), Just(Side::Remote)]
    }

    /// The local side's latest edit time and, for some fields, an earlier
    /// time of the last local edit of that field.
    fn local_times() -> impl Strategy<Value = (i64, BTreeMap<String, i64>)> {
        (0i64..6).prop_flat_map(|latest| (Just(latest), prop::collection::btree_map("[a-d]", 0..=latest, 0..4)))
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        /// The record ends as this value (`None`: deleted).
        Keep(Option<Fields>),
        AskUser,
    }

    /// What each policy must do, written from the words rather than
    /// from the implementation.
    mod model {
        use super::*;

        /// "Keeps the edit that was made last ... ties go to the server":
        /// order the two edits by time, the server's after the client's
        /// among equals, and take the last.
        fn last_made<T: Clone>(local: (T, i64), remote: (T, i64)) -> T {
            let mut edits = [(remote.1, 1, remote.0), (local.1, 0, local.0)];
            edits.sort_by_key(|e| (e.0, e.1));
            edits[1].2.clone()
        }

        pub fn outcome(
            policy: ConflictPolicy,
            base: Option<&Fields>,
            (local, lt, field_times): (Option<&Fields>, i64, &BTreeMap<String, i64>),
            (remote, rt): (Option<&Fields>, i64),
        ) -> Outcome {
            match policy {
                ConflictPolicy::ServerWins => Outcome::Keep(remote.cloned()),
                ConflictPolicy::ClientWins => Outcome::Keep(local.cloned()),
                ConflictPolicy::Manual => Outcome::AskUser,
                ConflictPolicy::Lww => Outcome::Keep(last_made((local.cloned(), lt), (remote.cloned(), rt))),
                ConflictPolicy::Merge => match (local, remote) {
                    (Some(l), Some(r)) => {
                        let empty = Fields::new();
                        let b = base.unwrap_or(&empty);
                        let mut out = Fields::new();
                        for k in ["a", "b", "c", "d"] {
                            let (bv, lv, rv) = (b.get(k), l.get(k), r.get(k));
                            // "Fields only one side changed are kept from that
                            // side; fields both changed fall back to lww for
                            // that field."
                            let v = match (lv != bv, rv != bv) {
                                (false, false) => bv,
                                (true, false) => lv,
                                (false, true) => rv,
                                (true, true) => {
                                    let l_at = field_times.get(k).copied().unwrap_or(lt);
                                    last_made((lv, l_at), (rv, rt))
                                }
                            };
                            if let Some(v) = v {
                                out.insert(k.to_string(), v.clone());
                            }
                        }
                        Outcome::Keep(Some(out))
                    }
                    // A delete has no fields to merge: the whole record by lww.
                    _ => Outcome::Keep(last_made((local.cloned(), lt), (remote.cloned(), rt))),
                },
            }
        }
    }

    fn small_map() -> impl Strategy<Value = Fields> {
        prop::collection::btree_map("[a-d]", prop::option::of(0i64..3), 0..4)
            .prop_map(|m| m.into_iter().filter_map(|(k, v)| v.map(|v| (k, json!(v)))).collect())
    }

    proptest! {
        /// Against a simple model: each field ends as the only side that
        /// changed it, or the later side when both did.
        #[test]
        fn merge_matches_model(base in small_map(), local in small_map(), remote in small_map(), later in any::<bool>()) {
            let m = merge3(Some(&base), &local, &remote, later);
            for k in ["a", "b", "c", "d"] {
                let (b, l, r) = (base.get(k), local.get(k), remote.get(k));
                // The model spells out each case on purpose.
                #[allow(clippy::if_same_then_else)]
                let expect = if l == b { r } else if r == b { l } else if l == r { l } else if later { l } else { r };
                prop_assert_eq!(m.get(k), expect, "field {}", k);
            }
        }

        /// Merging is symmetric when the tie-break is swapped with the sides.
        #[test]
        fn merge_is_symmetric(base in small_map(), local in small_map(), remote in small_map(), later in any::<bool>()) {
            prop_assert_eq!(merge3(Some(&base), &local, &remote, later), merge3(Some(&base), &remote, &local, !later));
        }

        /// If only one side changed anything, the merge is exactly that side.
        #[test]
        fn merge_one_sided(base in small_map(), other in small_map(), later in any::<bool>()) {
            prop_assert_eq!(merge3(Some(&base), &base, &other, later), other.clone());
            prop_assert_eq!(merge3(Some(&base), &other, &base, later), other);
        }

        /// The resolver's decisions against the model below, for every
        /// policy, deletes on either side, a real base and per-field local
        /// edit times.
        #[test]
        fn decisions_match_model(
            base in prop::option::of(small_map()),
            l in small_map(),
            r in small_map(),
            (lt, field_times) in local_times(),
            rt in 0i64..6,
            ldel in any::<bool>(),
            rdel in any::<bool>(),
        ) {
            let lv = if ldel { None } else { Some(&l) };
            let rv = if rdel { None } else { Some(&r) };
            let local = Version { value: lv, edited_at: lt, field_edited_at: Some(&field_times) };
            let remote = Version::whole(rv, rt);
            for policy in [
                ConflictPolicy::Lww,
                ConflictPolicy::ServerWins,
                ConflictPolicy::ClientWins,
                ConflictPolicy::Merge,
                ConflictPolicy::Manual,
            ] {
                let decided = match decide(policy, base.as_ref(), local, remote).0 {
                    Decision::Remote => Outcome::Keep(rv.cloned()),
                    Decision::Local => Outcome::Keep(lv.cloned()),
                    Decision::Merged(v) => Outcome::Keep(v),
                    Decision::Park => Outcome::AskUser,
                };
                let expected = model::outcome(
                    policy,
                    base.as_ref(),
                    (lv, lt, &field_times),
                    (rv, rt),
                );
                prop_assert_eq!(decided, expected, "policy {}", policy.as_str());
            }
        }

        /// Per-field picks build exactly the chosen record: every field
        /// comes from the side picked for it, or else from the side kept.
        #[test]
        fn apply_choice_builds_exactly_the_chosen_record(
            l in prop::option::of(small_map()),
            r in prop::option::of(small_map()),
            keep in prop::option::of(side()),
            picks in prop::collection::btree_map("[a-e]", side(), 0..4),
        ) {
            let choice = Resolution { keep, fields: picks.clone() };
            let got = apply_choice(l.as_ref(), r.as_ref(), &choice);
            let side_value = |s: Side| match s { Side::Local => l.as_ref(), Side::Remote => r.as_ref() };
            let in_either = |k: &str| l.as_ref().is_some_and(|m| m.contains_key(k)) || r.as_ref().is_some_and(|m| m.contains_key(k));
            let unpicked_difference = ["a", "b", "c", "d", "e"].iter().any(|k| {
                l.as_ref().and_then(|m| m.get(*k)) != r.as_ref().and_then(|m| m.get(*k)) && !picks.contains_key(*k)
            });
            let undecided = keep.is_none() && (picks.is_empty() || unpicked_difference);
            let picks_of_a_deleted_record = (l.is_none() || r.is_none()) && !picks.is_empty();
            let keep = keep.unwrap_or(Side::Remote);
            if picks.keys().any(|k| !in_either(k)) || undecided || picks_of_a_deleted_record {
                prop_assert!(got.is_err(), "a pick of a field neither side has, an undecided field, or a field pick against a delete is refused");
            } else if picks.is_empty() {
                prop_assert_eq!(got.unwrap(), side_value(keep).cloned());
            } else {
                let got = got.unwrap().expect("field picks build a record");
                for k in ["a", "b", "c", "d", "e"] {
                    let from = picks.get(k).copied().unwrap_or(keep);
                    let expect = side_value(from).and_then(|m| m.get(k));
                    prop_assert_eq!(got.get(k), expect, "field {}", k);
                }
                prop_assert!(got.keys().all(|k| in_either(k)), "no invented fields");
            }
        }
    }
}

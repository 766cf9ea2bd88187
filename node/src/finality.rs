//! Why a log is not final yet, as this node sees it (issue 14, "why a step is waiting"): for
//! each log with a checkpoint larger than its final size, since when it waits, its committee and
//! quorum, who cosigned and who did not; and for every witness, when this node last heard a
//! cosignature from it.
//!
//! The witness task records what it sees through three hooks ([`FinalityBook::checkpoint`],
//! [`FinalityBook::cosigned`], [`FinalityBook::certified`]); the service turns the book, the
//! configuration and the connected peers into a [`Waiting`] report for the API error
//! (`deregistration_not_final`, `claim_not_final`), `GET /v1/finality`, the window and the
//! network page.
//!
//! Memory only, and bounded: one record per log and one time per witness, and logs and witnesses
//! are members (the hooks are called only for checkpoints and cosignatures whose signatures
//! verified), so the book never holds more than a few entries per member. Nothing here decides
//! anything: finality is the stored certificates' (`State::final_sizes`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hukou_protocol::BureauCode;
use hukou_protocol::config::Epochs;
use serde::Serialize;

/// What this node saw of the witnesses: memory only, rebuilt from gossip after a restart.
#[derive(Debug, Default)]
pub struct FinalityBook {
    /// Per log, the newest checkpoint seen above the final size this node knew then.
    waiting: BTreeMap<BureauCode, Pending>,
    /// Per witness, when this node last received a valid cosignature from it (ms since the Unix
    /// epoch, this node's clock), on any log.
    heard_ms: BTreeMap<BureauCode, u64>,
}

/// A log waiting for cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    /// Size of the newest checkpoint seen.
    size: u64,
    /// Its epoch: its committee and quorum certify it.
    epoch: u32,
    /// When this node first saw a checkpoint of the log above the final size (kept while
    /// larger checkpoints follow: the wait goes on until a certificate catches up).
    since_ms: u64,
    /// Witnesses whose newest cosignature this node counted for this log, with that
    /// checkpoint's size.
    cosigned: BTreeMap<BureauCode, u64>,
}

impl FinalityBook {
    /// A validly signed checkpoint of `log` at `size` (epoch `epoch`) was seen at `now_ms`, while
    /// the log was final up to `final_size`.
    pub fn checkpoint(
        &mut self,
        log: BureauCode,
        size: u64,
        epoch: u32,
        final_size: u64,
        now_ms: u64,
    ) {
        if size <= final_size {
            return;
        }
        let pending = self.waiting.entry(log).or_insert(Pending {
            size,
            epoch,
            since_ms: now_ms,
            cosigned: BTreeMap::new(),
        });
        if pending.size <= final_size {
            // A stale record a certificate this book did not see made obsolete: a new wait.
            *pending = Pending {
                size,
                epoch,
                since_ms: now_ms,
                cosigned: BTreeMap::new(),
            };
        } else if size > pending.size || (size == pending.size && epoch > pending.epoch) {
            pending.size = size;
            pending.epoch = epoch;
        }
    }

    /// A valid cosignature by `witness` of a checkpoint of `log` at `size` was counted at
    /// `now_ms`.
    pub fn cosigned(
        &mut self,
        log: BureauCode,
        size: u64,
        epoch: u32,
        witness: BureauCode,
        final_size: u64,
        now_ms: u64,
    ) {
        self.heard(witness, now_ms);
        self.checkpoint(log, size, epoch, final_size, now_ms);
        if let Some(pending) = self.waiting.get_mut(&log) {
            let newest = pending.cosigned.entry(witness).or_insert(size);
            *newest = (*newest).max(size);
        }
    }

    /// A valid cosignature by `witness` arrived at `now_ms` (of a log already final at its size:
    /// it shows the witness alive, and counts towards nothing).
    pub fn heard(&mut self, witness: BureauCode, now_ms: u64) {
        let heard = self.heard_ms.entry(witness).or_insert(now_ms);
        *heard = (*heard).max(now_ms);
    }

    /// Whether a cosignature from `witness` was heard at or after `since_ms`.
    pub fn heard_since(&self, witness: BureauCode, since_ms: u64) -> bool {
        self.heard_ms.get(&witness).is_some_and(|&t| t >= since_ms)
    }

    /// A certificate of `log` at `size` was stored: what it covers waits no more.
    pub fn certified(&mut self, log: BureauCode, size: u64) {
        if let Some(pending) = self.waiting.get_mut(&log) {
            if pending.size <= size {
                self.waiting.remove(&log);
            } else {
                pending.cosigned.retain(|_, s| *s > size);
            }
        }
    }

    /// When this node last heard a cosignature from `witness`.
    pub fn last_heard_ms(&self, witness: BureauCode) -> Option<u64> {
        self.heard_ms.get(&witness).copied()
    }

    /// The logs waiting, with `final_size` telling each log's final size now (a record a
    /// certificate already covers is not reported).
    pub fn waiting_logs(&self, final_size: impl Fn(BureauCode) -> u64) -> Vec<BureauCode> {
        self.waiting
            .iter()
            .filter(|(log, p)| p.size > final_size(**log))
            .map(|(log, _)| *log)
            .collect()
    }

    /// The report on `log`, final up to `final_size` now; `None` if this node saw no checkpoint of
    /// it above that size. `connected` lists the members connected now; `me` is this node
    /// (counted as connected).
    pub fn report(
        &self,
        epochs: &Epochs,
        me: BureauCode,
        connected: &BTreeSet<BureauCode>,
        log: BureauCode,
        final_size: u64,
    ) -> Option<Waiting> {
        let pending = self.waiting.get(&log).filter(|p| p.size > final_size)?;
        let epoch = epochs.get(pending.epoch)?;
        let committee = epoch.witnesses(log);
        let cosigned: Vec<BureauCode> = committee
            .iter()
            .copied()
            .filter(|w| pending.cosigned.get(w).is_some_and(|&s| s >= pending.size))
            .collect();
        let name = |code: BureauCode| {
            epoch
                .membership
                .member(code)
                .or_else(|| epochs.latest().membership.member(code))
                .map_or_else(String::new, |m| m.name.clone())
        };
        let missing = committee
            .iter()
            .copied()
            .filter(|w| !cosigned.contains(w))
            .map(|w| WitnessHeard {
                bureau: w,
                name: name(w),
                connected: w == me || connected.contains(&w),
                last_heard_ms: self.last_heard_ms(w),
            })
            .collect();
        Some(Waiting {
            log,
            log_name: name(log),
            size: pending.size,
            final_size,
            since_ms: pending.since_ms,
            epoch: pending.epoch,
            committee,
            quorum: epoch.certificate_quorum(log),
            cosigned,
            missing,
        })
    }

    /// Every member of the latest epoch, with when it was last heard as a witness.
    pub fn witnesses(
        &self,
        epochs: &Epochs,
        me: BureauCode,
        connected: &BTreeSet<BureauCode>,
    ) -> Vec<WitnessHeard> {
        epochs
            .latest()
            .membership
            .members()
            .map(|m| WitnessHeard {
                bureau: m.code,
                name: m.name.clone(),
                connected: m.code == me || connected.contains(&m.code),
                last_heard_ms: self.last_heard_ms(m.code),
            })
            .collect()
    }
}

/// Why a log is not final yet on this node: the `waiting` field of `deregistration_not_final`
/// and `claim_not_final`, and each item of `GET /v1/finality`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub log: BureauCode,
    /// The bureau whose log it is.
    pub log_name: String,
    /// Size of the newest checkpoint of the log seen, larger than `final_size`.
    pub size: u64,
    /// Entries of the log final on this node.
    pub final_size: u64,
    /// Since when this node has seen the log wait (ms since the Unix epoch).
    pub since_ms: u64,
    /// The checkpoint's epoch, whose committee and quorum certify it.
    pub epoch: u32,
    /// The log's committee in that epoch.
    pub committee: Vec<BureauCode>,
    /// Cosignatures of the committee a certificate needs.
    pub quorum: usize,
    /// Committee members whose cosignature of that checkpoint this node holds.
    pub cosigned: Vec<BureauCode>,
    /// The other committee members.
    pub missing: Vec<WitnessHeard>,
}

/// A witness, whether it is connected to this node now and when this node last received a
/// cosignature from it (`null`: never since this node started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessHeard {
    pub bureau: BureauCode,
    pub name: String,
    pub connected: bool,
    pub last_heard_ms: Option<u64>,
}

/// `HH:MM:SS` China time (UTC+8), as the console shows times.
pub fn clock_china(time_ms: u64) -> String {
    let seconds = (time_ms / 1000 + 8 * 3600) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn codes(list: &[BureauCode]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The English sentence of the API message: "log 340100 (合肥市公安局) needs 3 cosignatures of its
/// committee 310104, 330502, 340100, 340104; it has 2 (310104, 340100); missing: 330502 湖州市…
/// (not connected, last heard 12:03:04), …; waiting since 12:02:58 (China time)".
impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log {} ({}) needs {} cosignatures of its committee {}; it has {}",
            self.log,
            self.log_name,
            self.quorum,
            codes(&self.committee),
            self.cosigned.len()
        )?;
        if !self.cosigned.is_empty() {
            write!(f, " ({})", codes(&self.cosigned))?;
        }
        let missing: Vec<String> = self
            .missing
            .iter()
            .map(|w| {
                let link = if w.connected {
                    "connected"
                } else {
                    "not connected"
                };
                let heard = w.last_heard_ms.map_or_else(
                    || "never heard since this node started".to_string(),
                    |t| format!("last heard {}", clock_china(t)),
                );
                format!("{} {} ({link}, {heard})", w.bureau, w.name)
            })
            .collect();
        if !missing.is_empty() {
            write!(f, "; missing: {}", missing.join(", "))?;
        }
        write!(
            f,
            "; waiting since {} (China time)",
            clock_china(self.since_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> BureauCode {
        s.parse().expect("bureau code")
    }

    #[test]
    fn a_checkpoint_above_the_final_size_starts_a_wait_and_a_certificate_ends_it() {
        let (a, b, c) = (code("310104"), code("330502"), code("340100"));
        let mut book = FinalityBook::default();
        book.checkpoint(a, 3, 0, 3, 1_000);
        assert_eq!(book.waiting_logs(|_| 3), Vec::<BureauCode>::new());
        book.cosigned(a, 5, 0, a, 3, 2_000);
        book.cosigned(a, 5, 0, b, 3, 2_500);
        // A larger checkpoint keeps the wait's start; the cosignatures of the smaller one no
        // longer count as cosigning the newest.
        book.checkpoint(a, 7, 0, 3, 3_000);
        book.cosigned(a, 7, 0, a, 3, 3_100);
        let pending = book.waiting.get(&a).expect("waiting").clone();
        assert_eq!(pending.size, 7);
        assert_eq!(pending.since_ms, 2_000);
        assert_eq!(pending.cosigned, BTreeMap::from([(a, 7), (b, 5)]));
        assert_eq!(book.last_heard_ms(a), Some(3_100));
        assert_eq!(book.last_heard_ms(b), Some(2_500));
        assert_eq!(book.last_heard_ms(c), None);
        assert_eq!(book.waiting_logs(|_| 3), vec![a]);
        // A certificate below the newest checkpoint drops what it covers, keeps the wait.
        book.certified(a, 5);
        assert_eq!(
            book.waiting.get(&a).expect("still waiting").cosigned,
            BTreeMap::from([(a, 7)])
        );
        assert_eq!(book.waiting_logs(|_| 5), vec![a]);
        book.certified(a, 7);
        assert!(book.waiting.is_empty());
        // Hearing is kept after the wait ends.
        assert_eq!(book.last_heard_ms(b), Some(2_500));
    }

    #[test]
    fn a_record_a_certificate_covered_unseen_is_not_reported_and_a_new_wait_restarts() {
        let a = code("310104");
        let mut book = FinalityBook::default();
        book.cosigned(a, 4, 0, a, 0, 1_000);
        // Final up to 4 by a certificate the book missed (a restart's load, an adoption).
        assert_eq!(book.waiting_logs(|_| 4), Vec::<BureauCode>::new());
        book.checkpoint(a, 6, 0, 4, 9_000);
        let pending = book.waiting.get(&a).expect("waiting");
        assert_eq!((pending.size, pending.since_ms), (6, 9_000));
        assert!(pending.cosigned.is_empty());
    }

    #[test]
    fn heard_only_moves_forward() {
        let a = code("310104");
        let mut book = FinalityBook::default();
        book.heard(a, 5_000);
        book.heard(a, 4_000);
        assert_eq!(book.last_heard_ms(a), Some(5_000));
        assert!(book.heard_since(a, 5_000));
        assert!(!book.heard_since(a, 5_001));
    }

    fn epochs() -> Epochs {
        use ed25519_dalek::SigningKey;
        use hukou_protocol::calendar::Calendar;
        use hukou_protocol::config::GenesisConfig;
        use hukou_protocol::membership::{Member, Membership};
        let codes = ["310104", "330502", "340100", "340104"];
        let members = codes.iter().enumerate().map(|(i, c)| Member {
            code: code(c),
            name: format!("局{c}"),
            key: SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key(),
        });
        Epochs::genesis(GenesisConfig {
            membership: Membership::new("finality-test", members, 3).expect("membership"),
            addresses: BTreeMap::new(),
            administrators: (0..3u8)
                .map(|i| SigningKey::from_bytes(&[0xa0 + i; 32]).verifying_key())
                .collect(),
            threshold: 2,
            hash: [0x99; 32],
            calendar: Calendar::prc().clone(),
        })
    }

    #[test]
    fn the_report_names_the_committee_the_cosigners_and_who_is_missing() {
        let epochs = epochs();
        let (a, b, c, d) = (
            code("310104"),
            code("330502"),
            code("340100"),
            code("340104"),
        );
        let mut book = FinalityBook::default();
        book.heard(c, 500);
        book.cosigned(a, 3, 0, a, 2, 1_000);
        book.cosigned(a, 3, 0, b, 2, 1_200);
        let connected = BTreeSet::from([a]);
        let report = book.report(&epochs, b, &connected, a, 2).expect("waiting");
        assert_eq!(
            report,
            Waiting {
                log: a,
                log_name: "局310104".into(),
                size: 3,
                final_size: 2,
                since_ms: 1_000,
                epoch: 0,
                committee: vec![a, b, c, d],
                quorum: 3,
                cosigned: vec![a, b],
                missing: vec![
                    WitnessHeard {
                        bureau: c,
                        name: "局340100".into(),
                        connected: false,
                        last_heard_ms: Some(500),
                    },
                    WitnessHeard {
                        bureau: d,
                        name: "局340104".into(),
                        connected: false,
                        last_heard_ms: None,
                    },
                ],
            }
        );
        // This node counts as connected; a log final at the checkpoint's size is not reported.
        let heard = book.witnesses(&epochs, b, &connected);
        assert_eq!(
            heard
                .iter()
                .map(|w| (w.connected, w.last_heard_ms))
                .collect::<Vec<_>>(),
            vec![
                (true, Some(1_000)),
                (true, Some(1_200)),
                (false, Some(500)),
                (false, None)
            ]
        );
        assert_eq!(book.report(&epochs, b, &connected, a, 3), None);
        assert_eq!(book.report(&epochs, b, &connected, c, 0), None);
    }

    #[test]
    fn clock_is_china_time() {
        // 1970-01-01 04:05:06 UTC is 12:05:06 in China.
        assert_eq!(
            clock_china((4 * 3600 + 5 * 60 + 6) * 1000 + 999),
            "12:05:06"
        );
    }
}

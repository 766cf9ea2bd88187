//! A small simulated world for rulebook tests: member bureaus that sign entries into their own
//! logs, and a generator of random honest histories driven by a list of choices.

#![allow(dead_code, clippy::result_large_err)]

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use hukou_protocol::calendar::Calendar;
use hukou_protocol::config::{Change, ConfigUpdate, Cut, Epochs, GenesisConfig, SignedUpdate};
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::rules::SignatureCheck;
use hukou_protocol::{
    BureauCode, CancellationReason, Category, Digest, EntryHash, EntryRef, HouseholdId, Ledger,
    Member, Membership, NetworkId, PersonTag, RefusalReason, Relation, Seq, SignedEntry,
    quorum_for,
};

pub const CODES: [u32; 4] = [310104, 330502, 340100, 320506];
pub const DAY_MS: u64 = 86_400_000;

/// One bureau's signing state.
#[derive(Clone)]
pub struct Bureau {
    pub code: BureauCode,
    pub key: SigningKey,
    pub seq: u64,
    pub prev: EntryHash,
    pub time_ms: u64,
    pub next_household: u64,
    /// The configuration epoch its next entry names.
    pub epoch: u32,
}

impl Bureau {
    /// The next entry of this log, signed, without advancing the log.
    pub fn draft(&self, network: NetworkId, body: Body) -> SignedEntry {
        Entry {
            network,
            epoch: self.epoch,
            author: self.code,
            seq: Seq(self.seq),
            prev: self.prev,
            time_ms: self.time_ms,
            body,
        }
        .sign(&self.key)
    }

    /// Advances the log past `entry`.
    pub fn accept(&mut self, entry: &SignedEntry) {
        self.seq += 1;
        self.prev = entry.hash();
        self.time_ms = entry.entry().time_ms;
    }
}

pub fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

pub fn membership(n: usize) -> Membership {
    let members = (0..n).map(|i| Member {
        code: BureauCode::new(CODES[i]).unwrap(),
        name: format!("bureau {i}"),
        key: key(i).verifying_key(),
    });
    Membership::new("test-net", members, quorum_for(n)).unwrap()
}

pub fn bureaus(n: usize) -> Vec<Bureau> {
    (0..n)
        .map(|i| Bureau {
            code: BureauCode::new(CODES[i]).unwrap(),
            key: key(i),
            seq: 0,
            prev: EntryHash::ZERO,
            time_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            next_household: 1,
            epoch: 0,
        })
        .collect()
}

pub fn person(n: u32) -> PersonTag {
    let mut t = [0u8; 32];
    t[..4].copy_from_slice(&n.to_be_bytes());
    t[31] = 0x5a;
    PersonTag(t)
}

/// Administrator `i`'s key (the genesis of [`genesis_epochs`] names 0, 1 and 2, threshold 2).
pub fn admin_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[0xa0 + i as u8; 32])
}

/// Epoch 0 of `membership(n)`, with three administrators of whom two must sign an update.
pub fn genesis_epochs(n: usize) -> Epochs {
    Epochs::genesis(GenesisConfig {
        membership: membership(n),
        addresses: BTreeMap::new(),
        administrators: (0..3).map(|i| admin_key(i).verifying_key()).collect(),
        threshold: 2,
        hash: [0x99; 32],
        calendar: Calendar::prc().clone(),
    })
}

/// The update making the epoch after the latest of `epochs`, signed by administrators 0 and 1.
pub fn next_update(epochs: &Epochs, changes: Vec<Change>) -> SignedUpdate {
    let latest = epochs.latest();
    let mut signed = SignedUpdate::unsigned(ConfigUpdate {
        network: epochs.network(),
        epoch: latest.epoch + 1,
        prev: latest.hash,
        time_ms: 1_767_225_600_000,
        changes,
    });
    signed.sign(&admin_key(0));
    signed.sign(&admin_key(1));
    signed
}

/// A world: bureaus, the ledger as the authors see it, and every entry in creation order.
pub struct World {
    pub bureaus: Vec<Bureau>,
    pub ledger: Ledger,
    pub history: Vec<SignedEntry>,
    pub network: NetworkId,
    pub next_person: u32,
}

impl World {
    pub fn new(n: usize) -> World {
        let m = membership(n);
        World {
            network: m.network(),
            bureaus: bureaus(n),
            ledger: Ledger::new(m),
            history: vec![],
            next_person: 1,
        }
    }

    /// A world whose ledger judges by [`genesis_epochs`], so configuration updates can follow.
    pub fn with_epochs(n: usize) -> World {
        World {
            ledger: Ledger::with_epochs(genesis_epochs(n)),
            ..World::new(n)
        }
    }

    /// Makes the next epoch from `changes` (signed by two administrators); returns its cuts.
    pub fn push_config(&mut self, changes: Vec<Change>) -> Vec<Cut> {
        let update = next_update(self.ledger.epochs(), changes);
        self.ledger.push_config(update).expect("a valid update")
    }

    /// Signs `body` at bureau `b`, admits and applies it; returns the entry, or the violation
    /// (leaving everything unchanged).
    pub fn act(&mut self, b: usize, body: Body) -> Result<SignedEntry, hukou_protocol::Violation> {
        self.bureaus[b].time_ms += 60_000;
        let entry = self.bureaus[b].draft(self.network, body);
        self.ledger.admit(&entry, SignatureCheck::Verify)?;
        self.ledger
            .apply(&entry, SignatureCheck::Verify)
            .expect("admitted entries apply");
        self.bureaus[b].accept(&entry);
        self.history.push(entry.clone());
        Ok(entry)
    }

    pub fn enrol_new(&mut self, b: usize) -> PersonTag {
        let p = person(self.next_person);
        self.next_person += 1;
        self.enrol(b, p).unwrap();
        p
    }

    /// Has the person's arbiter grant bureau `b` a claim on `p` (following the person's latest
    /// cancellation, if any).
    pub fn claim(&mut self, b: usize, p: PersonTag) -> Result<EntryRef, hukou_protocol::Violation> {
        let arbiter = self.index_of(self.ledger.membership().arbiter(&p));
        let after = self.ledger.claim_after(&p);
        let claimant = self.code(b);
        self.act(
            arbiter,
            Body::Claim {
                person: p,
                claimant,
                after,
            },
        )
        .map(|e| e.reference())
    }

    /// Claims `p` for bureau `b` and enrols them there as the head of a new household.
    pub fn enrol(
        &mut self,
        b: usize,
        p: PersonTag,
    ) -> Result<SignedEntry, hukou_protocol::Violation> {
        let claim = self.claim(b, p)?;
        let household = HouseholdId(self.bureaus[b].next_household);
        self.bureaus[b].next_household += 1;
        self.act(
            b,
            Body::Enrol {
                person: p,
                placement: Placement {
                    household,
                    relation: Relation::Head,
                },
                claim,
            },
        )
    }

    /// Claims `p` for bureau `b` and enrols them there with `placement`.
    pub fn enrol_with(
        &mut self,
        b: usize,
        p: PersonTag,
        placement: Placement,
    ) -> Result<SignedEntry, hukou_protocol::Violation> {
        let claim = self.claim(b, p)?;
        self.act(
            b,
            Body::Enrol {
                person: p,
                placement,
                claim,
            },
        )
    }

    /// Today's date at bureau `b` as YYYYMMDD (China time), for a newborn's `born_on`.
    pub fn today(&self, b: usize) -> u32 {
        yyyymmdd(self.bureaus[b].time_ms + 60_000)
    }

    pub fn code(&self, b: usize) -> BureauCode {
        self.bureaus[b].code
    }

    pub fn index_of(&self, code: BureauCode) -> usize {
        self.bureaus.iter().position(|b| b.code == code).unwrap()
    }

    /// One random honest step chosen by `choice`; does nothing if the chosen action has no
    /// valid target.
    pub fn step(&mut self, choice: u32) {
        let n = self.bureaus.len();
        let b = (choice as usize / 16) % n;
        let pick = (choice / 64) as usize;
        let time = self.bureaus[b].time_ms;
        match choice % 16 {
            0..=1 => {
                self.enrol_new(b);
            }
            2 => {
                // Someone who emigrated comes back and is registered again, at b.
                let returning: Vec<PersonTag> = (1..self.next_person)
                    .map(person)
                    .filter(|p| {
                        self.ledger.person(p).is_some_and(|s| {
                            s.records.is_empty()
                                && s.in_transit.is_empty()
                                && s.cancelled.is_some_and(|(_, r)| !r.is_final())
                        })
                    })
                    .collect();
                match returning.get(pick % returning.len().max(1)).copied() {
                    Some(p) => {
                        let _ = self.enrol(b, p);
                    }
                    None => {
                        self.enrol_new(b);
                    }
                }
            }
            3 => {
                // A member joins an existing household at b.
                let head = self.registered_heads(b);
                if let Some((p_head, household)) = head.get(pick % head.len().max(1)).copied() {
                    let _ = p_head;
                    let p = person(self.next_person);
                    self.next_person += 1;
                    if let Ok(claim) = self.claim(b, p) {
                        let born_on = self.today(b);
                        let _ = self.act(
                            b,
                            Body::Birth {
                                person: p,
                                placement: Placement {
                                    household,
                                    relation: Relation::Child,
                                },
                                claim,
                                born_on,
                            },
                        );
                    }
                }
            }
            4..=6 => {
                // Destination b issues a permit for someone registered elsewhere.
                let candidates: Vec<(PersonTag, BureauCode)> = self
                    .registered()
                    .into_iter()
                    .filter(|(_, at)| *at != self.code(b))
                    .collect();
                if let Some((p, origin)) = candidates.get(pick % candidates.len().max(1)).copied() {
                    let category = Category::NAMED[pick % 11];
                    let _ = self.act(
                        b,
                        Body::Permit {
                            person: p,
                            origin,
                            category,
                            valid_until_ms: time + 30 * DAY_MS,
                            materials: Digest([7; 32]),
                            corrects: None,
                        },
                    );
                }
            }
            7..=9 => {
                // Origin b deregisters against an open permit.
                let open: Vec<_> = self.ledger.awaiting_origin(self.code(b)).cloned().collect();
                if let Some(p) = open.get(pick % open.len().max(1)) {
                    let new_head = self.successor_for(b, p.person);
                    let _ = self.act(
                        b,
                        Body::Deregistration {
                            permit: p.reference,
                            person: p.person,
                            new_head,
                        },
                    );
                }
            }
            10..=12 => {
                // Destination b registers against a deregistration awaiting it.
                let waiting: Vec<_> = self
                    .ledger
                    .awaiting_destination(self.code(b))
                    .cloned()
                    .collect();
                if let Some(d) = waiting.get(pick % waiting.len().max(1)) {
                    let household = HouseholdId(self.bureaus[b].next_household);
                    self.bureaus[b].next_household += 1;
                    let _ = self.act(
                        b,
                        Body::Registration {
                            deregistration: d.reference,
                            person: d.person,
                            placement: Placement {
                                household,
                                relation: Relation::Head,
                            },
                        },
                    );
                }
            }
            13 => {
                let open: Vec<_> = self.ledger.awaiting_origin(self.code(b)).cloned().collect();
                if let Some(p) = open.get(pick % open.len().max(1)) {
                    let reason = RefusalReason::NAMED[pick % RefusalReason::NAMED.len()];
                    let _ = self.act(
                        b,
                        Body::Refusal {
                            permit: p.reference,
                            reason,
                        },
                    );
                }
            }
            14 => {
                let mine: Vec<_> = self
                    .ledger
                    .permits()
                    .filter(|p| p.destination() == self.code(b) && p.revoked_by.is_none())
                    .filter(|p| p.status == hukou_protocol::rules::PermitStatus::Open)
                    .map(|p| p.reference)
                    .collect();
                let mut mine = mine;
                mine.sort();
                if let Some(permit) = mine.get(pick % mine.len().max(1)) {
                    let _ = self.act(b, Body::Revocation { permit: *permit });
                }
            }
            _ => {
                let here: Vec<_> = self
                    .registered()
                    .into_iter()
                    .filter(|(_, at)| *at == self.code(b))
                    .collect();
                if let Some((p, _)) = here.get(pick % here.len().max(1)).copied() {
                    let new_head = self.successor_for(b, p);
                    let _ = self.act(
                        b,
                        Body::Cancellation {
                            person: p,
                            reason: if pick.is_multiple_of(2) {
                                CancellationReason::Emigration
                            } else {
                                CancellationReason::Death
                            },
                            new_head,
                        },
                    );
                }
            }
        }
    }

    /// Persons registered at exactly one bureau, in tag order.
    pub fn registered(&self) -> Vec<(PersonTag, BureauCode)> {
        let mut out: Vec<_> = (1..self.next_person)
            .map(person)
            .filter_map(|p| {
                self.ledger
                    .person(&p)
                    .and_then(|s| s.registered_at())
                    .map(|at| (p, at))
            })
            .collect();
        out.sort();
        out
    }

    /// Heads of households at bureau `b` with their household.
    pub fn registered_heads(&self, b: usize) -> Vec<(PersonTag, HouseholdId)> {
        let code = self.code(b);
        let mut out = vec![];
        for p in (1..self.next_person).map(person) {
            if let Some(r) = self.ledger.person(&p).and_then(|s| s.record_at(code))
                && self
                    .ledger
                    .household(code, r.household)
                    .is_some_and(|h| h.head == p)
            {
                out.push((p, r.household));
            }
        }
        out
    }

    /// If `p` heads a household at `b` with other members, another member to succeed them.
    pub fn successor_for(&self, b: usize, p: PersonTag) -> Option<PersonTag> {
        let code = self.code(b);
        let record = *self.ledger.person(&p)?.record_at(code)?;
        let h = self.ledger.household(code, record.household)?;
        if h.head != p || h.members <= 1 {
            return None;
        }
        (1..self.next_person).map(person).find(|q| {
            *q != p
                && self
                    .ledger
                    .person(q)
                    .and_then(|s| s.record_at(code))
                    .is_some_and(|r| r.household == record.household)
        })
    }
}

/// A time as the date YYYYMMDD in China.
pub fn yyyymmdd(time_ms: u64) -> u32 {
    let d = hukou_protocol::calendar::china_date(time_ms);
    d.year() as u32 * 10_000 + u32::from(d.month()) * 100 + u32::from(d.day())
}

/// A claim reference for entries that are refused before their references are looked at.
pub fn dummy_claim() -> EntryRef {
    EntryRef {
        author: BureauCode::new(CODES[0]).unwrap(),
        seq: Seq(0),
        hash: EntryHash([0xcc; 32]),
    }
}

//! `POST /v1/batch`: many clerk writes of mixed kinds in one request, for bureaus that process
//! applications in batches (and for load drivers).
//!
//! The body is NDJSON: each line is the JSON body of one of the single write routes plus an
//! `"op"` field naming it (`enrol`, `birth`, `permit`, `revoke`, `deregister`, `refuse`,
//! `register`, `cancel`, `head-change`). Lines are taken in groups of up to
//! [`BATCH_GROUP_LINES`]; each group is one `Service::write` (one state-lock hold, one flush),
//! with partial results, so a refused line never stops the others. The answer streams back as
//! NDJSON while the upload continues: one line per request line, in order, each
//! `{"line": N, ...the single route's answer...}` or `{"line": N, "error", "message"}`, then
//! `{"done": true, "lines", "written", "refused", "seconds"}`.
//!
//! References resolve against what the node holds when the line's group is written: a line
//! cannot act on an entry written by an earlier line of the same group.

use std::time::Duration;

use super::*;

/// Most lines written in one `Service::write` (one flush).
const BATCH_GROUP_LINES: usize = 1_000;
/// Longest accepted line.
const BATCH_LINE_BYTES_MAX: usize = 4 * 1024;

/// One line of a batch: the body of a single write route, tagged with `"op"`.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum BatchLine {
    Enrol(EnrolRequest),
    Birth(EnrolRequest),
    Permit(PermitRequest),
    Revoke(PermitRef),
    Deregister(DeregisterRequest),
    Refuse(RefuseRequest),
    Register(RegisterRequest),
    Cancel(CancelRequest),
    HeadChange(HeadChangeRequest),
}

/// A line checked as far as possible without the state (ID numbers, vocabularies, digests):
/// what is left needs the state lock (references, household numbers).
enum Prepared {
    Enrol {
        /// A birth's date (`born_on`), or `None` for an enrolment.
        birth: Option<u32>,
        person: PersonTag,
        household: Option<u64>,
        relation: Option<String>,
        wait_ms: Option<u64>,
        /// The final claim on the person, obtained before the group is written.
        claim: Option<EntryRef>,
    },
    Permit(PermitFields),
    Revoke {
        permit: String,
    },
    Deregister {
        permit: String,
        new_head: Option<PersonTag>,
    },
    Refuse {
        permit: String,
        reason: RefusalReason,
    },
    Register {
        deregistration: String,
        household: Option<u64>,
        relation: Option<String>,
        wait: Option<Duration>,
    },
    Cancel {
        person: PersonTag,
        reason: CancellationReason,
        new_head: Option<PersonTag>,
    },
    HeadChange {
        household: u64,
        new_head: PersonTag,
    },
}

/// Parses and checks one line (the same checks, in the same order, as the single routes).
fn prepare(api: &Api, line: &[u8]) -> ApiResult<Prepared> {
    let parsed: BatchLine = serde_json::from_slice(line).map_err(|e| {
        let text = e.to_string();
        if text.starts_with("missing field `op`") || text.starts_with("unknown variant") {
            ApiError::bad(
                "bad_op",
                format!(
                    "{text}; \"op\" names the write: enrol, birth, permit, revoke, deregister, \
                     refuse, register, cancel, head-change"
                ),
            )
        } else {
            ApiError::bad(
                "bad_json",
                format!("line is not valid JSON for its op: {e}"),
            )
        }
    })?;
    let tag = |text: &str| parse_id(text).map(|id| api.service.tag(&id));
    Ok(match parsed {
        BatchLine::Enrol(r) => Prepared::Enrol {
            birth: None,
            person: tag(&r.person)?,
            household: r.household,
            relation: r.relation,
            wait_ms: r.wait_ms,
            claim: None,
        },
        BatchLine::Birth(r) => {
            let id = parse_id(&r.person)?;
            Prepared::Enrol {
                birth: Some(born_on(&id)),
                person: api.service.tag(&id),
                household: r.household,
                relation: r.relation,
                wait_ms: r.wait_ms,
                claim: None,
            }
        }
        BatchLine::Permit(r) => Prepared::Permit(PermitFields::parse(api, r)?),
        BatchLine::Revoke(r) => Prepared::Revoke { permit: r.permit },
        BatchLine::Deregister(r) => Prepared::Deregister {
            new_head: r.new_head.as_deref().map(tag).transpose()?,
            permit: r.permit,
        },
        BatchLine::Refuse(r) => Prepared::Refuse {
            reason: parse_vocab(&r.reason, RefusalReason::parse)?,
            permit: r.permit,
        },
        BatchLine::Register(r) => Prepared::Register {
            wait: r
                .wait_ms
                .filter(|&ms| ms > 0)
                .map(|ms| Duration::from_millis(ms.min(REGISTER_WAIT_MAX_MS))),
            deregistration: r.deregistration,
            household: r.household,
            relation: r.relation,
        },
        BatchLine::Cancel(r) => Prepared::Cancel {
            person: tag(&r.person)?,
            reason: parse_vocab(&r.reason, CancellationReason::parse)?,
            new_head: r.new_head.as_deref().map(tag).transpose()?,
        },
        BatchLine::HeadChange(r) => Prepared::HeadChange {
            new_head: tag(&r.new_head)?,
            household: r.household,
        },
    })
}

/// The body of a prepared line, against the current state (under the state lock).
fn body(s: &mut State, p: Prepared) -> Result<Body, WriteError> {
    Ok(match p {
        Prepared::Enrol {
            birth,
            person,
            household,
            relation,
            claim,
            ..
        } => {
            let placement = placement(s, household, relation.as_deref())?;
            let claim = claim.expect("claims are obtained before the group is written");
            match birth {
                Some(born_on) => Body::Birth {
                    person,
                    placement,
                    claim,
                    born_on,
                },
                None => Body::Enrol {
                    person,
                    placement,
                    claim,
                },
            }
        }
        Prepared::Permit(fields) => fields.body(s)?,
        Prepared::Revoke { permit } => Body::Revocation {
            permit: resolve_ref(&s.ledger, &permit)?,
        },
        Prepared::Deregister { permit, new_head } => {
            let permit = resolve_ref(&s.ledger, &permit)?;
            Body::Deregistration {
                person: permit_person(&s.ledger, permit),
                permit,
                new_head,
            }
        }
        Prepared::Refuse { permit, reason } => Body::Refusal {
            permit: resolve_ref(&s.ledger, &permit)?,
            reason,
        },
        Prepared::Register {
            deregistration,
            household,
            relation,
            ..
        } => registration_body(s, &deregistration, household, relation.as_deref())?,
        Prepared::Cancel {
            person,
            reason,
            new_head,
        } => Body::Cancellation {
            person,
            reason,
            new_head,
        },
        Prepared::HeadChange {
            household,
            new_head,
        } => Body::HeadChange {
            household: HouseholdId(household),
            new_head,
        },
    })
}

/// The answer line of a written entry: the single route's answer plus `line`.
fn written_line(line: u64, w: &Written, valid_days: Option<u64>) -> Value {
    let mut v = written_json(w);
    v["line"] = json!(line);
    match &w.entry.entry().body {
        Body::Enrol {
            placement, claim, ..
        }
        | Body::Birth {
            placement, claim, ..
        } => {
            v["household"] = json!(placement.household.0);
            v["claim"] = json!(claim.to_string());
        }
        Body::Registration { placement, .. } => {
            v["household"] = json!(placement.household.0);
        }
        Body::Permit { .. } => v["valid_days"] = json!(valid_days),
        _ => {}
    }
    v
}

fn error_line(line: u64, e: ApiError) -> Value {
    json!({"line": line, "error": e.error, "message": e.message})
}

/// Writes one group; returns its answer lines (NDJSON, in line order) and how many lines were
/// written and refused.
async fn write_group(api: &Api, group: Vec<(u64, ApiResult<Prepared>)>) -> (Vec<u8>, u64, u64) {
    let mut answers: Vec<(u64, Value)> = Vec::with_capacity(group.len());
    let mut prepared = Vec::with_capacity(group.len());
    for (line, p) in group {
        match p {
            Ok(p) => prepared.push((line, p)),
            Err(e) => answers.push((line, error_line(line, e))),
        }
    }
    // Enrolments and births first get their claims, all at once (each line waits at most its
    // own time); a line whose claim is refused or not final is answered with why.
    let asks: Vec<(PersonTag, Duration)> = prepared
        .iter()
        .filter_map(|(_, p)| match p {
            Prepared::Enrol {
                person, wait_ms, ..
            } => Some((*person, claim_wait(*wait_ms))),
            _ => None,
        })
        .collect();
    if !asks.is_empty() {
        let longest = asks.iter().map(|(_, w)| *w).max().unwrap_or_default();
        let persons: Vec<PersonTag> = asks.iter().map(|(p, _)| *p).collect();
        let mut claims = api
            .service
            .obtain_claims(&persons, longest)
            .await
            .into_iter();
        let mut kept = Vec::with_capacity(prepared.len());
        for (line, mut p) in prepared {
            if let Prepared::Enrol { claim, .. } = &mut p {
                match claims.next().expect("one result per enrolment") {
                    Ok(c) => *claim = Some(c),
                    Err(e) => {
                        answers.push((line, error_line(line, e.into())));
                        continue;
                    }
                }
            }
            kept.push((line, p));
        }
        prepared = kept;
    }
    // Registrations that asked to wait for their deregistration to become final: wait for all
    // of them at once, each at most its own time; the write then decides (refusing what is
    // still not final).
    let waits: Vec<(EntryRef, Duration)> = {
        let mut waits = Vec::new();
        let mut state = None;
        for (_, p) in &prepared {
            if let Prepared::Register {
                deregistration,
                wait: Some(wait),
                ..
            } = p
            {
                // A full reference may name an entry not replicated here yet: wait for it too.
                let r = match deregistration.trim().parse::<EntryRef>() {
                    Ok(full) => Some(full),
                    Err(_) => {
                        if state.is_none() {
                            state = Some(api.service.state().await);
                        }
                        resolve_ref(&state.as_ref().expect("locked").ledger, deregistration).ok()
                    }
                };
                if let Some(r) = r {
                    waits.push((r, *wait));
                }
            }
        }
        waits
    };
    if !waits.is_empty() {
        futures::future::join_all(
            waits
                .iter()
                .map(|(r, wait)| api.service.wait_final(r, *wait)),
        )
        .await;
    }
    let mut kept: Vec<(u64, Option<u64>)> = Vec::with_capacity(prepared.len());
    let mut refused_early: Vec<(u64, WriteError)> = Vec::new();
    let result = if prepared.is_empty() {
        Ok(Vec::new())
    } else {
        api.service
            .write(|s| {
                let mut bodies = Vec::with_capacity(prepared.len());
                for (line, p) in prepared {
                    let valid_days = match &p {
                        Prepared::Permit(fields) => Some(fields.valid_days),
                        _ => None,
                    };
                    match body(s, p) {
                        Ok(b) => {
                            kept.push((line, valid_days));
                            bodies.push(b);
                        }
                        Err(e) => refused_early.push((line, e)),
                    }
                }
                Ok(bodies)
            })
            .await
    };
    for (line, e) in refused_early {
        answers.push((line, error_line(line, e.into())));
    }
    let mut written = 0;
    match result {
        Ok(results) => {
            for ((line, valid_days), r) in kept.into_iter().zip(results) {
                let v = match r {
                    Ok(w) => {
                        written += 1;
                        written_line(line, &w, valid_days)
                    }
                    Err(e) => error_line(line, e.into()),
                };
                answers.push((line, v));
            }
        }
        Err(e) => {
            let e = ApiError::from(e);
            for (line, _) in kept {
                answers.push((
                    line,
                    error_line(line, ApiError::new(e.status, &e.error, &e.message)),
                ));
            }
        }
    }
    answers.sort_by_key(|(line, _)| *line);
    let refused = answers.len() as u64 - written;
    let mut out = Vec::with_capacity(answers.len() * 256);
    for (_, v) in answers {
        serde_json::to_writer(&mut out, &v).expect("JSON values serialize");
        out.push(b'\n');
    }
    (out, written, refused)
}

/// `POST /v1/batch`.
pub(super) async fn batch(
    AxumState(api): AxumState<Api>,
    headers: HeaderMap,
    body: HttpBody,
) -> Response {
    if let Some(refused) = lines::declared_too_large(&headers) {
        return refused.into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let send = |bytes: Vec<u8>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Ok(Bytes::from(bytes))).await;
            }
        };
        let value_line = |v: Value| {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            line
        };
        let started = Instant::now();
        let mut lines = lines::Lines::of_body(body, BATCH_LINE_BYTES_MAX);
        let mut group: Vec<(u64, ApiResult<Prepared>)> = Vec::new();
        let (mut written, mut refused) = (0u64, 0u64);
        loop {
            let line = match lines.next().await {
                Ok(line) => line,
                Err(e) => {
                    send(value_line(e.json())).await;
                    return;
                }
            };
            let finished = line.is_none();
            if let Some(line) = line {
                group.push(lines::parse_line(line, BATCH_LINE_BYTES_MAX, |text| {
                    prepare(&api, text.as_bytes())
                }));
            }
            if group.len() >= BATCH_GROUP_LINES || (finished && !group.is_empty()) {
                let (out, ok, bad) = write_group(&api, std::mem::take(&mut group)).await;
                written += ok;
                refused += bad;
                send(out).await;
            }
            if finished {
                break;
            }
        }
        send(value_line(
            json!({"done": true, "lines": lines.count(), "written": written, "refused": refused,
            "seconds": started.elapsed().as_secs_f64()}),
        ))
        .await;
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(HttpBody::from_stream(tokio_stream_from(rx)))
        .expect("valid response")
}

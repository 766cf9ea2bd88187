//! The configuration routes (membership epochs, `hukou_protocol::config`):
//!
//! - `GET /v1/config`: the epoch in force (number, hash), the network, members with their key
//!   fingerprints and addresses, quorum, administrators and threshold, calendar years, deadline
//!   rules, cuts, and the history of every epoch with its changes in words;
//! - `GET /v1/config/log`: every update after the genesis, hex-encoded, in epoch order (what a
//!   bureau added later needs: `hukou config fetch`);
//! - `POST /v1/config` (token): `{"signed_update": HEX}` takes an update in
//!   (`Service::apply_config`); answers `{"epoch", "hash", "new", "truncated", "released"}`, or
//!   `{"error": "config_*", "message"}` (409 for a refused update, 400 for one that does not
//!   decode). Its body may be up to [`CONFIG_BODY_BYTES_MAX`] (a calendar year or a hundred new
//!   members do not fit the 8 KiB of the other routes).
//! - `POST /v1/config/draft` (no token: it changes nothing): `{"update": HEX}` (an unsigned proposal,
//!   `SignedUpdate::encode`) answers which logs' witness committees it would seat anew
//!   (`reseated`) and, for each that this node holds a certificate of, that certificate
//!   (`anchors`, hex): `hukou config propose` adds them as `Change::Anchor`, so the new
//!   committees take over from the last certified size instead of from 0.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use hukou_protocol::checkpoint::Certificate;
use hukou_protocol::committee::Committees;
use hukou_protocol::config::{EpochConfig, Epochs, SignedUpdate};
use hukou_protocol::limits::CONFIG_UPDATE_BYTES_MAX;
use serde_json::{Value, json};

use super::{Api, ApiError, ApiResult};
use crate::cli::config::describe;
use crate::service::ConfigApplyError;

/// Largest body of `POST /v1/config`: the hex of the largest update, and room for the JSON.
pub const CONFIG_BODY_BYTES_MAX: usize = 2 * CONFIG_UPDATE_BYTES_MAX + 1024;

/// A key's fingerprint as the console and CLI show it: the first 8 bytes, hex.
pub fn fingerprint(key: &[u8; 32]) -> String {
    hex::encode(&key[..8])
}

/// The configuration as JSON (also the console's network page).
pub fn config_json(epochs: &Epochs) -> Value {
    let latest = epochs.latest();
    let members: Vec<Value> = latest
        .membership
        .members()
        .map(|m| {
            json!({
                "bureau": m.code,
                "name": m.name,
                "key": hex::encode(m.key.to_bytes()),
                "key_fingerprint": fingerprint(&m.key.to_bytes()),
                "addresses": latest.addresses.get(&m.code).cloned().unwrap_or_default(),
                "keys_before": epochs.keys_of(m.code).iter()
                    .filter(|(k, _)| *k != m.key)
                    .map(|(k, revoked)| json!({"fingerprint": fingerprint(&k.to_bytes()), "revoked": revoked}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let cuts: Vec<Value> = epochs
        .all_cuts()
        .map(|c| json!({"bureau": c.log, "from_seq": c.from_seq.0, "epoch": c.epoch, "kind": c.kind.name()}))
        .collect();
    let history: Vec<Value> = epochs.all().map(|e| epoch_json(epochs, e)).collect();
    json!({
        "network": latest.membership.network_name(),
        "network_id": latest.membership.network().to_hex(),
        "epoch": latest.epoch,
        "hash": latest.hash.to_hex(),
        "quorum": latest.membership.quorum(),
        "members": members,
        "administrators": latest.administrators.iter().map(|k| fingerprint(&k.to_bytes())).collect::<Vec<_>>(),
        "admin_threshold": latest.threshold,
        "calendar_years": latest.calendar.years(),
        "deadlines": {
            "answer_working_days": latest.deadlines.answer_working_days,
            "registration_working_days": latest.deadlines.registration_working_days,
        },
        "cuts": cuts,
        "committees": committees_json(latest),
        "history": history,
    })
}

/// Who witnesses each log in an epoch.
pub fn committees_json(e: &EpochConfig) -> Value {
    match &*e.committees {
        Committees::Everyone => json!({
            "mode": "everyone",
            "quorum": e.membership.quorum(),
        }),
        Committees::Drawn { size, by_log } => json!({
            "mode": "drawn",
            "size": size,
            "province_cap": hukou_protocol::committee::province_cap(*size),
            "logs": by_log.iter().map(|(log, c)| json!({
                "bureau": log,
                "witnesses": c.members,
                "quorum": c.quorum,
                "seated": c.seated,
                "anchor_size": c.anchor.size,
                "spread": c.spread,
            })).collect::<Vec<_>>(),
        }),
    }
}

fn epoch_json(epochs: &Epochs, e: &EpochConfig) -> Value {
    let update = (e.epoch > 0).then(|| &epochs.updates()[e.epoch as usize - 1]);
    json!({
        "epoch": e.epoch,
        "hash": e.hash.to_hex(),
        "time_ms": e.time_ms,
        "members": e.membership.len(),
        "changes": update.map_or_else(
            || vec![json!({"change": "genesis", "what": "the genesis"})],
            |u| u.update.changes.iter().map(|c| json!({"change": c.name(), "what": describe(c)})).collect(),
        ),
        "signed_by": update.map_or_else(Vec::new, |u| u.signatures.iter().map(|s| fingerprint(&s.admin)).collect()),
    })
}

/// `GET /v1/config`.
pub async fn show(AxumState(api): AxumState<Api>) -> Json<Value> {
    Json(config_json(&api.service.epochs()))
}

/// `GET /v1/config/log`.
pub async fn log(AxumState(api): AxumState<Api>) -> Json<Value> {
    let epochs = api.service.epochs();
    Json(json!({
        "network": epochs.latest().membership.network_name(),
        "epoch": epochs.latest().epoch,
        "updates": epochs.updates().iter().map(|u| hex::encode(u.encode())).collect::<Vec<_>>(),
    }))
}

/// `POST /v1/config/draft`.
pub async fn draft(AxumState(api): AxumState<Api>, body: Bytes) -> ApiResult<Json<Value>> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("request body is not valid JSON for this call: {e}"),
        )
    })?;
    let update = value["update"]
        .as_str()
        .and_then(|t| hex::decode(t.trim()).ok())
        .and_then(|b| SignedUpdate::decode(&b).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "config_undecodable",
                "expected {\"update\": HEX} of a configuration update (hukou config propose)",
            )
        })?;
    let epochs = api.service.epochs();
    let draft = epochs
        .draft(&update.update)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.name(), e.to_string()))?;
    let reseated: Vec<_> = match &*draft.committees {
        Committees::Everyone => Vec::new(),
        Committees::Drawn { by_log, .. } => by_log
            .iter()
            .filter(|(_, c)| c.seated == draft.epoch)
            .map(|(log, _)| *log)
            .collect(),
    };
    let mut anchors = Vec::new();
    for log in &reseated {
        let held = api.service.store().latest_certificate(*log).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_error",
                e.to_string(),
            )
        })?;
        if let Some((_, bytes)) = held
            && Certificate::decode(&bytes).is_ok_and(|c| c.verify(&epochs).is_ok())
        {
            anchors.push(hex::encode(bytes));
        }
    }
    Ok(Json(json!({
        "epoch": draft.epoch,
        "reseated": reseated,
        "anchors": anchors,
    })))
}

/// `POST /v1/config`.
pub async fn submit(AxumState(api): AxumState<Api>, body: Bytes) -> ApiResult<Json<Value>> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("request body is not valid JSON for this call: {e}"),
        )
    })?;
    let Some(text) = value["signed_update"].as_str() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "expected {\"signed_update\": HEX} (hukou config submit)",
        ));
    };
    let update = hex::decode(text.trim())
        .map_err(|e| e.to_string())
        .and_then(|b| SignedUpdate::decode(&b).map_err(|e| e.to_string()))
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "config_undecodable",
                format!("signed_update is not a signed configuration update: {e}"),
            )
        })?;
    match api.service.apply_config(update).await {
        Ok(applied) => {
            let epochs = api.service.epochs();
            let hash = epochs
                .get(applied.epoch)
                .map(|e| e.hash.to_hex())
                .unwrap_or_default();
            Ok(Json(json!({
                "epoch": applied.epoch,
                "hash": hash,
                "new": applied.new,
                "truncated": applied.truncated.iter()
                    .map(|(log, kept, held)| json!({"bureau": log, "kept": kept, "held": held}))
                    .collect::<Vec<_>>(),
                "released": applied.released,
            })))
        }
        Err(ConfigApplyError::Refused(e)) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.name(), e.to_string()))
        }
        Err(e @ ConfigApplyError::Store(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.name(),
            e.to_string(),
        )),
    }
}

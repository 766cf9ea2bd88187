//! The network's configuration on the console's network page (membership epochs,
//! `hukou_protocol::config`): the epoch in force and its hash, the members with their key
//! fingerprints, addresses and earlier keys, the quorum, the administrators and their threshold,
//! the published calendar years, the deadline rules, and the history of every epoch with its
//! changes in words and the administrators who signed it.
//!
//! Rendered from the node's own [`Epochs`], the same facts as `GET /v1/config`
//! (`crate::api::config::config_json`); nothing here judges an update. A key shows as its
//! fingerprint (the first 8 bytes, hex, as `hukou config show` prints it).

use std::collections::BTreeMap;

use hukou_protocol::BureauCode;
use hukou_protocol::config::{Change, EpochConfig, Epochs};
use maud::{Markup, html};

use super::{Lang, china_time};
use crate::api::config::fingerprint;

/// Hex digits of a configuration hash the page shows.
const HASH_PREFIX_CHARS: usize = 16;

/// Every bureau that was ever a member, by code, with its latest name: a change may name a
/// bureau that has since left.
fn names(epochs: &Epochs) -> BTreeMap<BureauCode, String> {
    let mut out = BTreeMap::new();
    for e in epochs.all() {
        for m in e.membership.members() {
            out.insert(m.code, m.name.clone());
        }
    }
    out
}

/// `CODE 名称`, or the code alone for a bureau never a member.
fn bureau(names: &BTreeMap<BureauCode, String>, code: BureauCode) -> String {
    match names.get(&code) {
        Some(name) => format!("{code} {name}"),
        None => code.to_string(),
    }
}

/// The years a calendar-year text declares (`years FIRST LAST`), as `2027` or `2027–2028`.
fn calendar_years(text: &str) -> Option<String> {
    let line = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("years "))?;
    let mut years = line.split_whitespace();
    let first = years.next()?;
    match years.next() {
        Some(last) if last != first => Some(format!("{first}–{last}")),
        _ => Some(first.to_string()),
    }
}

/// What the configuration names a "epoch N" in each language.
fn epoch_label(l: Lang, epoch: u32) -> String {
    match l {
        Lang::Zh => format!("第{epoch}版网络配置"),
        Lang::En => format!("Network configuration, epoch {epoch}"),
    }
}

/// One change, in the clerk's words.
pub fn describe(l: Lang, names: &BTreeMap<BureauCode, String>, change: &Change) -> String {
    let fp = |k: &[u8; 32]| fingerprint(k);
    let b = |code: BureauCode| bureau(names, code);
    match (l, change) {
        (
            Lang::Zh,
            Change::AddMember {
                code,
                name,
                key,
                addresses,
            },
        ) => format!(
            "添加成员：{code} {name}（公钥指纹 {}，地址 {}）",
            fp(key),
            if addresses.is_empty() {
                "无".to_string()
            } else {
                addresses.join(" ")
            }
        ),
        (
            Lang::En,
            Change::AddMember {
                code,
                name,
                key,
                addresses,
            },
        ) => format!(
            "add member: {code} {name} (key fingerprint {}, addresses {})",
            fp(key),
            if addresses.is_empty() {
                "none".to_string()
            } else {
                addresses.join(" ")
            }
        ),
        (Lang::Zh, Change::RotateKey { code, key }) => {
            format!("轮换密钥：{}，新公钥指纹 {}", b(*code), fp(key))
        }
        (Lang::En, Change::RotateKey { code, key }) => {
            format!("rotate key: {}, new key fingerprint {}", b(*code), fp(key))
        }
        (
            Lang::Zh,
            Change::RevokeKey {
                code,
                key,
                from_seq,
            },
        ) => format!(
            "吊销密钥（自第{}条起）：{}，新公钥指纹 {}",
            from_seq.0,
            b(*code),
            fp(key)
        ),
        (
            Lang::En,
            Change::RevokeKey {
                code,
                key,
                from_seq,
            },
        ) => format!(
            "revoke key (from seq {}): {}, new key fingerprint {}",
            from_seq.0,
            b(*code),
            fp(key)
        ),
        (
            Lang::Zh,
            Change::RetireMember {
                code,
                from_seq,
                successor,
            },
        ) => format!(
            "退出网络（由 {} 接替）：{}，日志止于第{}条之前",
            b(*successor),
            b(*code),
            from_seq.0
        ),
        (
            Lang::En,
            Change::RetireMember {
                code,
                from_seq,
                successor,
            },
        ) => format!(
            "retire (succeeded by {}): {}, its log ends before seq {}",
            b(*successor),
            b(*code),
            from_seq.0
        ),
        (Lang::Zh, Change::PublishCalendarYear { text }) => match calendar_years(text) {
            Some(years) => format!("发布{years}年工作日历"),
            None => "发布工作日历".to_string(),
        },
        (Lang::En, Change::PublishCalendarYear { text }) => match calendar_years(text) {
            Some(years) => format!("publish the {years} working-day calendar"),
            None => "publish a working-day calendar".to_string(),
        },
        (Lang::Zh, Change::SetCommittees { size }) => format!(
            "启用见证委员会：每条日志由 {size} 个成员见证（同一省份至多 {} 个），按委员会法定人数确认",
            hukou_protocol::committee::province_cap(*size as usize)
        ),
        (Lang::En, Change::SetCommittees { size }) => format!(
            "witness committees of {size} per log (at most {} of one province)",
            hukou_protocol::committee::province_cap(*size as usize)
        ),
        (l, Change::Anchor { certificate }) => {
            match hukou_protocol::checkpoint::Certificate::decode(certificate) {
                Ok(c) if l == Lang::Zh => format!(
                    "{}的新见证委员会自已确认的第{}条起接手",
                    b(c.checkpoint.log),
                    c.checkpoint.size
                ),
                Ok(c) => format!(
                    "the new committee of {} takes over from its certified size {}",
                    b(c.checkpoint.log),
                    c.checkpoint.size
                ),
                Err(_) if l == Lang::Zh => "无效的交接证书".to_string(),
                Err(_) => "an anchor that is not a certificate".to_string(),
            }
        }
        (Lang::Zh, Change::SetDeadlines(d)) => format!(
            "修改期限规则：迁出地 {} 个工作日内办理，迁入地 {} 个工作日内落户",
            d.answer_working_days, d.registration_working_days
        ),
        (Lang::En, Change::SetDeadlines(d)) => format!(
            "change deadline rules: the origin answers within {} working day(s), the destination registers within {}",
            d.answer_working_days, d.registration_working_days
        ),
        (Lang::Zh, Change::SetAdministrators { keys, threshold }) => format!(
            "修改管理员：{} 名（{}），须 {threshold} 名签署",
            keys.len(),
            keys.iter().map(fp).collect::<Vec<_>>().join("、")
        ),
        (Lang::En, Change::SetAdministrators { keys, threshold }) => format!(
            "change administrators: {} ({}), {threshold} must sign",
            keys.len(),
            keys.iter().map(fp).collect::<Vec<_>>().join(", ")
        ),
        (Lang::Zh, Change::SetQuorum { quorum }) => {
            format!("修改法定人数：证书需 {quorum} 个联署")
        }
        (Lang::En, Change::SetQuorum { quorum }) => {
            format!("change quorum: a certificate needs {quorum} cosignatures")
        }
        (Lang::Zh, Change::SetAddresses { code, addresses }) => {
            format!("修改地址：{}，{}", b(*code), addresses.join(" "))
        }
        (Lang::En, Change::SetAddresses { code, addresses }) => {
            format!("change addresses: {}, {}", b(*code), addresses.join(" "))
        }
    }
}

/// The changes that made epoch `e` (the genesis for epoch 0), and the fingerprints of the
/// administrators who signed them.
fn changes_of(
    l: Lang,
    epochs: &Epochs,
    names: &BTreeMap<BureauCode, String>,
    e: &EpochConfig,
) -> (Vec<String>, Vec<String>) {
    let Some(update) = e
        .epoch
        .checked_sub(1)
        .and_then(|i| epochs.updates().get(i as usize))
    else {
        return (
            vec![l.t("创世（网络成立）", "the genesis").to_string()],
            Vec::new(),
        );
    };
    (
        update
            .update
            .changes
            .iter()
            .map(|c| describe(l, names, c))
            .collect(),
        update
            .signatures
            .iter()
            .map(|s| fingerprint(&s.admin))
            .collect(),
    )
}

/// The configuration section of the network page.
pub fn section(l: Lang, epochs: &Epochs) -> Markup {
    let latest = epochs.latest();
    let names = names(epochs);
    let hash = latest.hash.to_hex();
    let years: Vec<String> = latest
        .calendar
        .years()
        .iter()
        .map(|y| y.to_string())
        .collect();
    let d = latest.deadlines;
    html! {
        section #config {
            h2 #config-epoch data-epoch=(latest.epoch) {
                (epoch_label(l, latest.epoch))
                " " code #config-hash title=(hash) { (&hash[..HASH_PREFIX_CHARS]) "…" }
            }
            dl.facts {
                dt { (l.t("法定人数", "Quorum")) }
                dd #config-quorum data-quorum=(latest.membership.quorum()) {
                    (latest.membership.quorum()) " / " (latest.membership.len())
                    (l.t("（证书所需联署数 / 成员数）", " (cosignatures a certificate needs / members)"))
                }
                dt { (l.t("管理员", "Administrators")) }
                dd #config-administrators data-threshold=(latest.threshold) {
                    @if latest.administrators.is_empty() {
                        (l.t("无（创世未指定管理员，不能修改配置）", "none (the genesis names none: the configuration cannot change)"))
                    } @else {
                        @match l {
                            Lang::Zh => { "须 " (latest.threshold) " / " (latest.administrators.len()) " 名签署：" }
                            Lang::En => { (latest.threshold) " of " (latest.administrators.len()) " sign: " }
                        }
                        @for k in &latest.administrators {
                            code.fingerprint { (fingerprint(&k.to_bytes())) } " "
                        }
                    }
                }
                dt { (l.t("已发布工作日历年份", "Published calendar years")) }
                dd #config-calendar-years { (years.join(l.t("、", ", "))) }
                dt { (l.t("期限规则", "Deadline rules")) }
                dd #config-deadlines {
                    @match l {
                        Lang::Zh => { "迁出地收到准迁证后 " (d.answer_working_days) " 个工作日内办理；迁入地在迁出终局后 "
                                      (d.registration_working_days) " 个工作日内落户" }
                        Lang::En => { "the origin answers within " (d.answer_working_days) " working day(s) of the permit; the destination registers within "
                                      (d.registration_working_days) " of the final deregistration" }
                    }
                }
            }
            h3 { (l.t("成员", "Members")) }
            table #config-members {
                thead { tr {
                    th { (l.t("代码", "Code")) }
                    th { (l.t("名称", "Name")) }
                    th { (l.t("公钥指纹", "Key fingerprint")) }
                    th { (l.t("地址", "Addresses")) }
                    th { (l.t("以前的公钥", "Earlier keys")) }
                } }
                tbody {
                    @for m in latest.membership.members() {
                        @let current = m.key;
                        tr data-bureau=(m.code) {
                            td { code { (m.code) } }
                            td { (m.name) }
                            td { code.fingerprint { (fingerprint(&m.key.to_bytes())) } }
                            td { @for a in latest.addresses.get(&m.code).into_iter().flatten() { code { (a) } " " } }
                            td.keys-before {
                                @for (k, revoked) in epochs.keys_of(m.code).into_iter().filter(|(k, _)| *k != current) {
                                    span.key-before data-revoked=(revoked) {
                                        code.fingerprint { (fingerprint(&k.to_bytes())) }
                                        " "
                                        @if revoked { span.badge.pending { (l.t("已吊销", "revoked")) } }
                                        @else { span.badge { (l.t("已轮换", "rotated")) } }
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
            h3 { (l.t("配置历史", "History")) }
            table #config-history {
                thead { tr {
                    th { (l.t("版本", "Epoch")) }
                    th { (l.t("提出时间", "Proposed")) }
                    th { (l.t("变更", "Changes")) }
                    th { (l.t("签署的管理员（公钥指纹）", "Signed by (administrator fingerprints)")) }
                } }
                tbody {
                    @for e in epochs.all().collect::<Vec<_>>().into_iter().rev() {
                        @let (changes, signers) = changes_of(l, epochs, &names, e);
                        tr data-epoch=(e.epoch) {
                            td { (epoch_label(l, e.epoch)) br; code title=(e.hash.to_hex()) { (&e.hash.to_hex()[..HASH_PREFIX_CHARS]) "…" } }
                            td { @if e.epoch == 0 { "—" } @else { (china_time(e.time_ms)) } }
                            td { ul.changes { @for c in &changes { li { (c) } } } }
                            td { @if signers.is_empty() { "—" } @else { @for s in &signers { code.fingerprint { (s) } " " } } }
                        }
                    }
                }
            }
            p.note { (l.t("配置的每一版由上一版的管理员按门限签署，各节点按同一规则核验后生效；条目序号从 0 起算，与记录编号（局代码:序号）一致。命令行：hukou config show。",
                          "Each epoch is signed by the threshold of the previous epoch's administrators and judged by every node by the same rule; log positions count from 0, as in references (CODE:SEQ). Command line: hukou config show.")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use hukou_protocol::calendar::Calendar;
    use hukou_protocol::config::{ConfigUpdate, Deadlines, GenesisConfig, SignedUpdate};
    use hukou_protocol::membership::{Member, Membership};
    use hukou_protocol::types::Seq;

    const CODES: [u32; 4] = [310104, 320506, 330502, 340100];
    const NEWCOMER: u32 = 320102;

    fn code(c: u32) -> BureauCode {
        BureauCode::new(c).expect("a valid code")
    }

    fn member_key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    fn admin_key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[0xa0 + i; 32])
    }

    fn pk(k: &SigningKey) -> [u8; 32] {
        k.verifying_key().to_bytes()
    }

    fn genesis() -> Epochs {
        let members = CODES.iter().enumerate().map(|(i, &c)| Member {
            code: code(c),
            name: format!("局{c}"),
            key: member_key(i as u8).verifying_key(),
        });
        Epochs::genesis(GenesisConfig {
            membership: Membership::new("ui-test", members, 3).expect("membership"),
            addresses: CODES
                .iter()
                .enumerate()
                .map(|(i, &c)| (code(c), vec![format!("/ip4/127.0.0.1/tcp/{}", 4101 + i)]))
                .collect(),
            administrators: (0..3).map(|i| admin_key(i).verifying_key()).collect(),
            threshold: 2,
            hash: [0x99; 32],
            calendar: Calendar::prc().clone(),
        })
    }

    /// Pushes `changes` as the next epoch, signed by administrators 0 and 2.
    fn advance(epochs: &mut Epochs, changes: Vec<Change>) {
        let latest = epochs.latest();
        let mut signed = SignedUpdate::unsigned(ConfigUpdate {
            network: epochs.network(),
            epoch: latest.epoch + 1,
            prev: latest.hash,
            time_ms: 1_795_536_000_000,
            changes,
        });
        signed.sign(&admin_key(0));
        signed.sign(&admin_key(2));
        epochs.push(signed).expect("a valid update");
    }

    /// The epochs of a network that added a bureau, rotated one key, revoked another, retired a
    /// bureau and published a calendar year.
    fn history() -> Epochs {
        let mut epochs = genesis();
        advance(
            &mut epochs,
            vec![Change::AddMember {
                code: code(NEWCOMER),
                name: "南京市公安局玄武分局".into(),
                key: pk(&member_key(20)),
                addresses: vec!["/ip4/127.0.0.1/tcp/4300".into()],
            }],
        );
        advance(
            &mut epochs,
            vec![Change::RotateKey {
                code: code(CODES[0]),
                key: pk(&member_key(21)),
            }],
        );
        advance(
            &mut epochs,
            vec![Change::RevokeKey {
                code: code(CODES[1]),
                key: pk(&member_key(22)),
                from_seq: Seq(7),
            }],
        );
        advance(
            &mut epochs,
            vec![
                Change::RetireMember {
                    code: code(CODES[3]),
                    from_seq: Seq(3),
                    successor: code(CODES[2]),
                },
                Change::SetDeadlines(Deadlines {
                    answer_working_days: 2,
                    registration_working_days: 3,
                }),
                Change::PublishCalendarYear {
                    text: "years 2027 2027\n2027-01-01 holiday 元旦\n".into(),
                },
            ],
        );
        epochs
    }

    #[test]
    fn the_network_page_shows_the_epoch_members_keys_and_history_in_chinese() {
        let epochs = history();
        let html = section(Lang::Zh, &epochs).into_string();
        let hash = epochs.latest().hash.to_hex();
        for expected in [
            "第4版网络配置".to_string(),
            format!("{}…", &hash[..16]),
            // Members now: three of the genesis (340100 retired) and the newcomer.
            "南京市公安局玄武分局".to_string(),
            fingerprint(&pk(&member_key(20))),
            "/ip4/127.0.0.1/tcp/4300".to_string(),
            // 310104's first key was rotated, 320506's revoked.
            fingerprint(&pk(&member_key(0))),
            "已轮换".to_string(),
            fingerprint(&pk(&member_key(1))),
            "已吊销".to_string(),
            "须 2 / 3 名签署".to_string(),
            fingerprint(&pk(&admin_key(0))),
            "3 / 4".to_string(),
            "2025、2026、2027".to_string(),
            "迁出地收到准迁证后 2 个工作日内办理；迁入地在迁出终局后 3 个工作日内落户".to_string(),
            // The history, each change in words.
            "创世（网络成立）".to_string(),
            "添加成员：320102 南京市公安局玄武分局".to_string(),
            format!(
                "轮换密钥：310104 局310104，新公钥指纹 {}",
                fingerprint(&pk(&member_key(21)))
            ),
            "吊销密钥（自第7条起）：320506 局320506".to_string(),
            "退出网络（由 330502 局330502 接替）：340100 局340100，日志止于第3条之前".to_string(),
            "发布2027年工作日历".to_string(),
            "修改期限规则：迁出地 2 个工作日内办理，迁入地 3 个工作日内落户".to_string(),
            fingerprint(&pk(&admin_key(2))),
        ] {
            assert!(html.contains(&expected), "missing {expected:?} in\n{html}");
        }
        // The retired bureau is no member any more; the earlier keys of a member sit in its row.
        assert!(!html.contains("<tr data-bureau=\"340100\">"), "{html}");
        let row_310104 = html
            .split("<tr data-bureau=\"310104\">")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .expect("the row of 310104");
        assert!(row_310104.contains(&fingerprint(&pk(&member_key(0)))));
        assert!(row_310104.contains("已轮换"));
        assert!(!row_310104.contains("已吊销"));
        // Newest epoch first in the history.
        let newest = html.find("<tr data-epoch=\"4\">").expect("epoch 4");
        let genesis = html.find("<tr data-epoch=\"0\">").expect("epoch 0");
        assert!(newest < genesis);
    }

    #[test]
    fn every_change_has_its_chinese_words() {
        let names = names(&genesis());
        let fp = fingerprint(&pk(&admin_key(1)));
        let cases = [
            (
                Change::SetAdministrators {
                    keys: vec![pk(&admin_key(1))],
                    threshold: 1,
                },
                format!("修改管理员：1 名（{fp}），须 1 名签署"),
            ),
            (
                Change::SetQuorum { quorum: 4 },
                "修改法定人数：证书需 4 个联署".to_string(),
            ),
            (
                Change::SetAddresses {
                    code: code(CODES[0]),
                    addresses: vec!["/ip4/10.0.0.1/tcp/4100".into()],
                },
                "修改地址：310104 局310104，/ip4/10.0.0.1/tcp/4100".to_string(),
            ),
            (
                Change::PublishCalendarYear {
                    text: "# notice\nyears 2027 2028\n".into(),
                },
                "发布2027–2028年工作日历".to_string(),
            ),
        ];
        for (change, words) in cases {
            assert_eq!(describe(Lang::Zh, &names, &change), words);
        }
    }

    #[test]
    fn a_genesis_alone_is_epoch_0_with_no_signers() {
        let html = section(Lang::Zh, &genesis()).into_string();
        assert!(html.contains("第0版网络配置"), "{html}");
        assert!(html.contains("创世（网络成立）"), "{html}");
        assert!(
            !html.contains("已轮换") && !html.contains("已吊销"),
            "{html}"
        );
        let en = section(Lang::En, &genesis()).into_string();
        assert!(en.contains("Network configuration, epoch 0"), "{en}");
    }
}

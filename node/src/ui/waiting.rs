//! Why a step is waiting, in the console: a log's committee lacks cosignatures
//! ([`crate::finality::Waiting`]). Shown by the window when a registration or enrolment is
//! refused as not final, and by the network page as 「待确认的日志」.

use maud::{Markup, html};

use super::{Lang, china_time};
use crate::finality::{Waiting, WitnessHeard, clock_china};

/// Whether it is connected, and since when it has not answered (or never, since this node
/// started): 「未连接，自 12:03 起无应答」.
fn heard_text(l: Lang, w: &WitnessHeard) -> String {
    let link = if w.connected {
        l.t("已连接", "connected")
    } else {
        l.t("未连接", "not connected")
    };
    let heard = match (w.last_heard_ms, l) {
        (Some(t), Lang::Zh) => format!("自 {} 起无应答", &clock_china(t)[..5]),
        (Some(t), Lang::En) => format!("no answer since {}", &clock_china(t)[..5]),
        (None, Lang::Zh) => "本节点启动以来未收到其联署".to_string(),
        (None, Lang::En) => "no cosignature from it since this node started".to_string(),
    };
    match l {
        Lang::Zh => format!("（{link}，{heard}）"),
        Lang::En => format!(" ({link}, {heard})"),
    }
}

fn bureau_label(name: &str, code: impl std::fmt::Display) -> String {
    if name.is_empty() {
        code.to_string()
    } else {
        name.to_string()
    }
}

/// One sentence: 「合肥市公安局日志的见证委员会需 3 名联署，已有 1 名；缺少 湖州市公安局吴兴分局（未连接，
/// 自 12:03 起无应答）；自 12:02 起等待。」
pub fn sentence(l: Lang, w: &Waiting) -> String {
    let log = bureau_label(&w.log_name, w.log);
    let missing: Vec<String> = w
        .missing
        .iter()
        .map(|m| format!("{}{}", bureau_label(&m.name, m.bureau), heard_text(l, m)))
        .collect();
    let since = &clock_china(w.since_ms)[..5];
    match l {
        Lang::Zh => format!(
            "{log}日志的见证委员会需 {} 名联署，已有 {} 名；缺少 {}；自 {since} 起等待。",
            w.quorum,
            w.cosigned.len(),
            missing.join("、")
        ),
        Lang::En => format!(
            "the witness committee of {log}'s log needs {} cosignatures and has {}; missing: {}; waiting since {since}.",
            w.quorum,
            w.cosigned.len(),
            missing.join(", ")
        ),
    }
}

/// The window's note on a refused registration (`deregistration`) or enrolment (claim).
pub fn note(l: Lang, w: &Waiting, deregistration: bool) -> Markup {
    let heading = match (deregistration, l) {
        (true, Lang::Zh) => "迁出尚未最终确认：",
        (true, Lang::En) => "The deregistration is not final yet: ",
        (false, Lang::Zh) => "认领尚未最终确认：",
        (false, Lang::En) => "The claim is not final yet: ",
    };
    html! {
        p #waiting.note data-log=(w.log) {
            strong { (heading) } (sentence(l, w))
        }
        (details(l, w))
    }
}

/// The committee of a waiting log, member by member.
fn details(l: Lang, w: &Waiting) -> Markup {
    html! {
        ul.waiting-committee {
            @for code in &w.committee {
                @if w.cosigned.contains(code) {
                    li data-bureau=(code) data-cosigned="true" { code { (code) } " " (l.t("已联署", "cosigned")) }
                } @else if let Some(m) = w.missing.iter().find(|m| m.bureau == *code) {
                    li data-bureau=(code) data-cosigned="false" data-connected=(m.connected) {
                        code { (code) } " " (bureau_label(&m.name, m.bureau)) (heard_text(l, m))
                    }
                }
            }
        }
    }
}

/// The network page's 「待确认的日志」: each waiting log and every member's last cosignature;
/// nothing when nothing waits.
pub fn section(l: Lang, waiting: &[Waiting], witnesses: &[WitnessHeard]) -> Markup {
    html! {
        @if !waiting.is_empty() {
            section #waiting-logs {
                h2 { (l.t("待确认的日志", "Logs waiting for finality")) }
                table {
                    thead { tr {
                        th { (l.t("日志", "Log")) }
                        th.num { (l.t("检查点大小", "Checkpoint size")) }
                        th.num { (l.t("已终局", "Final")) }
                        th { (l.t("等待起始", "Waiting since")) }
                        th.num { (l.t("联署", "Cosignatures")) }
                        th { (l.t("缺少", "Missing")) }
                    } }
                    tbody {
                        @for w in waiting {
                            tr data-log=(w.log) {
                                td { code { (w.log) } " " (w.log_name) }
                                td.num { (w.size) }
                                td.num { (w.final_size) }
                                td { (china_time(w.since_ms)) }
                                td.num { (w.cosigned.len()) " / " (w.quorum) }
                                td { @for m in &w.missing {
                                    span.missing data-bureau=(m.bureau) data-connected=(m.connected) {
                                        (bureau_label(&m.name, m.bureau)) (heard_text(l, m))
                                    } " "
                                } }
                            }
                        }
                    }
                }
                @for w in waiting { p.note data-log=(w.log) { (sentence(l, w)) } }
                table #witnesses-heard {
                    thead { tr {
                        th { (l.t("见证局", "Witness")) }
                        th { (l.t("连接", "Connected")) }
                        th { (l.t("最近收到联署", "Last cosignature received")) }
                    } }
                    tbody { @for m in witnesses {
                        tr data-bureau=(m.bureau) {
                            td { code { (m.bureau) } " " (m.name) }
                            td { @if m.connected { (l.t("已连接", "connected")) } @else { (l.t("未连接", "not connected")) } }
                            td { @match m.last_heard_ms { Some(t) => (china_time(t)), None => "—" } }
                        }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hukou_protocol::BureauCode;

    fn code(s: &str) -> BureauCode {
        s.parse().expect("code")
    }

    fn waiting() -> Waiting {
        // 04:03:04 UTC = 12:03:04 China time.
        let t = |h: u64, m: u64, s: u64| ((h * 60 + m) * 60 + s) * 1000;
        Waiting {
            log: code("340100"),
            log_name: "合肥市公安局".into(),
            size: 5,
            final_size: 4,
            since_ms: t(4, 2, 58),
            epoch: 0,
            committee: vec![
                code("310104"),
                code("330502"),
                code("340100"),
                code("340104"),
            ],
            quorum: 3,
            cosigned: vec![code("340100")],
            missing: vec![
                WitnessHeard {
                    bureau: code("330502"),
                    name: "湖州市公安局吴兴分局".into(),
                    connected: false,
                    last_heard_ms: Some(t(4, 3, 4)),
                },
                WitnessHeard {
                    bureau: code("340104"),
                    name: "合肥市公安局蜀山分局".into(),
                    connected: true,
                    last_heard_ms: None,
                },
            ],
        }
    }

    #[test]
    fn the_window_names_the_committee_and_who_is_missing_in_chinese() {
        assert_eq!(
            sentence(Lang::Zh, &waiting()),
            "合肥市公安局日志的见证委员会需 3 名联署，已有 1 名；缺少 湖州市公安局吴兴分局（未连接，自 12:03 起无应答）、\
             合肥市公安局蜀山分局（已连接，本节点启动以来未收到其联署）；自 12:02 起等待。"
        );
        assert_eq!(
            sentence(Lang::En, &waiting()),
            "the witness committee of 合肥市公安局's log needs 3 cosignatures and has 1; missing: \
             湖州市公安局吴兴分局 (not connected, no answer since 12:03), 合肥市公安局蜀山分局 \
             (connected, no cosignature from it since this node started); waiting since 12:02."
        );
    }

    #[test]
    fn the_api_message_names_the_committee_and_who_is_missing() {
        assert_eq!(
            waiting().to_string(),
            "log 340100 (合肥市公安局) needs 3 cosignatures of its committee 310104, 330502, 340100, \
             340104; it has 1 (340100); missing: 330502 湖州市公安局吴兴分局 (not connected, last heard \
             12:03:04), 340104 合肥市公安局蜀山分局 (connected, never heard since this node started); \
             waiting since 12:02:58 (China time)"
        );
    }

    #[test]
    fn the_network_page_shows_nothing_when_nothing_waits() {
        assert_eq!(section(Lang::Zh, &[], &[]).into_string(), "");
        let w = waiting();
        let page = section(Lang::Zh, std::slice::from_ref(&w), &w.missing).into_string();
        assert!(page.contains("待确认的日志"), "{page}");
        assert!(
            page.contains("湖州市公安局吴兴分局（未连接，自 12:03 起无应答）"),
            "{page}"
        );
        assert!(page.contains("1 / 3"), "{page}");
    }
}

//! `docs/RULES.md` holds the rule tables rendered from the rulebook's catalogue
//! (`hukou_protocol::rules`), between two markers, so the document an outsider implements from
//! and the code cannot drift. When the catalogue changes, regenerate the section:
//!
//! ```sh
//! UPDATE_RULES_DOC=1 cargo test -p hukou-protocol --test rules_doc
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use hukou_protocol::limits::{
    BIRTH_REGISTRATION_AGE_DAYS_MAX, DAY_MS, HOUSEHOLD_ID_MAX, PERMIT_VALIDITY_MS_MAX,
    PERMIT_VALIDITY_MS_MIN,
};
use hukou_protocol::rules::{
    BODY_RULES, CHAIN_RULES, ENVELOPE_RULES, REFERENCE_RULES, RETIRED_NAMES, Rule, Stage,
    VIOLATIONS,
};

const BEGIN: &str = "<!-- BEGIN GENERATED: rule tables, rendered from protocol/src/rules.rs by protocol/tests/rules_doc.rs; do not edit by hand -->";
const END: &str = "<!-- END GENERATED: rule tables -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/RULES.md")
}

/// The evidence of a violation, as `field`, `field`, ….
fn evidence(name: &str) -> String {
    let doc = VIOLATIONS
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} is catalogued"));
    doc.fields
        .iter()
        .map(|f| format!("`{}`", f.split_once(": ").expect("`field: type`").0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn common_table(out: &mut String, title: &str, rules: &[Rule]) {
    writeln!(out, "#### {title}\n").unwrap();
    writeln!(out, "| # | rule | refused when | evidence |").unwrap();
    writeln!(out, "|---|---|---|---|").unwrap();
    for (i, rule) in rules.iter().enumerate() {
        writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            i + 1,
            rule.name,
            rule.refused_when,
            evidence(rule.name)
        )
        .unwrap();
    }
    out.push('\n');
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The generated section, markers included.
fn render() -> String {
    let mut out = String::new();
    writeln!(out, "{BEGIN}\n").unwrap();
    writeln!(out, "### Common steps, for every entry\n").unwrap();
    common_table(&mut out, "1. Envelope", ENVELOPE_RULES);
    common_table(&mut out, "2. Chain", CHAIN_RULES);
    common_table(
        &mut out,
        "3. References (for each reference, in the order the body lists them)",
        REFERENCE_RULES,
    );
    writeln!(out, "### 4. Body rules, per body kind\n").unwrap();
    writeln!(
        out,
        "Stage `apply`: every node, witness and auditor checks it. Stage `admit`: only the \
         author, before signing, after every `apply` rule passed. Below the tables, `admit:` \
         before a name means the rule of that name at stage `admit`.\n"
    )
    .unwrap();
    for body in BODY_RULES {
        let kinds: Vec<String> = body.kinds.iter().map(|k| format!("`{k}`")).collect();
        writeln!(out, "#### {}\n", kinds.join(", ")).unwrap();
        writeln!(out, "| # | stage | rule | refused when | evidence |").unwrap();
        writeln!(out, "|---|---|---|---|---|").unwrap();
        for (i, rule) in body.rules.iter().enumerate() {
            let stage = match rule.stage {
                Stage::Apply => "apply",
                Stage::Admit => "admit",
            };
            writeln!(
                out,
                "| {} | {stage} | `{}` | {} | {} |",
                i + 1,
                rule.name,
                rule.refused_when,
                evidence(rule.name)
            )
            .unwrap();
        }
        out.push('\n');
        if body.exclusive.is_empty() {
            writeln!(out, "Any two of these rules can be broken by one entry.\n").unwrap();
        } else {
            let reported = if body.shadowed.is_empty() {
                "every other pair is reported by the earlier rule"
            } else {
                "every other pair is reported by the earlier rule, or by a rule before both when \
                 the later one is shadowed"
            };
            writeln!(
                out,
                "No entry can break both rules of these pairs ({reported}):\n"
            )
            .unwrap();
            for (a, b, why) in body.exclusive {
                writeln!(out, "- `{a}` and `{b}`: {why}.").unwrap();
            }
            out.push('\n');
        }
        if !body.shadowed.is_empty() {
            writeln!(
                out,
                "Never reported (shadowed): an entry breaking one of these rules also breaks one \
                 of the earlier rules named, which is reported; the rule is checked all the same, \
                 as defence in depth:\n"
            )
            .unwrap();
            // Rules shadowed by the same rules for the same reason share one line.
            for group in body
                .shadowed
                .chunk_by(|a, b| a.by == b.by && a.why == b.why)
            {
                let rules: Vec<String> = group.iter().map(|s| format!("`{}`", s.rule)).collect();
                let by: Vec<String> = group[0].by.iter().map(|k| format!("`{k}`")).collect();
                let (rules, each) = match rules.as_slice() {
                    [one] => (one.clone(), ""),
                    [init @ .., last] => (format!("{} and {last}", init.join(", ")), "each "),
                    [] => unreachable!("chunks are not empty"),
                };
                writeln!(
                    out,
                    "- {rules}, {each}with {}: {}.",
                    or_list(&by),
                    group[0].why
                )
                .unwrap();
            }
            out.push('\n');
        }
    }
    writeln!(out, "### Violations\n").unwrap();
    writeln!(out, "| name | evidence | meaning |").unwrap();
    writeln!(out, "|---|---|---|").unwrap();
    for doc in VIOLATIONS {
        writeln!(
            out,
            "| `{}` | {} | {} |",
            doc.name,
            doc.fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", "),
            doc.meaning
        )
        .unwrap();
    }
    out.push('\n');
    writeln!(out, "### Limits the rules use\n").unwrap();
    writeln!(out, "| limit | value |").unwrap();
    writeln!(out, "|---|---|").unwrap();
    for (name, ms) in [
        ("PERMIT_VALIDITY_MS_MIN", PERMIT_VALIDITY_MS_MIN),
        ("PERMIT_VALIDITY_MS_MAX", PERMIT_VALIDITY_MS_MAX),
    ] {
        assert_eq!(ms % DAY_MS, 0, "{name} is whole days");
        let days = ms / DAY_MS;
        let unit = if days == 1 { "day" } else { "days" };
        writeln!(out, "| `{name}` | {ms} ms ({days} {unit}) |").unwrap();
    }
    writeln!(out, "| `HOUSEHOLD_ID_MAX` | {HOUSEHOLD_ID_MAX} |").unwrap();
    writeln!(
        out,
        "| `BIRTH_REGISTRATION_AGE_DAYS_MAX` | {BIRTH_REGISTRATION_AGE_DAYS_MAX} days |"
    )
    .unwrap();
    out.push('\n');
    writeln!(out, "### Retired names\n").unwrap();
    writeln!(
        out,
        "Never used again, for any rule: {}.\n",
        RETIRED_NAMES
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    write!(out, "{END}").unwrap();
    out
}

#[test]
fn rules_md_holds_the_rule_tables_of_the_catalogue() {
    let path = doc_path();
    let text = std::fs::read_to_string(&path).expect("docs/RULES.md exists");
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("docs/RULES.md has no generated section between the markers");
    };
    let current = &text[begin..end + END.len()];
    let rendered = render();
    if current != rendered {
        if std::env::var_os("UPDATE_RULES_DOC").is_some() {
            let updated = format!("{}{rendered}{}", &text[..begin], &text[end + END.len()..]);
            std::fs::write(&path, updated).expect("docs/RULES.md is writable");
            return;
        }
        panic!(
            "docs/RULES.md's rule tables differ from the catalogue in protocol/src/rules.rs; \
             regenerate with UPDATE_RULES_DOC=1 cargo test -p hukou-protocol --test rules_doc"
        );
    }
}

//! Key files, the genesis and membership of a hukou-ledger network: everything a node, an
//! operator or an auditor reads from disk before the protocol can start. File formats are
//! specified in `docs/KEYS.md`.
//!
//! - [`secret`]: the three secret key files (a bureau's signing key, the network's person key,
//!   the network's pre-shared connection key), written mode 0600 and refused when others can
//!   read them
//! - [`genesis`]: the administrator-signed genesis, its canonical encoding and hash, and its
//!   verification into a [`hukou_protocol::Membership`]
//!
//! Library errors are typed ([`KeyFileError`], [`GenesisError`]), name the file they concern,
//! and have stable snake_case names (`name()`) for `--json` output.

pub mod genesis;
pub mod secret;

pub use genesis::{Genesis, GenesisError, GenesisHash, GenesisMember, VerifiedGenesis};
pub use secret::{
    AnyKey, BureauKey, KeyFileError, NetworkKey, generate_person_key, load_person_key,
    person_key_fingerprint, save_person_key,
};

/// One line describing a TOML error: `line L, column C, field F: message`. The toml crate's own
/// `Display` spans several lines with an excerpt of the source, which would break one-line CLI
/// errors and could echo part of a secret; this names the field instead (`members[2].name`).
pub(crate) fn toml_error_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let Some(span) = error.span() else {
        return message;
    };
    let start = (0..=span.start.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..start];
    let line_number = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    match field_of_line(&text[..line_start], line) {
        Some(field) => format!("line {line_number}, column {column}, field `{field}`: {message}"),
        None => format!("line {line_number}, column {column}: {message}"),
    }
}

/// The dotted name of the key assigned on `line`, prefixed by the array of tables it is in
/// (`members[2].name`), if the line is a simple `key = value`.
fn field_of_line(before: &str, line: &str) -> Option<String> {
    let is_key = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    let key = line.split_once('=')?.0.trim();
    if !is_key(key) {
        return None;
    }
    // The last table header before the line, and how many times that array of tables began.
    let header = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    match header {
        Some(h) if h.starts_with("[[") && h.ends_with("]]") => {
            let table = h[2..h.len() - 2].trim();
            let index = before.lines().filter(|l| l.trim() == h).count() - 1;
            Some(format!("{table}[{index}].{key}"))
        }
        Some(h) if h.ends_with(']') => Some(format!("{}.{key}", h[1..h.len() - 1].trim())),
        _ => Some(key.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        network: String,
        members: Vec<SampleMember>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct SampleMember {
        name: String,
    }

    fn message(text: &str) -> String {
        let error = toml::from_str::<Sample>(text).unwrap_err();
        toml_error_message(text, &error)
    }

    #[test]
    fn toml_errors_are_one_line_and_name_the_field() {
        assert_eq!(
            message("network = 5\nmembers = []\n"),
            "line 1, column 11, field `network`: invalid type: integer `5`, expected a string"
        );
        let text = "network = \"n\"\n[[members]]\nname = \"a\"\n[[members]]\nname = 7\n";
        assert_eq!(
            message(text),
            "line 5, column 8, field `members[1].name`: invalid type: integer `7`, expected a string"
        );
        let unterminated = message("network = \"abc\nmembers = []\n");
        assert!(!unterminated.contains('\n'), "{unterminated}");
        assert!(unterminated.starts_with("line 1"), "{unterminated}");
    }
}

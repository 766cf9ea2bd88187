//! Secret key files: a bureau's signing key, the network's person key and the network's
//! pre-shared (pnet) key.
//!
//! Each is a small TOML text file (`docs/KEYS.md` specifies them):
//!
//! ```toml
//! kind = "hukou-bureau-key-v1"
//! secret = "<64 hex digits>"
//! public = "<64 hex digits>"   # bureau keys only: must match the secret
//! ```
//!
//! Invariants:
//!
//! - A file is written with mode 0600 and never half-written under its final name: a new file is
//!   created exclusively (`create_new`), an overwrite (only when asked) goes through a temporary
//!   file renamed over the old one.
//! - A file whose mode gives any permission to group or others is refused before its content is
//!   read, so a secret that others could read is never used (DESIGN.md, "Keys and membership").
//! - Every refusal is its own [`KeyFileError`] variant and names the file.
//! - No `Debug` or `Display` of a key prints its secret.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use hukou_protocol::id::PersonKey;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// `kind` of a bureau's ed25519 signing key file (also used for the administrator's key).
pub const KIND_BUREAU_KEY: &str = "hukou-bureau-key-v1";
/// `kind` of the network's person key file (the HMAC key of person tags).
pub const KIND_PERSON_KEY: &str = "hukou-person-key-v1";
/// `kind` of the network's pre-shared libp2p (pnet) key file.
pub const KIND_NETWORK_KEY: &str = "hukou-network-key-v1";

/// Largest key file read. A real one is under 300 bytes; the bound stops a mistaken path (a log,
/// a device) from being read whole into memory.
pub const KEY_FILE_BYTES_MAX: u64 = 4096;

/// Permission bits a key file must not have: any access by group or others.
const MODE_GROUP_OTHER_BITS: u32 = 0o077;

/// Mode of every key file written.
const MODE_OWNER_READ_WRITE: u32 = 0o600;

/// Domain tag of a secret key's fingerprint, so the fingerprint is never a hash used elsewhere.
const DOMAIN_KEY_FINGERPRINT: &[u8] = b"hukou-ledger/v1/key-fingerprint\0";

/// Why a key file could not be written or loaded. Each variant names the file; `path` is always
/// the key file concerned.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The operating system refused to open, inspect, read or write the file.
    #[error("cannot {action} key file {}: {source}", path.display())]
    Io {
        /// What was being done: "open", "inspect", "read" or "write".
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Writing would replace an existing key, and `force` was not given.
    #[error("key file {} already exists; refusing to overwrite it (pass --force to replace it)", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The file's mode gives some access to group or others.
    #[error(
        "key file {} has mode {mode:04o}, which lets group or others access it; run `chmod 600 {}` and check who may have copied it",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// The permission bits found.
        mode: u32,
    },
    /// The path is a directory, device or other non-regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The file is larger than [`KEY_FILE_BYTES_MAX`].
    #[error("key file {} is {len} bytes, more than the {max} a key file can be", path.display())]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// [`KEY_FILE_BYTES_MAX`].
        max: u64,
    },
    /// Not TOML, a field missing, of the wrong type, or unknown.
    #[error("key file {} is not valid: {message}", path.display())]
    Syntax {
        /// The key file.
        path: PathBuf,
        /// One line: where, which field, what is wrong.
        message: String,
    },
    /// The `kind` is not the kind of key expected.
    #[error("key file {} is a {found:?}, expected a {expected:?}", path.display())]
    WrongKind {
        /// The key file.
        path: PathBuf,
        /// The kind expected.
        expected: &'static str,
        /// The kind the file states.
        found: String,
    },
    /// A field holds characters that are not hexadecimal digits.
    #[error("key file {}: field `{field}` is not hexadecimal", path.display())]
    BadHex {
        /// The key file.
        path: PathBuf,
        /// "secret" or "public".
        field: &'static str,
    },
    /// A field has the wrong number of hexadecimal digits.
    #[error(
        "key file {}: field `{field}` has {found} hex digits, expected {expected}",
        path.display()
    )]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// "secret" or "public".
        field: &'static str,
        /// Hex digits needed.
        expected: usize,
        /// Hex digits found.
        found: usize,
    },
    /// A field the kind requires is absent (`public` in a bureau key).
    #[error("key file {}: field `{field}` is required for a {kind}", path.display())]
    MissingField {
        /// The key file.
        path: PathBuf,
        /// The missing field.
        field: &'static str,
        /// The file's kind.
        kind: &'static str,
    },
    /// A field the kind does not have is present (`public` in a person or network key).
    #[error("key file {}: field `{field}` is not allowed in a {kind}", path.display())]
    UnexpectedField {
        /// The key file.
        path: PathBuf,
        /// The unexpected field.
        field: &'static str,
        /// The file's kind.
        kind: &'static str,
    },
    /// A bureau key's `public` is not the public key of its `secret`.
    #[error(
        "key file {}: `public` does not match the secret key (the file was edited or corrupted)",
        path.display()
    )]
    PublicMismatch {
        /// The key file.
        path: PathBuf,
    },
    /// No randomness for a new key.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl KeyFileError {
    /// A stable snake_case name of the refusal, for `--json` output and scripts.
    pub fn name(&self) -> &'static str {
        match self {
            KeyFileError::Io { .. } => "io",
            KeyFileError::Exists { .. } => "key_file_exists",
            KeyFileError::Permissions { .. } => "key_file_permissions",
            KeyFileError::NotAFile { .. } => "key_file_not_a_file",
            KeyFileError::TooLarge { .. } => "key_file_too_large",
            KeyFileError::Syntax { .. } => "key_file_syntax",
            KeyFileError::WrongKind { .. } => "key_file_wrong_kind",
            KeyFileError::BadHex { .. } => "key_file_bad_hex",
            KeyFileError::WrongLength { .. } => "key_file_wrong_length",
            KeyFileError::MissingField { .. } => "key_file_missing_field",
            KeyFileError::UnexpectedField { .. } => "key_file_unexpected_field",
            KeyFileError::PublicMismatch { .. } => "key_file_public_mismatch",
            KeyFileError::Random(_) => "random",
        }
    }
}

/// A bureau's ed25519 signing key (also the format of the network administrator's key).
///
/// The bureau code is deliberately not part of the key: which bureau a key speaks for is stated
/// by the genesis, signed by the administrator.
pub struct BureauKey(SigningKey);

impl BureauKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<BureauKey, KeyFileError> {
        Ok(BureauKey(SigningKey::from_bytes(&random_32()?)))
    }

    /// The key with these 32 secret bytes (the ed25519 seed).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> BureauKey {
        BureauKey(SigningKey::from_bytes(secret))
    }

    /// The public (verifying) key.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The public key in lower-case hexadecimal, as the genesis and the CLI show it.
    pub fn public_hex(&self) -> String {
        hex::encode(self.public().to_bytes())
    }

    /// The signing key, for signing entries, checkpoints and genesis documents.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// Loads a bureau key file, refusing it if others can read it, if it is not a bureau key, or
    /// if its `public` does not match its secret.
    pub fn load(path: &Path) -> Result<BureauKey, KeyFileError> {
        read_key_file(path).and_then(BureauKey::from_content)
    }

    /// The key of a checked key file, refusing a `public` that does not match the secret.
    fn from_content(file: KeyFileContent) -> Result<BureauKey, KeyFileError> {
        let path = file.path.clone();
        let (mut secret, public) = file.expect_kind(KIND_BUREAU_KEY)?;
        let key = BureauKey::from_secret_bytes(&secret);
        secret.fill(0);
        // `expect_kind` requires `public` for a bureau key.
        if Some(key.public().to_bytes()) != public {
            return Err(KeyFileError::PublicMismatch { path });
        }
        Ok(key)
    }

    /// Writes the key to `path` with mode 0600. Refuses an existing file unless `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), KeyFileError> {
        let text = key_file_text(
            KIND_BUREAU_KEY,
            "A bureau's signing key. Anyone holding this file can sign as the bureau.",
            &self.0.to_bytes(),
            Some(&self.public().to_bytes()),
        );
        write_secret_file(path, text.as_bytes(), force)
    }
}

impl fmt::Debug for BureauKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BureauKey(public {})", self.public_hex())
    }
}

/// The network's pre-shared key for libp2p's private network (pnet) layer: without it a machine
/// cannot even complete a connection to a member.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkKey([u8; 32]);

impl NetworkKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<NetworkKey, KeyFileError> {
        Ok(NetworkKey(random_32()?))
    }

    /// The key with these bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> NetworkKey {
        NetworkKey(*bytes)
    }

    /// The raw key, for `libp2p::pnet::PreSharedKey::new`.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A short public fingerprint (16 hex digits of a domain-separated SHA-256), so operators can
    /// compare keys across machines without showing them.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    /// Loads a network key file, refusing it if others can read it or if it is not a network key.
    pub fn load(path: &Path) -> Result<NetworkKey, KeyFileError> {
        let (secret, _) = read_key_file(path)?.expect_kind(KIND_NETWORK_KEY)?;
        Ok(NetworkKey(secret))
    }

    /// Writes the key to `path` with mode 0600. Refuses an existing file unless `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), KeyFileError> {
        let text = key_file_text(
            KIND_NETWORK_KEY,
            "The network's pre-shared connection key (libp2p pnet). Shared by member bureaus only.",
            &self.0,
            None,
        );
        write_secret_file(path, text.as_bytes(), force)
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkKey(fingerprint {})", self.fingerprint())
    }
}

/// A fresh person key from the operating system's random number generator.
pub fn generate_person_key() -> Result<PersonKey, KeyFileError> {
    Ok(PersonKey::from_bytes(random_32()?))
}

/// Writes the network's person key to `path` with mode 0600. Refuses an existing file unless
/// `force`.
pub fn save_person_key(key: &PersonKey, path: &Path, force: bool) -> Result<(), KeyFileError> {
    let text = key_file_text(
        KIND_PERSON_KEY,
        "The network's person key: turns citizen IDs into person tags. Shared by member bureaus only; never exported.",
        key.as_bytes(),
        None,
    );
    write_secret_file(path, text.as_bytes(), force)
}

/// Loads the network's person key, refusing the file if others can read it or if it is not a
/// person key.
pub fn load_person_key(path: &Path) -> Result<PersonKey, KeyFileError> {
    let (secret, _) = read_key_file(path)?.expect_kind(KIND_PERSON_KEY)?;
    Ok(PersonKey::from_bytes(secret))
}

/// A short public fingerprint of a person key (see [`NetworkKey::fingerprint`]).
pub fn person_key_fingerprint(key: &PersonKey) -> String {
    fingerprint(key.as_bytes())
}

/// Any of the three key kinds, as found in a file.
#[derive(Debug)]
pub enum AnyKey {
    /// A bureau's (or the administrator's) signing key.
    Bureau(BureauKey),
    /// The network's person key.
    Person(PersonKey),
    /// The network's pre-shared connection key.
    Network(NetworkKey),
}

impl AnyKey {
    /// Loads a key file of any kind, with all the checks of the kind's own loader.
    pub fn load(path: &Path) -> Result<AnyKey, KeyFileError> {
        let file = read_key_file(path)?;
        match file.kind.as_str() {
            KIND_BUREAU_KEY => BureauKey::from_content(file).map(AnyKey::Bureau),
            KIND_NETWORK_KEY => {
                let (secret, _) = file.expect_kind(KIND_NETWORK_KEY)?;
                Ok(AnyKey::Network(NetworkKey(secret)))
            }
            KIND_PERSON_KEY => {
                let (secret, _) = file.expect_kind(KIND_PERSON_KEY)?;
                Ok(AnyKey::Person(PersonKey::from_bytes(secret)))
            }
            other => Err(KeyFileError::WrongKind {
                path: path.to_path_buf(),
                expected: "hukou-{bureau,person,network}-key-v1",
                found: other.to_string(),
            }),
        }
    }

    /// The file kind (`hukou-…-key-v1`).
    pub fn kind(&self) -> &'static str {
        match self {
            AnyKey::Bureau(_) => KIND_BUREAU_KEY,
            AnyKey::Person(_) => KIND_PERSON_KEY,
            AnyKey::Network(_) => KIND_NETWORK_KEY,
        }
    }
}

/// The fields of a key file as written, before any check beyond TOML syntax.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    kind: String,
    secret: String,
    public: Option<String>,
}

/// A key file whose permissions and syntax have been checked, with the path for error messages.
struct KeyFileContent {
    path: PathBuf,
    kind: String,
    secret: String,
    public: Option<String>,
}

impl KeyFileContent {
    /// Checks the kind and decodes the hex fields. `public` is required for bureau keys and
    /// refused for the others.
    fn expect_kind(
        self,
        expected: &'static str,
    ) -> Result<([u8; 32], Option<[u8; 32]>), KeyFileError> {
        if self.kind != expected {
            return Err(KeyFileError::WrongKind {
                path: self.path,
                expected,
                found: self.kind,
            });
        }
        let secret = decode_hex_32(&self.path, "secret", &self.secret)?;
        let public = match (&self.public, expected == KIND_BUREAU_KEY) {
            (Some(text), true) => Some(decode_hex_32(&self.path, "public", text)?),
            (None, true) => {
                return Err(KeyFileError::MissingField {
                    path: self.path,
                    field: "public",
                    kind: expected,
                });
            }
            (Some(_), false) => {
                return Err(KeyFileError::UnexpectedField {
                    path: self.path,
                    field: "public",
                    kind: expected,
                });
            }
            (None, false) => None,
        };
        Ok((secret, public))
    }
}

/// Decodes exactly 64 hex digits.
fn decode_hex_32(path: &Path, field: &'static str, text: &str) -> Result<[u8; 32], KeyFileError> {
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyFileError::BadHex {
            path: path.to_path_buf(),
            field,
        });
    }
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return Err(KeyFileError::WrongLength {
            path: path.to_path_buf(),
            field,
            expected: 64,
            found: text.len(),
        });
    }
    hex::decode_to_slice(text, &mut out).map_err(|_| KeyFileError::BadHex {
        path: path.to_path_buf(),
        field,
    })?;
    Ok(out)
}

/// Opens a key file, checks it is a small regular file that only its owner can access, and
/// parses its TOML. The checks use the opened file's own metadata, so the file checked is the
/// file read.
fn read_key_file(path: &Path) -> Result<KeyFileContent, KeyFileError> {
    let io = |action: &'static str| {
        move |source| KeyFileError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let file = File::open(path).map_err(io("open"))?;
    let meta = file.metadata().map_err(io("inspect"))?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & MODE_GROUP_OTHER_BITS != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > KEY_FILE_BYTES_MAX {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
            max: KEY_FILE_BYTES_MAX,
        });
    }
    let mut text = String::new();
    file.take(KEY_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io("read"))?;
    let raw: RawKeyFile = toml::from_str(&text).map_err(|e| KeyFileError::Syntax {
        path: path.to_path_buf(),
        message: crate::toml_error_message(&text, &e),
    })?;
    Ok(KeyFileContent {
        path: path.to_path_buf(),
        kind: raw.kind,
        secret: raw.secret,
        public: raw.public,
    })
}

/// The text of a key file.
fn key_file_text(
    kind: &str,
    comment: &str,
    secret: &[u8; 32],
    public: Option<&[u8; 32]>,
) -> String {
    let mut text = format!(
        "# {comment}\n# Keep it mode 0600; see docs/KEYS.md.\nkind = \"{kind}\"\nsecret = \"{}\"\n",
        hex::encode(secret)
    );
    if let Some(public) = public {
        text.push_str(&format!("public = \"{}\"\n", hex::encode(public)));
    }
    text
}

/// Writes `bytes` to `path` with mode 0600, durably, never leaving a partial file under `path`.
///
/// Without `force`, the file is created exclusively, so an existing key is never replaced (and
/// two concurrent writers cannot both succeed). With `force`, a temporary file beside `path` is
/// written and renamed over it.
fn write_secret_file(path: &Path, bytes: &[u8], force: bool) -> Result<(), KeyFileError> {
    if !force {
        return match create_and_fill(path, bytes) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(KeyFileError::Exists {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(KeyFileError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            }),
        };
    }
    let suffix = hex::encode(&random_32()?[..8]);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{suffix}"));
    let temporary = PathBuf::from(temporary);
    let result = create_and_fill(&temporary, bytes).and_then(|()| fs::rename(&temporary, path));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(|source| KeyFileError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })?;
    sync_parent_directory(path);
    Ok(())
}

/// Creates `path` exclusively with mode 0600 and writes `bytes` to it, removing it again if the
/// write fails after creation.
fn create_and_fill(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE_OWNER_READ_WRITE)
        .open(path)?;
    let filled = (|| {
        // The umask can only remove bits from 0600; set it exactly so the file is readable by
        // its owner whatever the umask.
        file.set_permissions(fs::Permissions::from_mode(MODE_OWNER_READ_WRITE))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if filled.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    filled
}

/// Best effort: makes a rename durable. Failure only loses durability of the directory entry,
/// which the next write repairs, so it is not reported.
fn sync_parent_directory(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// 32 bytes from the operating system's random number generator.
fn random_32() -> Result<[u8; 32], KeyFileError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(KeyFileError::Random)?;
    Ok(bytes)
}

/// 16 hex digits of SHA-256(domain ‖ secret).
fn fingerprint(secret: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN_KEY_FINGERPRINT);
    h.update(secret);
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Rewrites a key file's text, keeping its mode 0600.
    fn rewrite(path: &Path, edit: impl FnOnce(String) -> String) {
        let text = fs::read_to_string(path).unwrap();
        fs::write(path, edit(text)).unwrap();
        chmod(path, 0o600);
    }

    #[test]
    fn bureau_key_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bureau.key");
        let key = BureauKey::generate().unwrap();
        key.save(&path, false).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let loaded = BureauKey::load(&path).unwrap();
        assert_eq!(loaded.public(), key.public());
        assert_eq!(
            loaded.signing_key().to_bytes(),
            key.signing_key().to_bytes()
        );
    }

    #[test]
    fn existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bureau.key");
        let first = BureauKey::generate().unwrap();
        first.save(&path, false).unwrap();
        let second = BureauKey::generate().unwrap();
        let err = second.save(&path, false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(BureauKey::load(&path).unwrap().public(), first.public());
        second.save(&path, true).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(BureauKey::load(&path).unwrap().public(), second.public());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bureau.key");
        BureauKey::generate().unwrap().save(&path, false).unwrap();
        chmod(&path, 0o644);
        let err = BureauKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("0644"), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
        for mode in [0o640, 0o604, 0o601, 0o610] {
            chmod(&path, mode);
            assert!(matches!(
                BureauKey::load(&path),
                Err(KeyFileError::Permissions { .. })
            ));
        }
        chmod(&path, 0o400);
        assert!(BureauKey::load(&path).is_ok());
    }

    #[test]
    fn tampered_files_are_refused_each_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bureau.key");
        let key = BureauKey::generate().unwrap();
        let secret_hex = hex::encode(key.signing_key().to_bytes());
        let public_hex = key.public_hex();
        let original = {
            key.save(&path, false).unwrap();
            fs::read_to_string(&path).unwrap()
        };
        let reset = || {
            fs::write(&path, &original).unwrap();
            chmod(&path, 0o600);
        };

        rewrite(&path, |t| {
            t.replace(&secret_hex, &format!("zz{}", &secret_hex[2..]))
        });
        let err = BureauKey::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::BadHex {
                    field: "secret",
                    ..
                }
            ),
            "{err}"
        );

        reset();
        rewrite(&path, |t| t.replace(&secret_hex, &secret_hex[2..]));
        let err = BureauKey::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::WrongLength {
                    field: "secret",
                    expected: 64,
                    found: 62,
                    ..
                }
            ),
            "{err}"
        );

        reset();
        rewrite(&path, |t| t.replace(KIND_BUREAU_KEY, KIND_NETWORK_KEY));
        let err = BureauKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::WrongKind { expected: KIND_BUREAU_KEY, ref found, .. } if found == KIND_NETWORK_KEY),
            "{err}"
        );

        reset();
        let other = BureauKey::generate().unwrap().public_hex();
        rewrite(&path, |t| t.replace(&public_hex, &other));
        let err = BureauKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::PublicMismatch { .. }), "{err}");

        reset();
        rewrite(&path, |t| {
            t.lines()
                .filter(|l| !l.starts_with("public"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        let err = BureauKey::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::MissingField {
                    field: "public",
                    ..
                }
            ),
            "{err}"
        );

        reset();
        rewrite(&path, |t| format!("{t}extra = 1\n"));
        let err = BureauKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Syntax { .. }), "{err}");
        assert!(err.to_string().contains("extra"), "{err}");

        reset();
        rewrite(&path, |_| "not toml at all".to_string());
        let err = BureauKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Syntax { .. }), "{err}");
        assert!(!err.to_string().contains('\n'), "{err:?}");

        let missing = dir.path().join("missing.key");
        let err = BureauKey::load(&missing).unwrap_err();
        assert!(matches!(err, KeyFileError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing.key"), "{err}");
    }

    #[test]
    fn network_and_person_keys_round_trip_and_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let network_path = dir.path().join("network.key");
        let person_path = dir.path().join("person.key");
        let network = NetworkKey::generate().unwrap();
        network.save(&network_path, false).unwrap();
        assert_eq!(mode_of(&network_path), 0o600);
        assert_eq!(NetworkKey::load(&network_path).unwrap(), network);

        let person = generate_person_key().unwrap();
        save_person_key(&person, &person_path, false).unwrap();
        assert_eq!(mode_of(&person_path), 0o600);
        let loaded = load_person_key(&person_path).unwrap();
        assert_eq!(loaded.as_bytes(), person.as_bytes());
        assert_eq!(person_key_fingerprint(&loaded).len(), 16);

        let err = NetworkKey::load(&person_path).unwrap_err();
        assert!(matches!(err, KeyFileError::WrongKind { .. }), "{err}");
        let err = load_person_key(&network_path).unwrap_err();
        assert!(matches!(err, KeyFileError::WrongKind { .. }), "{err}");
        assert!(matches!(
            save_person_key(&person, &person_path, false),
            Err(KeyFileError::Exists { .. })
        ));

        assert!(matches!(
            AnyKey::load(&network_path).unwrap(),
            AnyKey::Network(_)
        ));
        assert!(matches!(
            AnyKey::load(&person_path).unwrap(),
            AnyKey::Person(_)
        ));
        chmod(&person_path, 0o660);
        assert!(matches!(
            load_person_key(&person_path),
            Err(KeyFileError::Permissions { mode: 0o660, .. })
        ));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let key = BureauKey::from_secret_bytes(&[7; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])), "{shown}");
        assert!(shown.contains(&key.public_hex()), "{shown}");
        let network = NetworkKey::from_bytes(&[9; 32]);
        let shown = format!("{network:?}");
        assert!(!shown.contains(&hex::encode([9u8; 32])), "{shown}");
        assert!(!shown.contains("9, 9"), "{shown}");
    }
}

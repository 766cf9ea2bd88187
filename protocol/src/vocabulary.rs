//! The domain's closed vocabularies: migration categories, refusal and cancellation reasons, and
//! relations to the head of a household.
//!
//! Each has a stable kebab-case English name (used by the CLI, the API and audit JSON) and a
//! Chinese label (used by the console). Each also has a numbered `other-N` so that a category the
//! national list adds later can be recorded before this build names it.

use bincode::{Decode, Encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal {
            $( $(#[$vdoc:meta])* $variant:ident => $text:literal, $zh:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this build does not name, by number.
            Other(u16),
        }

        impl $name {
            /// Every named value, in declaration order.
            pub const NAMED: &'static [$name] = &[$($name::$variant),+];

            /// Stable kebab-case name (`other-N` for unnamed values).
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $( $name::$variant => std::borrow::Cow::Borrowed($text), )+
                    $name::Other(n) => std::borrow::Cow::Owned(format!("other-{n}")),
                }
            }

            /// Simplified Chinese label.
            pub fn label_zh(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $( $name::$variant => std::borrow::Cow::Borrowed($zh), )+
                    $name::Other(n) => std::borrow::Cow::Owned(format!("其他（{n}）")),
                }
            }

            /// Parses a kebab-case name or `other-N`.
            pub fn parse(s: &str) -> Result<$name, String> {
                $( if s == $text { return Ok($name::$variant); } )+
                if let Some(n) = s.strip_prefix("other-") {
                    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                        if let Ok(n) = n.parse::<u16>() {
                            return Ok($name::Other(n));
                        }
                    }
                }
                let known: Vec<&str> = vec![$($text),+];
                Err(format!(
                    "unknown {} {:?}; expected one of {}, or other-N",
                    $what, s, known.join(", ")
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

vocabulary! {
    /// Migration categories (迁移类别). Nationally there are 21; these are the ones DOMAIN.md
    /// names, plus the reversal of a wrong migration.
    Category, "migration category" {
        /// 配偶投靠
        Spouse => "spouse", "配偶投靠",
        /// 子女投靠
        Child => "child", "子女投靠",
        /// 老人投靠
        Parent => "parent", "老人投靠",
        /// 人才引进
        Talent => "talent", "人才引进",
        /// 毕业生
        Graduate => "graduate", "毕业生",
        /// 录取学生
        AdmittedStudent => "admitted-student", "录取学生",
        /// 工作调动
        WorkTransfer => "work-transfer", "工作调动",
        /// 博士后出站
        Postdoc => "postdoc", "博士后出站",
        /// 留学回国
        ReturnedStudent => "returned-student", "留学回国",
        /// 公务员调入
        CivilServant => "civil-servant", "公务员调入",
        /// 居住证转户口
        ResidencePermit => "residence-permit", "居住证转户口",
        /// 错迁回迁: reverses an erroneous transfer; the permit names the registration it corrects.
        ReturnAfterError => "return-after-error", "错迁回迁",
    }
}

vocabulary! {
    /// Why an origin refuses a permit.
    RefusalReason, "refusal reason" {
        /// 本地无此人户籍
        NotRegisteredHere => "not-registered-here", "本地无此人户籍",
        /// 户籍信息与申请不符
        RecordMismatch => "record-mismatch", "户籍信息不符",
        /// 一人多号或重号
        DuplicateId => "duplicate-id", "身份号码重复",
        /// 材料不全
        MaterialsIncomplete => "materials-incomplete", "材料不全",
        /// 申请人撤回
        ApplicantWithdrew => "applicant-withdrew", "申请人撤回",
    }
}

vocabulary! {
    /// Why a registration is cancelled (注销).
    CancellationReason, "cancellation reason" {
        /// 死亡
        Death => "death", "死亡",
        /// 出国（境）定居
        Emigration => "emigration", "出国（境）定居",
        /// 入伍
        Enlistment => "enlistment", "入伍",
        /// 重复登记
        DuplicateRecord => "duplicate-record", "重复登记",
    }
}

vocabulary! {
    /// Relation to the head of the household (与户主关系).
    Relation, "relation to the head of household" {
        /// 户主
        Head => "head", "户主",
        /// 配偶
        Spouse => "spouse", "配偶",
        /// 子女
        Child => "child", "子女",
        /// 父母
        Parent => "parent", "父母",
        /// 孙子女
        Grandchild => "grandchild", "孙子女",
        /// 兄弟姐妹
        Sibling => "sibling", "兄弟姐妹",
    }
}

impl CancellationReason {
    /// Whether the cancellation ends the person's registrations for good: a death, or a
    /// duplicate record removed (重). After any other cancellation (emigration, enlistment) the
    /// person may be registered again, by a new claim that follows the cancellation.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CancellationReason::Death | CancellationReason::DuplicateRecord
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Category::NAMED {
            assert_eq!(Category::parse(&c.name()).unwrap(), *c);
        }
        assert_eq!(Category::parse("other-21").unwrap(), Category::Other(21));
        assert_eq!(Category::Other(21).name(), "other-21");
        let err = Category::parse("spouce").unwrap_err();
        assert!(err.contains("spouse") && err.contains("spouce"), "{err}");
        for bad in ["other-", "other-x", "other-99999", "Spouse"] {
            assert!(Category::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            RefusalReason::parse("not-registered-here").unwrap(),
            RefusalReason::NotRegisteredHere
        );
        assert_eq!(serde_json::to_string(&Relation::Head).unwrap(), "\"head\"");
    }
}

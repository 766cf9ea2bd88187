//! `hukou id check ID [--json]`: validates a citizen ID number (GB 11643-1999) and shows its
//! parts, or names the precise fault. Nothing is looked up or recorded: this is the check a
//! clerk's window runs before any entry is made.

use clap::{Args, Subcommand};
use hukou_protocol::id::{CitizenId, Sex};
use serde_json::json;

use super::{print_json, refuse_json};

/// `hukou id ...`
#[derive(Debug, Subcommand)]
pub enum IdCommand {
    /// Check an ID number: exit 0 and print its parts, or exit 1 and print the fault.
    Check(CheckArgs),
}

/// Arguments of `hukou id check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The 18-character citizen ID number (a final `x` is accepted as `X`).
    pub id: String,
    /// Print JSON on stdout: the parts, or `{"error": NAME, "message": ...}`.
    #[arg(long)]
    pub json: bool,
}

impl IdCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            IdCommand::Check(args) => check(args),
        }
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let id = match CitizenId::parse(&args.id) {
        Ok(id) => id,
        Err(error) if args.json => return Err(refuse_json(error.name(), &error.to_string())),
        Err(error) => return Err(error.into()),
    };
    let (year, month, day) = id.birth_date();
    let birth_date = format!("{year:04}-{month:02}-{day:02}");
    let sex = match id.sex() {
        Sex::Male => "male",
        Sex::Female => "female",
    };
    if args.json {
        print_json(&json!({
            "id": id.as_str(),
            "address_code": id.address_code(),
            "birth_date": birth_date,
            "sequence": id.sequence(),
            "sex": sex,
            "check_character": id.check_character().to_string(),
        }));
    } else {
        outln!("id:              {}", id.as_str());
        outln!("address code:    {}", id.address_code());
        outln!("birth date:      {birth_date}");
        outln!("sequence:        {}", id.sequence());
        outln!("sex:             {sex}");
        outln!("check character: {}", id.check_character());
    }
    Ok(())
}

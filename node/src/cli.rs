//! The command-line interface (placeholder: being written).
pub fn main() -> i32 { 0 }

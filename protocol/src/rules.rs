//! The rulebook (placeholder: being written).

//! Key files, the genesis and membership (placeholder: being written).

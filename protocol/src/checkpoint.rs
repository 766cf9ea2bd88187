//! Checkpoints, cosignatures and certificates (placeholder: being written).

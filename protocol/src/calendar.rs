//! Working days and deadlines (placeholder: being written).

//! The private libp2p network (placeholder: being written).

//! Citizen ID numbers (GB 11643-1999) and person tags (placeholder: being written).

//! treatments

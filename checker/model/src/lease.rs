//! Lease teaching case (filled in below).

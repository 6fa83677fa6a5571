//! Bug zoo (filled in below).
